"""Friendly errors: bad input, a model that cannot load or anything unexpected is a message in the page, never a
traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import streamlit as st

from cam_core import CamError


@contextlib.contextmanager
def friendly_errors() -> Iterator[None]:
    """Show problems as a message in the page, never as a traceback."""
    try:
        yield
    except CamError as exc:
        st.error(str(exc), icon=":material/error:")
    except Exception as exc:  # noqa: BLE001 - the page must survive anything, and say what happened
        st.error(f"Something went wrong ({type(exc).__name__}: {exc}). Try another image, model or setting.",
                 icon=":material/error:")
