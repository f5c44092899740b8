"""A process-wide bound in bytes on the models users bring (the dashboard's "Your model" panel): each loaded model is
charged when it is admitted and released when it is replaced or garbage-collected (its session ended)."""

from __future__ import annotations

import os
import threading
import weakref
from typing import Callable

from cam_core.errors import CamError

DEFAULT_OWN_MODELS_BYTES = 4 << 30
OWN_CACHE_BYTES = 256 << 20  # the analysis cache of one user's model (a shared model's default is 1 GiB)
# Copies of a model's tensors an Explainer may hold: the network, its batched-inference copy and its guided copy.
WORKING_COPIES = 3
GIB = float(1 << 30)


def bytes_from_env(variable: str, default: int) -> int:
    """A bound in bytes from the environment variable, or default where it is not set."""
    value = os.environ.get(variable)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise CamError(f"{variable} must be a number of bytes, not {value!r}") from exc


def own_models_limit() -> int:
    """The bound on all sessions' own models together: $CAM_OWN_MODELS_BYTES or 4 GiB."""
    return bytes_from_env("CAM_OWN_MODELS_BYTES", DEFAULT_OWN_MODELS_BYTES)


def model_cost(tensor_bytes: int, cache_bytes: int = OWN_CACHE_BYTES) -> int:
    """What a user's model is charged: its parameters and buffers (tensor_bytes) in every working copy, and the
    bound of its analysis cache."""
    return WORKING_COPIES * tensor_bytes + cache_bytes


def _gib(nbytes: int) -> str:
    return f"{nbytes / GIB:.2f} GiB"


class ModelBudget:
    """Bytes held by live owners (an Explainer each), at most limit() in all.

    charge() admits an owner or refuses it with a CamError; the bytes come back when release(owner) is called or
    when the owner is garbage-collected (weakref.finalize), whichever comes first. The lock is re-entrant because a
    collection may run an owner's finalizer on the thread that holds it.
    """

    def __init__(self, limit: Callable[[], int] = own_models_limit) -> None:
        self._limit = limit
        self._lock = threading.RLock()
        self._held: list[weakref.finalize] = []
        self._used = 0

    @property
    def used(self) -> int:
        """Bytes charged to owners still alive."""
        with self._lock:
            return self._used

    @property
    def owners(self) -> int:
        """How many owners hold bytes."""
        with self._lock:
            return sum(1 for finalizer in self._held if finalizer.alive)

    def check(self, nbytes: int, what: str) -> None:
        """A CamError when nbytes more would not fit now (before building something that large)."""
        with self._lock:
            self._refuse_beyond(nbytes, what)

    def charge(self, owner: object, nbytes: int, what: str) -> None:
        """Hold nbytes for owner until it is released or collected; a CamError, and nothing held, when they do not
        fit."""
        with self._lock:
            self._refuse_beyond(nbytes, what)
            self._used += nbytes
            self._held.append(weakref.finalize(owner, self._give_back, nbytes))

    def release(self, owner: object) -> None:
        """Give back owner's bytes now (a model replaced); nothing happens for an owner not charged."""
        with self._lock:
            mine = [finalizer for finalizer in self._held if (finalizer.peek() or (None,))[0] is owner]
        for finalizer in mine:
            finalizer()

    def _give_back(self, nbytes: int) -> None:
        with self._lock:
            self._used -= nbytes
            self._held = [finalizer for finalizer in self._held if finalizer.alive]

    def _refuse_beyond(self, nbytes: int, what: str) -> None:
        limit = self._limit()
        if self._used + nbytes > limit:
            raise CamError(
                f"{what} needs about {_gib(nbytes)}, and the models users brought to this server already hold "
                f"{_gib(self._used)} of the {_gib(limit)} they may share (CAM_OWN_MODELS_BYTES): try again once "
                "other sessions have ended, or a smaller model."
            )


OWN_MODELS = ModelBudget()  # every session's own models in this process
