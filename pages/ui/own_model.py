"""The "Your model" panel: an architecture, the user's weights, labels and preprocessing become a model of this
session alone (kept in st.session_state, counted against the server's bound on users' models)."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from cam_core import CamError
from cam_core.engine.own_models import OwnModel, architectures, build_own_model, default_preprocessing, spec_fragment
from cam_core.models.specs import Preprocessing
from cam_core.sharing.model_budget import OWN_CACHE_BYTES, OWN_MODELS, model_cost, own_models_limit
from pages.ui import resources
from pages.ui.errors import error_text
from pages.ui.state import OWN_MODEL, own_model, own_model_title

DEFAULT_ARCHITECTURE = "torchvision:resnet18"
WEIGHT_TYPES = ["safetensors", "pt", "pth", "bin"]
UPLOAD = "Upload a file (safetensors or a torch.save state_dict)"
PRETRAINED = "Use the publisher's pretrained weights (needs internet)"
RANDOM = "Random weights (to try the panel)"
LABELS_FILE = "A file: one name a line, or JSON"
NUMBERED = "class 0 … N-1"
INTERPOLATIONS = ["bilinear", "bicubic"]
MIB = float(1 << 20)
WEIGHTS_NAME = "own_weights_name"  # the uploaded file's name, which the models.yaml fragment points at


@dataclass(frozen=True)
class Request:
    """What the user asked the panel to load."""

    architecture: str  # "source:name", as architectures() lists them
    weights: bytes | None  # None: pretrained or random
    weights_name: str
    labels: bytes | None  # None: class 0 … N-1
    preprocessing: Preprocessing
    pretrained: bool = False


def split_architecture(choice: str) -> tuple[str, str]:
    """("torchvision", "resnet18") from "torchvision:resnet18"."""
    source, _, name = choice.partition(":")
    return source, name


def architecture_label(choice: str) -> str:
    """How the architecture picker shows an id: "resnet18 · torchvision"."""
    source, name = split_architecture(choice)
    return f"{name} · {source}"


def parse_triple(text: str, what: str) -> tuple[float, float, float]:
    """Three numbers typed as "0.485, 0.456, 0.406"; a CamError saying what is wrong otherwise."""
    parts = [part for part in text.replace(",", " ").split() if part]
    try:
        values = tuple(float(part) for part in parts)
    except ValueError as exc:
        raise CamError(f"the {what} must be three numbers (red, green, blue), not {text!r}") from exc
    if len(values) != 3:
        raise CamError(f"the {what} must be three numbers (red, green, blue), not {len(values)}: {text!r}")
    if what == "std" and min(values) <= 0:
        raise CamError(f"the std must be above 0 for every colour, not {text!r}")
    return values


def triple_text(values: tuple[float, float, float]) -> str:
    return ", ".join(f"{value:g}" for value in values)


def load(request: Request) -> OwnModel:
    """Build the request's model and charge it to the server's bound (a CamError, and nothing kept, when it does not
    fit or cannot be built)."""
    source, name = split_architecture(request.architecture)
    what = f"Your {name}"
    if request.weights is not None:
        OWN_MODELS.check(model_cost(len(request.weights)), what)
    own = build_own_model(source, name, request.weights, request.weights_name, request.labels,
                          preprocessing=request.preprocessing, pretrained=request.pretrained)
    own.explainer.cache.max_bytes = OWN_CACHE_BYTES
    OWN_MODELS.charge(own.explainer, model_cost(own.nbytes), what)
    return own


def forget() -> None:
    """Drop the session's own model (its bytes go back to the server at once); the sidebar goes back to the
    default model if it was showing it."""
    own = st.session_state.pop(OWN_MODEL, None)
    st.session_state.pop(WEIGHTS_NAME, None)
    if own is None:
        return
    OWN_MODELS.release(own.explainer)
    if st.session_state.get("model_name") == own.spec.name:
        st.session_state.model_name = resources.DEFAULT_MODEL
        st.session_state.pop("target", None)


def replace(request: Request) -> OwnModel:
    """Load the request as the session's model, in place of the one it had (released first, so a replacement of
    the same size fits); every page explains it from now on."""
    forget()
    own = load(request)
    st.session_state[OWN_MODEL] = own
    st.session_state[WEIGHTS_NAME] = request.weights_name
    st.session_state.model_name = own.spec.name
    st.session_state.pop("target", None)
    return own


def _reset_preprocessing() -> None:
    """The chosen architecture's known preprocessing, into the preprocessing widgets."""
    try:
        prep = default_preprocessing(*split_architecture(st.session_state.own_architecture))
    except CamError as exc:
        st.session_state.own_error = error_text(exc)
        return
    st.session_state.own_input_size = prep.input_size
    st.session_state.own_mean = triple_text(prep.mean)
    st.session_state.own_std = triple_text(prep.std)
    st.session_state.own_interpolation = prep.interpolation if prep.interpolation in INTERPOLATIONS else "bilinear"


