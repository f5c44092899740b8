"""A least-recently-used cache bounded by the bytes its values hold."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, Protocol, TypeVar


class Sized(Protocol):
    nbytes: int


V = TypeVar("V", bound=Sized)


class ByteLRU(Generic[V]):
    """Keeps values until their summed nbytes passes max_bytes, then drops the least recently used.

    Values may grow after insertion (lazy quantities): call trim() after they do. A value's nbytes must be a number
    it publishes, readable without taking any lock of the value's (so the cache's lock, held while reading them, is
    a leaf: see cam_core.sharing). on_drop runs after a trim that dropped values, outside the lock.
    """

    def __init__(self, max_bytes: int, on_drop: Callable[[], None] | None = None):
        self.max_bytes = max_bytes
        self.on_drop = on_drop
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> V:
        """Store value (or return the one already stored under key) and trim."""
        with self._lock:
            value = self._items.setdefault(key, value)
            self._items.move_to_end(key)
        self.trim()
        return value

    def trim(self) -> None:
        """Drop least recently used values until the total fits; the most recent one always stays."""
        dropped = []
        with self._lock:
            total = sum(value.nbytes for value in self._items.values())
            while total > self.max_bytes and len(self._items) > 1:
                dropped.append(self._items.popitem(last=False)[1])
                total -= dropped[-1].nbytes
        if dropped and self.on_drop is not None:
            dropped.clear()
            self.on_drop()

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(value.nbytes for value in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
