"""Fair admission: at most a set number of holders at once, first come first served (model passes, page turns)."""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections import deque
from typing import Callable, Iterator

import torch

from cam_core.sharing.waiting import POLL_SECONDS, Wait, report


def pass_capacity() -> int:
    """How many passes run side by side: the cores divided by the threads each pass uses (torch's setting)."""
    return max(1, (os.cpu_count() or 1) // max(1, torch.get_num_threads()))


class FairSlots:
    """A first-in, first-out semaphore whose capacity is read at each admission. For model passes: a method made of
    many passes (Score-CAM's batches, a path's chunks) takes a slot per pass, so a request that arrives meanwhile
    waits for at most the passes already admitted, never for the whole method."""

    def __init__(self, capacity: Callable[[], int] = pass_capacity) -> None:
        self._capacity = capacity
        self._condition = threading.Condition(threading.Lock())
        self._queue: deque[int] = deque()
        self._tickets = itertools.count()
        self._running = 0

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the enclosed block; while queued, report how many requests are ahead."""
        with self._condition:
            ticket = next(self._tickets)
            self._queue.append(ticket)
        try:
            while not self._admitted(ticket):
                with self._condition:
                    ahead = self._running + self._queue.index(ticket)
                report(Wait(ahead=ahead))
        except BaseException:
            with self._condition:
                if ticket in self._queue:
                    self._queue.remove(ticket)
                self._condition.notify_all()
            raise
        try:
            yield
        finally:
            with self._condition:
                self._running -= 1
                self._condition.notify_all()

    def _admitted(self, ticket: int) -> bool:
        """Admit ticket if it is first in line and a slot is free, waiting up to POLL_SECONDS for that."""
        with self._condition:
            if not self._condition.wait_for(
                lambda: self._queue[0] == ticket and self._running < self._capacity(), POLL_SECONDS
            ):
                return False
            self._queue.popleft()
            self._running += 1
            self._condition.notify_all()
            return True

    def load(self) -> tuple[int, int]:
        """(passes running, passes waiting) right now."""
        with self._condition:
            return self._running, len(self._queue)


PASSES = FairSlots()  # every model pass in this process
