"""The user's session: their image, model and class, kept in st.session_state across pages."""

from __future__ import annotations

import io
from collections.abc import Collection, Mapping
from typing import NamedTuple

import streamlit as st
from PIL import Image

from cam_core import Analysis, CamError, Explainer, read_specs
from cam_core.inputs.examples import examples, load_example
from cam_core.inputs.images import IMAGE_SUFFIXES, load_image
from cam_core.models.labels import label_set
from pages.ui import resources
from pages.ui.widgets import format_probability

DEFAULT_EXAMPLE = "chelsea"
DISPLAY_SIDE = 1600
UPLOAD_TYPES = [suffix.lstrip(".") for suffix in IMAGE_SUFFIXES]
IMAGE_UPLOAD_MB = 25  # per image uploader (the server allows more, for weights files)
EXAMPLE_PREFIX = "example: "
OWN_MODEL = "own_model"  # the session's own model (pages/ui/own_model.py), never shared with another session


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
    """Make image the user's current image; the class goes back to the top prediction, and the messages about the
    previous file go."""
    shown, note = _fit_for_display(image)
    st.session_state.image = shown
    st.session_state.image_name = name
    st.session_state.image_note = f"{image.width}×{image.height} pixels{note}"
    for key in ("target", "image_error", "image_notice"):
        st.session_state.pop(key, None)


def ensure_defaults() -> None:
    """First visit: the default model and the default example photo."""
    st.session_state.setdefault("model_name", resources.DEFAULT_MODEL)
    if "image" not in st.session_state:
        set_image(load_example(DEFAULT_EXAMPLE), f"{EXAMPLE_PREFIX}{DEFAULT_EXAMPLE}")


def _frames(data: bytes) -> int:
    """How many frames an image file holds (1 for a still picture)."""
    with Image.open(io.BytesIO(data)) as image:
        return getattr(image, "n_frames", 1)


def on_upload() -> None:
    """file_uploader callback: decode the upload (an animation's first frame, said so) or keep the previous image
    and say why."""
    st.session_state.pop("image_error", None)
    upload = st.session_state.get("upload")
    if upload is None:
        return
    data = upload.getvalue()
    try:
        image = load_image(data)
    except CamError as exc:
        st.session_state.image_error = f"{upload.name} was not used: {exc}. The image shown is still the previous one."
        return
    set_image(image, upload.name)
    frames = _frames(data)
    if frames > 1:
        st.session_state.image_notice = (f"{upload.name} is an animation of {frames} frames: the model sees one "
                                         "picture, so this explains its first frame.")


def on_example() -> None:
    """Example picker callback."""
    name = st.session_state.get("example")
    if name:
        set_image(load_example(name), f"{EXAMPLE_PREFIX}{name}")


def example_names() -> list[str]:
    """The names of the example photos."""
    return list(examples())


def example_description(name: str) -> str:
    """What an example photo shows and which ImageNet classes to try on it."""
    return examples()[name][0]


def example_label(name: str) -> str:
    """An example's name and what it shows, for the example picker."""
    return f"{name}: {example_description(name)}"


def current_example() -> str | None:
    """The example photo the user's image is, or None for an upload."""
    name = st.session_state.get("image_name", "").removeprefix(EXAMPLE_PREFIX)
    return name if st.session_state.get("image_name", "").startswith(EXAMPLE_PREFIX) and name in examples() else None


def _class_index(value: str, labels: list[str]) -> int | None:
    """A class named in a link by index or by exact (case-insensitive) name; None if there is none."""
    if value.strip().isdigit():
        index = int(value)
        return index if index < len(labels) else None
    lowered = [label.lower() for label in labels]
    return lowered.index(value.strip().lower()) if value.strip().lower() in lowered else None


def apply_link(params: Mapping[str, str], method_ids: Collection[str]) -> list[str]:
    """Set the model, example photo, class and Compare's methods that a shared link names (keys model, example,
    class, methods: comma-separated ids); returns one message per value that cannot be used and falls back."""
    problems = []
    specs = read_specs()
    model = params.get("model")
    if model is not None and model not in specs and model.startswith("own-"):
        problems.append(f"The link's model {model!r} was someone's own model, which a link cannot carry: showing "
                        f"{resources.DEFAULT_MODEL}.")
    elif model is not None and model not in specs:
        problems.append(f"The link's model {model!r} is not in this dashboard: showing {resources.DEFAULT_MODEL} "
                        f"(models: {', '.join(specs)}).")
    elif model is not None:
        st.session_state.model_name = model
    example = params.get("example")
    if example is not None and example not in examples():
        problems.append(f"The link's example {example!r} is not on this machine: showing {DEFAULT_EXAMPLE} "
                        f"(examples: {', '.join(examples())}).")
    elif example is not None:
        set_image(load_example(example), f"{EXAMPLE_PREFIX}{example}")
    value = params.get("class")
    labels = label_set(specs.get(st.session_state.get("model_name"), specs[resources.DEFAULT_MODEL]).labels)
    index = None if value is None else _class_index(value, labels)
    if value is not None and index is None:
        problems.append(f"The link's class {value!r} is not a class of this model (0 to {len(labels) - 1}, or an "
                        "exact class name): explaining the top prediction.")
    elif index is not None:
        st.session_state.target = index
    wanted = [name for name in params.get("methods", "").split(",") if name]
    unknown = [name for name in wanted if name not in method_ids]
    if unknown:
        problems.append(f"The link's method{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                        f"{'are' if len(unknown) > 1 else 'is'} not in this dashboard and left out "
                        f"(methods: {', '.join(method_ids)}).")
    if [name for name in wanted if name in method_ids]:
        st.session_state.shared_methods = [name for name in wanted if name in method_ids]
    return problems


def own_model():
    """The session's own model (a cam_core.engine.own_models.OwnModel), or None."""
    return st.session_state.get(OWN_MODEL)


def own_model_title(own) -> str:
    """How the model picker names a user's model: "resnet18 · your weights (5 classes)"."""
    weights = ("your weights" if own.weights_sha256 else
               "pretrained weights" if "download" in own.spec.weights else "random weights")
    return f"{own.spec.architecture} · {weights} ({len(own.explainer.labels)} classes)"


def explaining_own_model() -> bool:
    """Whether the chosen model is the session's own."""
    own = own_model()
    return own is not None and own.spec.name == st.session_state.get("model_name")


def link_params() -> dict[str, str]:
    """The query parameters of a link to the user's view: model, example (not for an upload), class, Compare's
    methods (once chosen). A user's own model cannot travel: its link names neither model nor class."""
    own = explaining_own_model()
    params = {} if own else {"model": st.session_state.model_name}
    example = current_example()
    if example is not None:
        params["example"] = example
    if st.session_state.get("target") is not None and not own:
        params["class"] = str(st.session_state.target)
    if st.session_state.get("shared_methods"):
        params["methods"] = ",".join(st.session_state.shared_methods)
    return params


def current_explainer() -> Explainer:
    """The chosen model: the session's own, or a models.yaml one loaded once for all sessions."""
    return own_model().explainer if explaining_own_model() else resources.explainer(st.session_state.model_name)


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