def _architecture() -> str:
    choices = architectures()
    st.session_state.setdefault("own_architecture", DEFAULT_ARCHITECTURE)
    if "own_input_size" not in st.session_state:
        _reset_preprocessing()
    return st.selectbox("Architecture", choices, key="own_architecture", format_func=architecture_label,
                        on_change=_reset_preprocessing,
                        help=f"Any of torchvision's {sum(c.startswith('torchvision:') for c in choices)} "
                        f"classification builders or timm's {sum(c.startswith('timm:') for c in choices)} models: "
                        "type to search.")


def _weights() -> tuple[bytes | None, str, bool]:
    """(the uploaded file's bytes or None, its name, pretrained)."""
    kind = st.radio("Weights", [UPLOAD, PRETRAINED, RANDOM], key="own_weights_kind")
    if kind != UPLOAD:
        return None, "", kind == PRETRAINED
    limit = st.get_option("server.maxUploadSize")
    upload = st.file_uploader("Your weights", type=WEIGHT_TYPES, key="own_weights_file",
                              help=f"Read with torch.load(weights_only=True): a file that would run code is refused. "
                              f"Up to {limit} MB (server.maxUploadSize in .streamlit/config.toml).")
    return (None, "", False) if upload is None else (upload.getvalue(), upload.name, False)


def _labels() -> bytes | None:
    kind = st.radio("Labels", [NUMBERED, LABELS_FILE], key="own_labels_kind", horizontal=True,
                    help="The number of classes is read from the head's shape; a file must name as many.")
    if kind == NUMBERED:
        return None
    upload = st.file_uploader("Class names", type=["txt", "json", "csv"], key="own_labels_file",
                              help="A text file with one name a line, or a JSON list (or index → name mapping).")
    return None if upload is None else upload.getvalue()


def _preprocessing() -> Preprocessing:
    with st.expander("Preprocessing (from the architecture's known config; editable)", expanded=True):
        size, interpolation = st.columns(2)
        input_size = size.number_input("Input size", min_value=16, max_value=1024, step=16, key="own_input_size")
        mode = interpolation.radio("Resize", INTERPOLATIONS, key="own_interpolation", horizontal=True)
        mean, std = st.columns(2)
        mean_text = mean.text_input("Mean (R, G, B)", key="own_mean")
        std_text = std.text_input("Std (R, G, B)", key="own_std")
        st.caption("The whole image is resized to the input size (no crop), scaled to 0 … 1, then normalised.")
    return Preprocessing(int(input_size), parse_triple(mean_text, "mean"), parse_triple(std_text, "std"), mode)


def _request() -> Request | None:
    """The panel's inputs; None (with the reason shown) when they are not complete."""
    architecture = _architecture()
    weights, weights_name, pretrained = _weights()
    labels = _labels()
    try:
        preprocessing = _preprocessing()
    except CamError as exc:
        st.error(str(exc), icon=":material/error:")
        return None
    if st.session_state.own_weights_kind == UPLOAD and weights is None:
        st.caption(":material/info: Upload your weights file to load the model.")
        return None
    if st.session_state.own_labels_kind == LABELS_FILE and labels is None:
        st.caption(":material/info: Upload the class names, or choose class 0 … N-1.")
        return None
    return Request(architecture, weights, weights_name, labels, preprocessing, pretrained)


