"""The Evaluate page's sanity check: one method (or the edge-detector control) recomputed on copies of the model
randomised block by block from the head, over several seeds: the first seed's strip of maps, the spread of Spearman ρ
and SSIM over the seeds at each step, and a verdict that says how sure it is."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from cam_core import Analysis, Explainer, MethodCard, SanityReport
from cam_core.evaluation.sanity import SanityStep, edge_map, randomisation_check
from cam_core.render.pictures import COLORMAPS, overlay
from pages.ui.evaluation_views import keep
from pages.ui.resources import result_store
from pages.ui.widgets import ProgressLine, format_seconds, progress_callback

EDGE = "edge"
THRESHOLD = 0.5
STRIP_COLUMNS = 6
STRIP_SIDE = 360
KEPT_CHECKS = 256 * 2**20
MAX_SEEDS = 8
SERIES = (("spearman", "Spearman ρ", "#d0342c", "rgba(208, 52, 44, 0.18)"),
          ("ssim", "SSIM", "#2e6fd8", "rgba(46, 111, 216, 0.18)"))
VERDICT_BOXES = {"pass": (st.success, ":material/check_circle:"), "fail": (st.error, ":material/cancel:"),
                 "unclear": (st.warning, ":material/help:")}


def edge_detector(explainer: Explainer, image: Image.Image, target: int) -> np.ndarray:
    """The negative control: a Sobel edge map, the same whatever the model."""
    return edge_map(image)


def strip_picture(image: Image.Image, saliency: np.ndarray) -> Image.Image:
    """The map (at model-input size) over the image, both at the image's aspect ratio."""
    shown = image.convert("RGB")
    shown.thumbnail((STRIP_SIDE, STRIP_SIDE))
    resized = Image.fromarray(saliency.astype(np.float32), mode="F").resize(shown.size, Image.BILINEAR)
    return overlay(shown, np.clip(np.asarray(resized), 0, 1), alpha=0.55, colormap=COLORMAPS[0])


def step_name(step: SanityStep) -> str:
    """The last block a step randomised, or original."""
    return step.randomised[-1] if step.randomised else "original"


def sanity_figure(report: SanityReport, threshold: float = THRESHOLD) -> go.Figure:
    """Spearman ρ and SSIM of each step's map against the original's: the mean over the seeds, and their min–max
    band when there are several; the pass line."""
    names = [step_name(step) for step in report.steps]
    figure = go.Figure()
    several = len(report.seeds) > 1
    for field, title, colour, band in SERIES:
        values = np.array([getattr(spread, field) for spread in report.spread], dtype=float)
        if several:
            figure.add_trace(go.Scatter(x=names, y=values.max(axis=1), mode="lines", line=dict(width=0),
                                        hoverinfo="skip", showlegend=False, legendgroup=field))
            figure.add_trace(go.Scatter(x=names, y=values.min(axis=1), mode="lines", line=dict(width=0),
                                        fill="tonexty", fillcolor=band, hoverinfo="skip", legendgroup=field,
                                        name=f"{title}: min–max over {len(report.seeds)} seeds"))
        figure.add_trace(go.Scatter(
            x=names, y=values.mean(axis=1), mode="lines+markers", line=dict(color=colour), legendgroup=field,
            name=f"{title}: mean of {len(report.seeds)} seeds" if several else f"{title} (one seed)",
            customdata=np.stack([values.min(axis=1), values.max(axis=1)], axis=1),
            hovertemplate=f"<b>{title}</b> %{{y:.2f}}" + (" (%{customdata[0]:.2f} to %{customdata[1]:.2f})"
                                                          if several else "") + "<extra>%{x}</extra>"))
    figure.add_trace(go.Scatter(x=[names[0], names[-1]], y=[threshold, threshold], mode="lines",
                                name=f"pass: final ρ below {threshold:g}", hoverinfo="skip",
                                line=dict(color="#9aa5b8", dash="dot", width=1.5)))
    figure.update_layout(height=300, margin=dict(l=10, r=10, t=10, b=10), yaxis=dict(range=[-1.05, 1.05],
                         title_text="similarity to the original map"), xaxis=dict(title_text="randomised down to"),
                         legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1))
    return figure


