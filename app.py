"""CAM Explorer's home page: the image, the model, the class. The other pages are in pages/."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from pages.ui.errors import friendly_errors
from pages.ui.frame import page
from pages.ui.state import (
    IMAGE_UPLOAD_MB,
    UPLOAD_TYPES,
    Subject,
    class_label,
    current_example,
    example_description,
    example_label,
    example_names,
    on_example,
    on_upload,
)
from pages.ui.widgets import format_probability


def _pick_target(index: int) -> None:
    st.session_state.target = index


def predictions(subject: Subject) -> None:
    """The top-5 chart, the class explained, buttons to explain another of the five, and the model's input."""
    explainer, analysis, target = subject
    top = analysis.top_k(5)
    st.subheader("Top-5 predictions")
    figure = go.Figure(
        go.Bar(
            x=[p for *_, p in top][::-1],
            y=[f"{label} ({index})" for index, label, _ in top][::-1],
            orientation="h",
            marker_color=["#d0342c" if index == target else "#9aa5b8" for index, *_ in top][::-1],
            text=[format_probability(p) for *_, p in top][::-1],
            textposition="auto",
        )
    )
    figure.update_layout(height=260, margin=dict(l=0, r=10, t=10, b=10), xaxis=dict(range=[0, 1],
                         tickformat=".0%"), yaxis=dict(automargin=True))
    st.plotly_chart(figure, width="stretch", config={"displayModeBar": False})
    st.markdown(f"**Explaining:** {class_label(explainer, analysis, target)}")
    st.caption("Explain another of the top-5 (or type any class in the sidebar):")
    for index, label, probability in top:
        st.button(f"{label} · {format_probability(probability)}", key=f"pick_{index}", on_click=_pick_target,
                  args=(index,), disabled=index == target, width="stretch")
    st.caption(f"Model: {explainer.spec.title}; weights: {explainer.model.weights_source}. The whole image is "
               f"resized to {explainer.spec.preprocessing.input_size}×{explainer.spec.preprocessing.input_size}, "
               "no crop.")


def home() -> None:
    """Choose an image (upload or example) and see the model's top-5 predictions for it."""
    subject = page("CAM Explorer", "Give it an image: see what the classifier predicts, then explore *why* on the "
                   "other pages.")
    if st.session_state.get("image_error"):
        st.error(st.session_state.image_error, icon=":material/broken_image:")
    if st.session_state.get("image_notice"):
        st.info(st.session_state.image_notice, icon=":material/animation:")
    left, right = st.columns([3, 2], gap="large")
    with left:
        upload_tab, example_tab = st.tabs([":material/upload: Upload", ":material/photo_library: Examples"])
        with upload_tab:
            st.file_uploader(f"An image of your own ({', '.join(UPLOAD_TYPES)})", key="upload", on_change=on_upload,
                             max_upload_size=IMAGE_UPLOAD_MB,
                             help="Any other file is refused with a message; an animation is explained by its "
                             "first frame.")
        with example_tab:
            st.selectbox("A real photo", example_names(), index=None, key="example", on_change=on_example,
                         format_func=example_label, placeholder="Choose an example photo")
        st.image(st.session_state.image, width="stretch")
        example = current_example()
        about = "" if example is None else f" · {example_description(example)}"
        st.caption(f"{st.session_state.image_name} · {st.session_state.image_note}{about}")
    if subject is not None:
        with right, friendly_errors():
            predictions(subject)


home()
