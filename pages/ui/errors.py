"""Friendly errors: bad input, a model that cannot load or anything unexpected is a message in the page, never a
traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import streamlit as st

from cam_core import CamError


def error_text(exc: Exception) -> str:
    """What to tell the user about a problem: a CamError's own message, else what went wrong and what to try."""
    if isinstance(exc, CamError):
        return str(exc)
    return f"Something went wrong ({type(exc).__name__}: {exc}). Try another image, model or setting."


@contextlib.contextmanager
def friendly_errors() -> Iterator[None]:
    """Show problems as a message in the page, never as a traceback."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the page must survive anything, and say what happened
        st.error(error_text(exc), icon=":material/error:")
