"""What a thread does while it waits for shared work or for its turn: it tells the caller, who may give up."""

from __future__ import annotations

import contextlib
import threading
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable, Iterator

POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Wait:
    """Why a request is waiting: `ahead` requests run or wait before it, or (shared) another caller is already
    computing the same thing."""

    ahead: int = 0
    shared: bool = False

    def describe(self) -> str:
        if self.shared:
            return "another session is computing the same thing; its result will be shared"
        return f"{self.ahead} request{'s' if self.ahead != 1 else ''} ahead of yours"


WaitHook = Callable[[Wait], None]
_hook: ContextVar[WaitHook | None] = ContextVar("cam_core_wait_hook", default=None)


@contextlib.contextmanager
def on_wait(hook: WaitHook) -> Iterator[None]:
    """Within this block, hook(wait) is called from the waiting thread every POLL_SECONDS while it waits. An
    exception from hook abandons the wait (and the request), e.g. when the page that asked has moved on."""
    token = _hook.set(hook)
    try:
        yield
    finally:
        _hook.reset(token)


def report(wait: Wait) -> None:
    """Tell this thread's hook (if any) that it is waiting."""
    hook = _hook.get()
    if hook is not None:
        hook(wait)


def wait_for(event: threading.Event, wait: Wait) -> None:
    """Block until event is set, reporting wait while blocked."""
    while not event.wait(POLL_SECONDS):
        report(wait)