def sanity_check(explainer: Explainer, analysis: Analysis, target: int, cards: dict[str, MethodCard]) -> None:
    """The model-randomisation check of one method (or the edge-detector control) over seeds, run on request and
    kept."""
    st.subheader("Sanity check: randomise the model", divider="gray")
    st.caption("Adebayo et al. (NeurIPS 2018): a map that explains the *model* must change when its learned weights "
               "are replaced by random ones. Here a copy of the model is randomised block by block from the top "
               "(classifier first) down to the input, and each map is compared with the original: rank correlation "
               "(Spearman ρ) and structural similarity (SSIM). A map that stays the same explains the image, not the "
               "model, like the edge detector, which is here as the control that must fail. Each seed draws other "
               "random weights: several seeds show how much the verdict depends on the draw.")
    options = [*cards, EDGE]
    left, middle, seeds_column, right = st.columns([2, 1.6, 1.2, 1.4], gap="large", vertical_alignment="bottom")
    method = left.selectbox("Method to check", options, key="evaluate_sanity_method", on_change=keep,
                            args=("evaluate_sanity_method",),
                            format_func=lambda i: "Edge detector (control)" if i == EDGE else cards[i].name)
    checkpoints = middle.slider("Checkpoints", 2, 10, key="evaluate_checkpoints", on_change=keep,
                                args=("evaluate_checkpoints",),
                                help="How many randomisation steps; each costs one map on the randomised copy.")
    seeds = seeds_column.number_input("Seeds", 1, MAX_SEEDS, key="evaluate_seeds", on_change=keep,
                                      args=("evaluate_seeds",),
                                      help="How many random draws of the weights; each repeats every step.")
    run = right.button("Run the sanity check", key="evaluate_sanity_run", icon=":material/science:",
                       type="primary", width="stretch")
    key = (explainer.name, analysis.key, target, method, checkpoints, seeds)
    store = result_store("sanity", KEPT_CHECKS)
    report = store.get(key)
    if run and report is None:
        progress = ProgressLine("Randomising the model…")
        name = "Edge detector" if method == EDGE else cards[method].name
        try:
            report = randomisation_check(explainer, analysis.image, edge_detector if method == EDGE else method,
                                         target=target, checkpoints=checkpoints, seeds=tuple(range(seeds)),
                                         threshold=THRESHOLD, progress=progress_callback(progress, name, "maps"))
        finally:
            progress.empty()
        store.put(key, report)
    if report is None:
        cost = "a few seconds" if method == EDGE or cards[method].cost != "slow" else \
            f"{seeds * checkpoints + 1} × the time of one {cards[method].name} map"
        st.info(f"Press the button to run it: {seeds * checkpoints + 1} maps, of the model and of randomised copies "
                f"of it over {seeds} seed{'s' if seeds > 1 else ''} ({cost}).", icon=":material/science:")
        return
    show, icon = VERDICT_BOXES[report.outcome]
    show(report.verdict, icon=icon)
    st.caption(f"The maps of the first seed ({report.seeds[0]}):")
    per_row = min(STRIP_COLUMNS, len(report.steps))
    for start in range(0, len(report.steps), per_row):
        columns = st.columns(per_row)
        for column, step in zip(columns, report.steps[start:start + per_row], strict=False):
            column.image(strip_picture(analysis.image, step.saliency),
                         caption=f"{step.label} · ρ {step.spearman:.2f} · SSIM {step.ssim:.2f}", width="stretch")
    st.plotly_chart(sanity_figure(report), width="stretch", config={"displayModeBar": False},
                    key="evaluate_sanity_chart")
    st.caption(f"Checked in {format_seconds(report.seconds)} on copies of the model (the shared model is untouched); "
               "maps are at the model's input size, shown over the image.")
