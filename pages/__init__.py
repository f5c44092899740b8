"""What every page shares: the loaded models, the user's image, model and class, navigation, friendly errors.

The dashboard is a classic Streamlit multipage app: app.py is the home page and every other file in this folder
is a page (Streamlit's page discovery skips this __init__.py). Streamlit only here; all CAM arithmetic lives in
cam_core.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pandas  # noqa: F401 - imported once here, before sessions race to import it lazily (see below)
import streamlit as st
import torch
from PIL import Image

from cam_core import Analysis, CamError, Explainer, MethodCard, Param, read_specs
from cam_core.inputs.examples import examples, load_example
from cam_core.inputs.images import load_image
from cam_core.sharing.slots import FairSlots
from cam_core.sharing.waiting import Wait, on_wait

# Streamlit and plotly import pandas on first use, and plotly takes it from sys.modules as soon as it appears there:
# two sessions drawing their first chart at the same moment then saw a half-imported pandas ("partially initialized
# module 'pandas' has no attribute 'Series"). Importing it with this package, which every page imports first,
# finishes it before any page runs.
DEFAULT_MODEL = "mobilenet_v2"
DEFAULT_EXAMPLE = "chelsea"
DISPLAY_SIDE = 1600
# Maps computed and drawn at once across all sessions. Sessions beyond take turns, first come first served: each
# running session holds the interpreter lock part of the time (drawing pictures, sending them), so a few at a time
# finish sooner, and leave the server free to answer a newcomer's page, than every session at once.
GRID_TURNS = FairSlots(capacity=lambda: max(2, os.cpu_count() or 1))
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff"]


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
    st.session_state.setdefault("model_name", DEFAULT_MODEL)
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
    return list(examples())


def current_explainer() -> Explainer:
    """The chosen model, loaded once for all sessions."""
    return explainer(st.session_state.model_name)


def current_analysis() -> Analysis:
    """The cached Analysis of the user's image with the chosen model (one forward pass the first time)."""
    return current_explainer().analyze(st.session_state.image)


def current_target(analysis: Analysis) -> int:
    """The user's class, or the top prediction when none is chosen yet."""
    if st.session_state.get("target") is None:
        st.session_state.target = analysis.top_k(1)[0][0]
    return int(st.session_state.target)


def class_label(explainer_: Explainer, analysis: Analysis, index: int) -> str:
    return f"{explainer_.labels[index]} ({index}) · {analysis.probabilities[index]:.1%}"


def class_labels(explainer_: Explainer, analysis: Analysis) -> list[str]:
    """class_label of every class, in class order (for the class pickers: one tensor read, not one per class)."""
    probabilities = analysis.probabilities.tolist()
    return [f"{label} ({index}) · {p:.1%}" for index, (label, p) in enumerate(zip(explainer_.labels, probabilities, strict=True))]


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


def _choose_model() -> None:
    st.session_state.model_name = st.session_state.model_choice
    st.session_state.pop("target", None)


def _choose_target() -> None:
    st.session_state.target = st.session_state.target_choice


def sidebar() -> None:
    """Model and class pickers and the current image.

    The choices live in session_state under model_name and target, which outlive page switches; the widgets'
    own keys are re-seeded from them on every run and write back through their callbacks.
    """
    table = model_table()
    with st.sidebar:
        st.session_state.model_choice = st.session_state.model_name
        st.selectbox(
            "Model",
            list(table),
            key="model_choice",
            format_func=lambda name: f"{name} {'· offline' if table[name][1] else '· needs internet'}",
            help="Models marked offline ship their ImageNet weights inside a Python package.",
            on_change=_choose_model,
        )
        st.image(st.session_state.image, caption=st.session_state.image_name, width="stretch")
        with friendly_errors():
            explainer_ = current_explainer()
            analysis = current_analysis()
            st.session_state.target_choice = current_target(analysis)
            st.selectbox(
                "Target class",
                range(len(explainer_.labels)),
                key="target_choice",
                on_change=_choose_target,
                format_func=class_labels(explainer_, analysis).__getitem__,
                help="Type to search any ImageNet class. Every page explains this class.",
            )


