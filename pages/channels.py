"""Channels page: the activation tensor one channel at a time, ranked by how much it counts."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from cam_core import Analysis
from cam_core.render.colourbar import picture_range, with_colour_bar
from cam_core.render.pictures import COLORMAPS, colorize, masked_input, overlay
from cam_core.views.channels import channel_saliency, channel_scores, rankings, scorecam_ready
from pages.ui.errors import friendly_errors
from pages.ui.frame import page
from pages.ui.widgets import ProgressLine, layer_picker, progress_callback


def ranking_chart(by: str, scores: np.ndarray, order: np.ndarray, shown: int) -> go.Figure:
    """Every channel's score, sorted, the gallery's channels in red."""
    count = len(scores)
    figure = go.Figure(go.Bar(x=list(range(count)), y=scores[order], customdata=order,
                              hovertemplate="channel %{customdata}: %{y:.4g}<extra></extra>",
                              marker_color=["#d0342c" if i < shown else "#9aa5b8" for i in range(count)]))
    figure.update_layout(height=220, margin=dict(l=0, r=0, t=30, b=0), bargap=0,
                         title=dict(text=f"{rankings()[by]}, sorted (red: the gallery below)", font=dict(size=14)),
                         xaxis=dict(title="rank"), yaxis=dict(title="score"))
    return figure


def one_channel(analysis: Analysis, layer: str, scores: np.ndarray, order: np.ndarray) -> None:
    """A picked channel's map over the image and the masked input Score-CAM makes of it."""
    mean = analysis.explainer.spec.preprocessing.mean
    channel = st.selectbox("Channel", [int(c) for c in order], key="channels_pick",
                           format_func=lambda c: f"#{c} · score {scores[c]:.4g}")
    mask, note = channel_saliency(analysis, channel, layer)
    left, right = st.columns(2)
    low, high = picture_range(analysis.activations(layer)[channel], analysis.size)
    picture = with_colour_bar(overlay(analysis.image, mask, alpha=0.55), low, high, COLORMAPS[0], "activation")
    left.image(picture, width="stretch", caption=f"Channel {channel}, upsampled to the image")
    right.image(masked_input(analysis.image, mask, mean), width="stretch",
                caption="The image kept where this channel's normalised map is high, the mean colour (the zero model "
                "input) where it is low: what Score-CAM feeds the network")
    if note:
        st.info(f"Channel {channel}: {note}", icon=":material/info:")


def channels() -> None:
    """The chosen layer's channels ranked, the top ones as a gallery and as Score-CAM's masked inputs, and one."""
    subject = page("Channels", "A CAM is a weighted sum of channels. Here are the channels themselves: which ones the "
                   "class leans on, and what each one sees in your image.")
    if subject is None:
        return
    explainer, analysis, target = subject
    with friendly_errors():
        c1, c2, c3 = st.columns([1.2, 1.6, 1])
        with c1:
            layer = layer_picker(explainer, "channels_layer")
        choices = rankings()
        by = c2.selectbox("Rank channels by", list(choices), format_func=choices.get, key="channels_rank")
        shown = c3.slider("Channels in the gallery", 8, 64, 24, 8, key="channels_count")
        activations = analysis.activations(layer)
        count, height, width = activations.shape
        zeros = float((activations == 0).float().mean())
        st.markdown(f"Activation tensor at **{layer}**: {count} channels × {height} × {width} positions · "
                    f"{zeros:.0%} of the values are zero · range {float(activations.min()):.3g} … "
                    f"{float(activations.max()):.3g}")
        if by == "scorecam" and not scorecam_ready(analysis, layer):
            st.info(f"Score-CAM contributions need one forward pass per channel ({count} masked inputs). They are "
                    "computed once for this image and layer; every class then uses them.", icon=":material/timer:")
            if not st.button("Compute Score-CAM contributions", icon=":material/play_arrow:",
                             key="channels_run_scorecam"):
                st.stop()
            bar = ProgressLine("Scoring masked inputs…")
            analysis.cam("scorecam", target=target, layer=layer,
                         progress=progress_callback(bar, "Scoring masked inputs"))
            bar.empty()
        scores = channel_scores(analysis, by, target=target, layer=layer)
        order = scores.argsort()[::-1]
        st.plotly_chart(ranking_chart(by, scores, order, shown), width="stretch", config={"displayModeBar": False})

        st.subheader("Top channels", divider="gray")
        top = order[:shown]
        tiles = [colorize(channel_saliency(analysis, int(c), layer)[0], COLORMAPS[0]) for c in top]
        st.image(tiles, caption=[f"#{c} · {scores[c]:.3g}" for c in top], width=112)
        st.caption("Each tile is one channel's map after the ReLU, scaled to its own range (the picked channel "
                   "below has its real values on a colour bar); under it, the channel's number and score.")

        st.subheader("What Score-CAM feeds the network", divider="gray")
        st.caption("The image kept where each top channel's upsampled, [0, 1]-scaled map is high and turned into the "
                   "mean colour of the training images (the zero model input, Score-CAM's baseline) where it is low: "
                   "one masked input per channel. Score-CAM runs each through the network and weights the channel by "
                   "the class score gain.")
        montage, mean = order[: min(12, shown)], explainer.spec.preprocessing.mean
        st.image([masked_input(analysis.image, channel_saliency(analysis, int(c), layer)[0], mean) for c in montage],
                 caption=[f"#{c}" for c in montage], width=180)

        st.subheader("One channel over the image", divider="gray")
        one_channel(analysis, layer, scores, order)


channels()
