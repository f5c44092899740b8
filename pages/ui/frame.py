"""The frame of every page: wide layout, the user's defaults (or a shared link's), navigation, the sidebar's
pickers and link, the title, the teaser and the warnings that hold on every page."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import streamlit as st

from cam_core import methods
from pages.ui.errors import error_text
from pages.ui.resources import DEFAULT_MODEL, model_table
from pages.ui.state import (
    DEFAULT_EXAMPLE,
    Subject,
    apply_link,
    class_labels,
    current_example,
    current_subject,
    ensure_defaults,
    explaining_own_model,
    link_params,
    own_model,
    own_model_title,
)
from pages.ui.widgets import format_probability

COMPARE = "Compare methods"  # the title of the page with the methods picker (key compare_methods)
YOUR_MODEL = "Your model"  # the title of the page where a user brings a model of their own
YOUR_MODEL_CHOICE = "Your model…"  # the model picker's entry that opens that page
PAGES = (
    ("app.py", "Home", ":material/home:"),
    ("pages/compare.py", COMPARE, ":material/grid_view:"),
    ("pages/figure.py", "Figure", ":material/view_comfy:"),
    ("pages/learn.py", "Learn", ":material/school:"),
    ("pages/channels.py", "Channels", ":material/layers:"),
    ("pages/clusters.py", "Clusters", ":material/scatter_plot:"),
    ("pages/evaluate.py", "Evaluate", ":material/analytics:"),
    ("pages/your_model.py", YOUR_MODEL, ":material/upload_file:"),
)
# Below 1 % the model all but rules the class out (ten times the 0.1 % of a class it knows nothing of among 1000, yet
# under one chance in a hundred): its maps then show what would raise a score the decision does not rest on.
LOW_PROBABILITY = 0.01


def navigation(params: dict[str, str]) -> None:
    """Links to every page, with titles and icons, at the top of the sidebar; each carries the view's query
    parameters (so a link opened in a new tab keeps the view)."""
    with st.sidebar:
        for path, label, icon in PAGES:
            st.page_link(path, label=label, icon=icon, query_params=params)
        st.divider()


def _choose_model() -> None:
    if st.session_state.model_choice == YOUR_MODEL_CHOICE:  # a callback may not switch pages: page() does
        st.session_state.open_your_model = True
        return
    st.session_state.model_name = st.session_state.model_choice
    st.session_state.pop("target", None)


def _choose_target() -> None:
    st.session_state.target = st.session_state.target_choice


def read_link() -> list[str]:
    """On a session's first run, the model, example, class and methods of the URL it opened; the messages about
    values it cannot use."""
    if st.session_state.get("link_read"):
        return []
    st.session_state.link_read = True
    return apply_link(st.query_params.to_dict(), [card.id for card in methods()])


def keep_methods(title: str) -> None:
    """Compare's methods outlive the pages without its picker: kept under shared_methods, taken from the picker on
    Compare and given back to the picker's key on every other page (where Streamlit would otherwise let the key fall
    back to an older value)."""
    if title == COMPARE and "compare_methods" in st.session_state:
        st.session_state.shared_methods = list(st.session_state.compare_methods)
    elif st.session_state.get("shared_methods"):
        st.session_state.compare_methods = list(st.session_state.shared_methods)


def _url_path(title: str) -> str:
    """The URL path Streamlit gives the page with this title ("" for Home)."""
    return next((Path(path).stem for path, label, _ in PAGES[1:] if label == title), "")


def share_link(title: str) -> None:
    """The URL bar and a copyable link carry the model, example, class, methods and page; an upload is said not to."""
    params = link_params()
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
    base = (st.context.url or "").rstrip("/")
    for path, _, _ in PAGES[1:]:  # st.context.url may or may not end with the current page's path
        base = base.removesuffix(f"/{Path(path).stem}")
    st.markdown("**Link to this view**")
    st.code(f"{base}/{_url_path(title)}?{urlencode(params, safe=',')}", language=None, wrap_lines=True)
    if explaining_own_model():
        st.caption(f":material/info: This model is your own: a link cannot carry it, so the link opens the default "
                   f"model ({DEFAULT_MODEL}) on its top class.")
    if current_example() is None:
        st.caption(f":material/info: This image is an upload: a link cannot carry it, so the link opens the "
                   f"default photo ({DEFAULT_EXAMPLE}) with the same model, class and methods.")
    elif not explaining_own_model():
        st.caption("Opens this page with the same model, example photo, class and Compare methods.")


def sidebar(subject: Subject | None, title: str) -> None:
    """Model and class pickers, the current image and the link to this view.

    The choices live in session_state under model_name and target, which outlive page switches; the widgets'
    own keys are re-seeded from them on every run and write back through their callbacks. Without a loaded model
    there is no class picker, but the model picker stays.
    """
    table = model_table()
    own = own_model()
    titles = {name: f"{name} {'· offline' if offline else '· needs internet'}" for name, (_, offline) in table.items()}
    if own is not None:
        titles[own.spec.name] = own_model_title(own)
    titles[YOUR_MODEL_CHOICE] = YOUR_MODEL_CHOICE
    with st.sidebar:
        st.session_state.model_choice = st.session_state.model_name
        st.selectbox(
            "Model",
            list(titles),
            key="model_choice",
            format_func=titles.__getitem__,
            help="Models marked offline ship their ImageNet weights inside a Python package. \"Your model…\" "
            "brings one of your own (for this session alone).",
            on_change=_choose_model,
        )
        st.image(st.session_state.image, caption=st.session_state.image_name, width="stretch")
        if subject is None:
            st.caption("The class picker comes back once a model loads: choose a model marked offline.")
        else:
            explainer, analysis, target = subject
            st.session_state.target_choice = target
            st.selectbox(
                "Target class",
                range(len(explainer.labels)),
                key="target_choice",
                on_change=_choose_target,
                format_func=class_labels(explainer, analysis).__getitem__,
                help="Type to search any ImageNet class. Every page explains this class.",
            )
        st.divider()
        share_link(title)


def low_probability_warning(subject: Subject) -> None:
    """A warning when the model gives the class explained less than LOW_PROBABILITY."""
    explainer, analysis, target = subject
    probability = float(analysis.probabilities[target])
    if probability >= LOW_PROBABILITY:
        return
    _, top_label, top_probability = analysis.top_k(1)[0]
    st.warning(f"The model gives **{explainer.labels[target]}** {format_probability(probability)}: it barely sees "
               "this class here, so its maps explain evidence the model does not act on (its top class is "
               f"{top_label}, {format_probability(top_probability)}).", icon=":material/visibility_off:")


def page(title: str, teaser: str) -> Subject | None:
    """Start a page: wide layout, the user's defaults (or the link's), navigation and the sidebar, the title, one
    line on what the page shows and the warnings. Returns the user's model, analysed image and class, or None when
    they cannot be had (the reason is then shown once, under the title)."""
    st.set_page_config(page_title=f"{title} · CAM Explorer", page_icon=":material/center_focus_strong:",
                       layout="wide")
    ensure_defaults()
    if st.session_state.pop("open_your_model", False) and title != YOUR_MODEL:
        st.switch_page("pages/your_model.py")
    problems = read_link()
    keep_methods(title)
    try:
        subject, failure = current_subject(), None
    except Exception as exc:  # noqa: BLE001 - a model that cannot load (or anything else) is said once, below
        subject, failure = None, error_text(exc)
    navigation(link_params())
    sidebar(subject, title)
    st.title(title)
    st.caption(teaser)
    for problem in problems:
        st.warning(problem, icon=":material/link_off:")
    if subject is None:
        st.error(failure, icon=":material/error:")
    else:
        low_probability_warning(subject)
    return subject