PAGES = (
    ("app.py", "Home", ":material/home:"),
    ("pages/compare.py", "Compare methods", ":material/grid_view:"),
    ("pages/learn.py", "Learn", ":material/school:"),
    ("pages/channels.py", "Channels", ":material/layers:"),
    ("pages/clusters.py", "Clusters", ":material/scatter_plot:"),
    ("pages/evaluate.py", "Evaluate", ":material/analytics:"),
)


def navigation() -> None:
    """Links to every page, with titles and icons, at the top of the sidebar."""
    with st.sidebar:
        for path, label, icon in PAGES:
            st.page_link(path, label=label, icon=icon)
        st.divider()


def page_setup(title: str, teaser: str) -> None:
    """What every page starts with: wide layout, the user's defaults, navigation and the sidebar, the title and one
    line on what the page shows."""
    st.set_page_config(page_title=f"{title} · CAM Explorer", page_icon=":material/center_focus_strong:",
                       layout="wide")
    ensure_defaults()
    navigation()
    sidebar()
    st.title(title)
    st.caption(teaser)


class ProgressLine:
    """A progress bar whose text also says when this session waits for the server: other sessions' passes ahead of
    its own, or the same work that another session started (and will share). Waiting inside `queue()` ends when the
    page reruns (the session moved on), so abandoned work is not finished for nobody."""

    def __init__(self, text: str):
        self._bar = st.progress(0.0, text=text)
        self.value, self.text, self._shown = 0.0, text, text

    def update(self, value: float, text: str) -> None:
        self.value, self.text, self._shown = min(max(value, 0.0), 1.0), text, text
        self._bar.progress(self.value, text=text)

    def waiting(self, wait: Wait) -> None:
        """Say why this session waits (only when that changes: each change is sent to the browser); reading the
        session state lets Streamlit stop this run here if the page has moved on."""
        text = f"{self.text} · waiting for the server: {wait.describe()}"
        if text != self._shown:
            self._shown = text
            self._bar.progress(self.value, text=text)
        _ = "model_name" in st.session_state

    @contextlib.contextmanager
    def queue(self) -> Iterator[None]:
        with on_wait(self.waiting):
            yield

    def empty(self) -> None:
        self._bar.empty()


def layer_picker(key: str) -> str:
    """A select box of the model's layers, deepest (the default target layer) first."""
    choices = current_explainer().model.layer_choices()[::-1]
    return st.selectbox("Layer", choices, key=key, help="Deeper layers: coarser maps, more class-specific channels.")


def stack_choices(explainer_: Explainer) -> list[str]:
    """The layers offered to multi-layer methods (the picker's layers and the pyramid), shallow to deep."""
    forward = [name for name, _ in explainer_.model.module.named_modules()]
    found = dict.fromkeys([*explainer_.model.layer_choices()[:-1], *explainer_.model.pyramid()])
    return sorted(found, key=forward.index)


def param_range(param: Param) -> str:
    """The values a parameter takes, in words."""
    if param.choices:
        return " | ".join(param.choices)
    if isinstance(param.default, bool):
        return "on | off"
    return f"{param.minimum:g} to {param.maximum:g}, default {param.default:g}"


def param_widget(card: MethodCard, param: Param, prefix: str = "param"):
    """A widget for one method parameter, keyed by prefix, method and name so that each page and method keeps its
    own setting."""
    key = f"{prefix}_{card.id}_{param.name}"
    label = param.name.replace("_", " ")
    if param.choices:
        return st.selectbox(label, param.choices, key=key, help=param.help)
    if isinstance(param.default, bool):
        return st.checkbox(label, value=param.default, key=key, help=param.help)
    if isinstance(param.default, int):
        return st.number_input(label, int(param.minimum), int(param.maximum), param.default, 1, key=key,
                               help=param.help)
    step = (param.maximum - param.minimum) / 100
    return st.slider(label, float(param.minimum), float(param.maximum), float(param.default), step, key=key,
                     help=param.help)
