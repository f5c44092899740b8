"""Copies of a network's module tree that share its tensors, so that each concurrent pass can hook its own."""

from __future__ import annotations

import contextlib
import copy
import threading
from typing import Iterator

from torch import nn


class Replicas:
    """A free list of structural copies of prototype: new module objects (their own hooks) over the very same
    parameter and buffer tensors (no weight memory, bit-identical results). The prototype itself is never hooked."""

    def __init__(self, prototype: nn.Module):
        self._prototype = prototype
        self._free: list[nn.Module] = []
        self._lock = threading.Lock()
        self.made = 0

    @contextlib.contextmanager
    def borrow(self) -> Iterator[nn.Module]:
        """A replica for the enclosed pass (a new one when all are in use); it must come back without hooks."""
        with self._lock:
            replica = self._free.pop() if self._free else None
        if replica is None:
            tensors = [*self._prototype.parameters(), *self._prototype.buffers()]
            replica = copy.deepcopy(self._prototype, memo={id(t): t for t in tensors})
            with self._lock:
                self.made += 1
        try:
            yield replica
        finally:
            with self._lock:
                self._free.append(replica)
