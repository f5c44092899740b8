"""The frame of every page: wide layout, the user's defaults, navigation, the sidebar's pickers, title and teaser."""

from __future__ import annotations

import streamlit as st

from pages.ui.errors import friendly_errors
from pages.ui.resources import model_table
from pages.ui.state import Subject, class_labels, current_subject, ensure_defaults

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
            explainer, analysis, target = current_subject()
            st.session_state.target_choice = target
            st.selectbox(
                "Target class",
                range(len(explainer.labels)),
                key="target_choice",
                on_change=_choose_target,
                format_func=class_labels(explainer, analysis).__getitem__,
                help="Type to search any ImageNet class. Every page explains this class.",
            )


def page(title: str, teaser: str) -> Subject | None:
    """Start a page: wide layout, the user's defaults, navigation and the sidebar, the title and one line on what the
    page shows. Returns the user's model, analysed image and class, or None when they cannot be had (the reason is
    then shown in the page)."""
    st.set_page_config(page_title=f"{title} · CAM Explorer", page_icon=":material/center_focus_strong:",
                       layout="wide")
    ensure_defaults()
    navigation()
    sidebar()
    st.title(title)
    st.caption(teaser)
    with friendly_errors():
        return current_subject()
    return None
