"""Work done once however many threads ask for it at the same time."""

from __future__ import annotations

import threading
from typing import Callable, Generic, Hashable, TypeVar

from cam_core.sharing.waiting import Wait, wait_for

V = TypeVar("V")


class SharedWork:
    """Runs compute for a key in the first thread that asks; threads asking for the same key meanwhile wait for it
    and get the same value. Nothing is kept afterwards. If compute raises in the thread running it (its caller gave
    up, or it failed), that thread sees the exception and one of the waiting threads runs compute itself."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[Hashable, tuple[threading.Event, list]] = {}

    def run(self, key: Hashable, compute: Callable[[], V]) -> V:
        while True:
            with self._lock:
                entry = self._running.get(key)
                mine = entry is None
                if mine:
                    entry = self._running[key] = (threading.Event(), [])
            done, box = entry
            if mine:
                try:
                    box.append(compute())
                finally:
                    with self._lock:
                        del self._running[key]
                    done.set()
                return box[0]
            wait_for(done, Wait(shared=True))
            if box:
                return box[0]


class OnceMap(Generic[V]):
    """Values computed at most once per key and then kept; a key being computed blocks only its own askers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[Hashable, V] = {}
        self._work = SharedWork()

    def get(self, key: Hashable, compute: Callable[[], V], on_new: Callable[[V], None] | None = None) -> V:
        """The value of key, computed by compute the first time (on_new(value) runs once, when it is stored)."""
        found = self.peek(key)
        if found is not None:
            return found

        def compute_and_keep() -> V:
            value = self.peek(key)
            if value is None:
                value = compute()
                with self._lock:
                    self._values[key] = value
                if on_new is not None:
                    on_new(value)
            return value

        return self._work.run(key, compute_and_keep)

    def peek(self, key: Hashable) -> V | None:
        """The value of key if it is already computed, else None (never waits)."""
        with self._lock:
            return self._values.get(key)

    def __contains__(self, key: Hashable) -> bool:
        return self.peek(key) is not None

    def snapshot(self) -> dict[Hashable, V]:
        """The values computed so far (a copy)."""
        with self._lock:
            return dict(self._values)