def inputs() -> None:
    """The panel's inputs and its Load button; a failure is a message here (and this session keeps no model)."""
    if st.session_state.get("own_error"):
        st.error(st.session_state.pop("own_error"), icon=":material/error:")
    request = _request()
    if not st.button("Load", type="primary", disabled=request is None, icon=":material/upload:"):
        return
    try:
        with st.spinner("Building the model and finding its layers…"):
            replace(request)
    except Exception as exc:  # noqa: BLE001 - any failure of a user's file is a message, never a traceback
        st.session_state.own_error = error_text(exc)
    st.rerun()  # the sidebar's picker and class list follow the new model


def fragment_name(own: OwnModel) -> str:
    """The file name of the model's models.yaml fragment."""
    return f"{own.spec.name}.yaml"


def weights_file_name(own: OwnModel) -> str:
    """The weights file the fragment points at: the upload's own name (or the architecture's, without one)."""
    return st.session_state.get(WEIGHTS_NAME) or f"{own.spec.name}.safetensors"


def summary(own: OwnModel) -> None:
    """What was loaded: the model's title, weights, classes, the layers the finder chose and its notes, the memory
    it counts, and its models.yaml fragment to download."""
    spec = own.spec
    st.success(f"**{own_model_title(own)}** is loaded for this session: every page explains it now.",
               icon=":material/check:")
    st.page_link("pages/compare.py", label="Compare methods on it", icon=":material/grid_view:")
    labels = own.explainer.labels
    shown = ", ".join(labels[:8]) + (f", … ({len(labels)} in all)" if len(labels) > 8 else "")
    sha = f" · sha256 {own.weights_sha256[:12]}…" if own.weights_sha256 else ""
    head = " → ".join(spec.head) if spec.head else "none: every method runs full passes"
    st.markdown(f"**Weights:** {own.explainer.model.weights_source}{sha}  \n"
                f"**Classes:** {shown}  \n"
                f"**Target layer (found):** `{spec.target_layer}` · layout {spec.layout}  \n"
                f"**Head after it:** {head}  \n"
                f"**Pyramid:** {', '.join(f'`{name}`' for name in spec.pyramid) or 'the target layer only'}")
    for note in own.notes:
        st.info(note, icon=":material/lightbulb:")
    cost = model_cost(own.nbytes)
    st.caption(f"Parameters and buffers: {own.nbytes / MIB:.0f} MiB; counted as {cost / MIB:.0f} MiB (its working "
               f"copies and analysis cache) against the {own_models_limit() / MIB:.0f} MiB the server gives users' "
               f"models ({OWN_MODELS.used / MIB:.0f} MiB in use). Yours alone; it goes when this session ends.")
    st.download_button("Save it for next time: the models.yaml fragment", icon=":material/download:",
                       data=spec_fragment(spec, weights_file_name(own)), file_name=fragment_name(own),
                       mime="application/yaml", on_click="ignore", key="own_fragment")
    st.caption(f"Put it next to your weights file (it names `{weights_file_name(own)}`), then use it from Python "
               "(`Explainer.from_spec` also takes the fragment's entry as a mapping) or the command line:")
    st.code(f'from cam_core import Explainer\nexplainer = Explainer("{spec.name}", models_file="{fragment_name(own)}")',
            language="python", wrap_lines=True)
    st.code(f"python -m cam_core explain IMAGE --model-file {fragment_name(own)} --out map.npz", language="bash",
            wrap_lines=True)
    st.button("Forget my model", on_click=forget, icon=":material/delete:")


def panel() -> None:
    """The whole panel: the inputs on the left, the loaded model on the right."""
    left, right = st.columns([3, 2], gap="large")
    with left:
        inputs()
    with right:
        own = own_model()
        if own is None:
            st.info("No model of yours yet: choose an architecture, give its weights and labels, and Load. It stays "
                    "in this session only; links cannot carry it.", icon=":material/info:")
        else:
            summary(own)
