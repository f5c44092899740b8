"""What every session shares: the loaded models, the model table, the turns at computing maps and the result stores."""

from __future__ import annotations

import os

import streamlit as st
import torch

from cam_core import Explainer, read_specs
from cam_core.engine.lru import ByteLRU
from cam_core.sharing.slots import FairSlots

DEFAULT_MODEL = "mobilenet_v2"
# Maps computed and drawn at once across all sessions. Sessions beyond take turns, first come first served: each
# running session holds the interpreter lock part of the time (drawing pictures, sending them), so a few at a time
# finish sooner, and leave the server free to answer a newcomer's page, than every session at once.
GRID_TURNS = FairSlots(capacity=lambda: max(2, os.cpu_count() or 1))


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def explainer(name: str) -> Explainer:
    """One loaded model per name, shared by every session (its passes are serialised inside cam_core).

    torch runs single-threaded here: the dashboard's work is many small operations from several sessions' threads,
    for which a second intra-op thread only adds spin-waiting against the browser and the other sessions.
    """
    torch.set_num_threads(1)
    return Explainer(name)


@st.cache_data(show_spinner=False)
def model_table() -> dict[str, tuple[str, bool]]:
    """Model name → (title, works offline)."""
    return {name: (spec.title, spec.embedded) for name, spec in read_specs().items()}


@st.cache_resource(show_spinner=False)
def result_store(name: str, max_bytes: int) -> ByteLRU:
    """One store per kind of result for the whole server (results that depend only on the model, the image, the
    class and the settings, so every session shares them), bounded in bytes."""
    return ByteLRU(max_bytes)
