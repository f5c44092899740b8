"""The user's session: their image, model and class, kept in st.session_state across pages."""

from __future__ import annotations

from typing import NamedTuple

import streamlit as st
from PIL import Image

from cam_core import Analysis, CamError, Explainer
from cam_core.inputs.examples import examples, load_example
from cam_core.inputs.images import load_image
from pages.ui import resources
from pages.ui.widgets import format_probability

DEFAULT_EXAMPLE = "chelsea"
DISPLAY_SIDE = 1600
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff"]


class Subject(NamedTuple):
    """What every page explains: the chosen model, the user's image analysed by it, and the class."""

    explainer: Explainer
    analysis: Analysis
    target: int


def _fit_for_display(image: Image.Image) -> tuple[Image.Image, str]:
    if max(image.size) <= DISPLAY_SIDE:
        return image, ""
    scaled = image.copy()
    scaled.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE), Image.LANCZOS)
    return scaled, f" (explained at {scaled.width}×{scaled.height})"


def set_image(image: Image.Image, name: str) -> None:
    """Make image the user's current image; the class goes back to the top prediction."""
    shown, note = _fit_for_display(image)
    st.session_state.image = shown
    st.session_state.image_name = name
    st.session_state.image_note = f"{image.width}×{image.height} pixels{note}"
    st.session_state.pop("target", None)


def ensure_defaults() -> None:
    """First visit: the default model and the default example photo."""
    st.session_state.setdefault("model_name", resources.DEFAULT_MODEL)
    if "image" not in st.session_state:
        set_image(load_example(DEFAULT_EXAMPLE), f"example: {DEFAULT_EXAMPLE}")


def on_upload() -> None:
    """file_uploader callback: decode the upload or keep the previous image and say why."""
    upload = st.session_state.get("upload")
    if upload is None:
        return
    try:
        set_image(load_image(upload.getvalue()), upload.name)
        st.session_state.pop("image_error", None)
    except CamError as exc:
        st.session_state.image_error = f"{upload.name}: {exc}"


def on_example() -> None:
    """Example picker callback."""
    name = st.session_state.get("example")
    if name:
        set_image(load_example(name), f"example: {name}")
        st.session_state.pop("image_error", None)


def example_names() -> list[str]:
    """The names of the example photos."""
    return list(examples())


def current_explainer() -> Explainer:
    """The chosen model, loaded once for all sessions."""
    return resources.explainer(st.session_state.model_name)


def current_analysis() -> Analysis:
    """The cached Analysis of the user's image with the chosen model (one forward pass the first time)."""
    return current_explainer().analyze(st.session_state.image)


def current_target(analysis: Analysis) -> int:
    """The user's class, or the top prediction when none is chosen yet."""
    if st.session_state.get("target") is None:
        st.session_state.target = analysis.top_k(1)[0][0]
    return int(st.session_state.target)


def current_subject() -> Subject:
    """The chosen model, the user's image analysed by it and the user's class (CamError if the model cannot load)."""
    explainer, analysis = current_explainer(), current_analysis()
    return Subject(explainer, analysis, current_target(analysis))


def _label(name: str, index: int, probability: float) -> str:
    return f"{name} ({index}) · {format_probability(probability)}"


def class_label(explainer: Explainer, analysis: Analysis, index: int) -> str:
    """A class's name, index and probability on the user's image."""
    return _label(explainer.labels[index], index, float(analysis.probabilities[index]))


def class_labels(explainer: Explainer, analysis: Analysis) -> list[str]:
    """class_label of every class, in class order (for the class pickers: one tensor read, not one per class)."""
    pairs = zip(explainer.labels, analysis.probabilities.tolist(), strict=True)
    return [_label(label, index, probability) for index, (label, probability) in enumerate(pairs)]
