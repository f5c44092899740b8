"""Evaluate page: how faithful each method's map is (deletion and insertion curves, Average Drop, Increase in
Confidence) and whether it depends on what the model learned (the model-parameter randomisation check)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import NamedTuple

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st
import torch
from pandas.io.formats.style import Styler
from PIL import Image
from plotly.subplots import make_subplots

from cam_core import Analysis, CamError, CamResult, Explainer, MethodCard, SanityReport, methods
from cam_core.evaluation.metrics import BASELINES
from cam_core.evaluation.sanity import SanityStep, edge_map, randomisation_check
from cam_core.evaluation.scoring import MapScores, score_map
from cam_core.render.pictures import overlay
from pages.ui.errors import friendly_errors
from pages.ui.frame import page
from pages.ui.resources import result_store
from pages.ui.state import class_label
from pages.ui.widgets import ProgressLine, format_seconds, progress_callback

DEFAULT_METHODS = ["gradcam", "gradcampp", "layercam", "eigencam", "gradpolycam"]
DEFAULT_STEPS = 20
DEFAULT_CHECKPOINTS = 5
EDGE = "edge"
THRESHOLD = 0.5
BASELINE_LABELS = {"rise": "RISE's (zero / blurred)", "blur": "blurred image", "zero": "zero input"}
PALETTE = px.colors.qualitative.D3 + px.colors.qualitative.Dark24
STRIP_COLUMNS = 6
STRIP_SIDE = 360
KEPT_SCORES = 16 * 2**20
WORKERS = max(1, min(2, os.cpu_count() or 1))
KEPT_CHECKS = 256 * 2**20
BEST = "background-color: #d8f0dc; font-weight: 600"


def remembered(key: str, default: object) -> None:
    """Seed widget key from the last value this session chose (widget state is dropped when another page runs)."""
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(f"{key}_kept", default)


def keep(key: str) -> None:
    """Widget callback: remember key's value for when this page runs again."""
    st.session_state[f"{key}_kept"] = st.session_state[key]


class Scored(NamedTuple):
    """A method's map time and note with its faithfulness scores."""

    seconds: float
    note: str
    scores: MapScores

    @property
    def nbytes(self) -> int:
        return self.scores.nbytes + len(self.note)


def score_worker_setup(threads: int) -> None:
    """A scoring thread runs torch with as many intra-op threads as the page's own (one in the dashboard)."""
    torch.set_num_threads(threads)


def compute_scores(analysis: Analysis, cards: dict[str, MethodCard], todo: list[str], target: int, steps: int,
                   baseline: str) -> None:
    """The maps of the methods in todo, then their deletion and insertion curves, kept for every session per (model,
    image, class, method, steps, baseline), under one progress bar. A method that cannot run here is a warning."""
    progress = ProgressLine("Scoring the maps…")
    try:
        maps = compute_maps(analysis, cards, todo, target, progress)
        score_maps(analysis, cards, maps, target, steps, baseline, progress)
    finally:
        progress.empty()


def compute_maps(analysis: Analysis, cards: dict[str, MethodCard], todo: list[str], target: int,
                 progress: ProgressLine) -> dict[str, CamResult]:
    """Each method's map, one after another; the slow ones report their model passes (first half of the bar)."""
    units = 2 * len(todo)
    maps = {}
    for position, method_id in enumerate(todo):
        card = cards[method_id]
        on_progress = progress_callback(progress, card.name, "model passes for the map", start=position / units,
                                        share=1 / units)
        progress.update(position / units, f"{card.name}: computing the map…")
        try:
            maps[method_id] = analysis.cam(method_id, target=target, progress=on_progress)
        except CamError as exc:
            st.warning(f"**{card.name}**: {exc}", icon=":material/block:")
    return maps


def score_maps(analysis: Analysis, cards: dict[str, MethodCard], maps: dict[str, CamResult], target: int, steps: int,
               baseline: str, progress: ProgressLine) -> None:
    """The maps' curves and confidence change on WORKERS threads of the model's private inference copy (second half
    of the bar)."""
    store = result_store("scores", KEPT_SCORES)
    passes = 2 * (steps + 1) + 2
    progress.update(0.5, f"Deletion and insertion curves: {passes} model passes per method…")
    with ThreadPoolExecutor(WORKERS, initializer=score_worker_setup, initargs=(torch.get_num_threads(),)) as pool:
        futures = {
            pool.submit(score_map, analysis, result.saliency, target, steps=steps, baseline=baseline): method_id
            for method_id, result in maps.items()
        }
        for done, future in enumerate(as_completed(futures), start=1):
            method_id = futures[future]
            card, result = cards[method_id], maps[method_id]
            try:
                scores = future.result()
            except CamError as exc:
                st.warning(f"**{card.name}**: {exc}", icon=":material/block:")
                continue
            store.put((analysis.explainer.name, analysis.key, target, method_id, steps, baseline),
                      Scored(result.seconds, result.note, scores))
            progress.update(0.5 + 0.5 * done / len(maps), f"Scored {card.name} ({done} of {len(maps)})")


def curves_figure(rows: list[tuple], colours: dict[str, str], class_name: str) -> go.Figure:
    """Deletion | insertion, one colour per method in both, AUC in the legend and on hover."""
    figure = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06,
                           subplot_titles=("Deletion: most salient pixels removed first (lower AUC is better)",
                                           "Insertion: most salient pixels added first (higher AUC is better)"))
    top = 0.0
    for card, _, _, scores in rows:
        for column, curve in enumerate((scores.deletion, scores.insertion), start=1):
            top = max(top, float(np.max(curve.scores)))
            figure.add_trace(
                go.Scatter(
                    x=curve.fractions, y=curve.scores, mode="lines+markers" if len(curve.fractions) <= 26 else "lines",
                    name=f"{card.name} · del {scores.deletion.auc:.3f} · ins {scores.insertion.auc:.3f}",
                    legendgroup=card.id, showlegend=column == 1, line=dict(color=colours[card.id], width=2),
                    marker=dict(size=4),
                    hovertemplate=f"<b>{card.name}</b><br>{curve.kind} AUC {curve.auc:.3f}<br>"
                    "%{x:.0%} of the pixels: p = %{y:.3f}<extra></extra>",
                ),
                row=1, col=column,
            )
    figure.update_xaxes(title_text="fraction of pixels removed", tickformat=".0%", range=[0, 1], row=1, col=1)
    figure.update_xaxes(title_text="fraction of pixels inserted", tickformat=".0%", range=[0, 1], row=1, col=2)
    figure.update_yaxes(title_text=f"probability of {class_name}", range=[0, min(1.0, top * 1.08) or 1.0],
                        row=1, col=1)
    figure.update_annotations(font_size=13)
    figure.update_layout(height=430, margin=dict(l=10, r=10, t=40, b=10), hovermode="closest",
                         legend=dict(orientation="h", yanchor="top", y=-0.18, xanchor="left", x=0))
    return figure


def score_table(rows: list[tuple]) -> pd.DataFrame:
    """One row of scores and times per method."""
    return pd.DataFrame(
        [
            {
                "Method": card.name,
                "Deletion AUC ↓": scores.deletion.auc,
                "Insertion AUC ↑": scores.insertion.auc,
                "Average Drop % ↓": 100.0 * scores.confidence.drop,
                "Increase in confidence": "yes" if scores.confidence.increase else "no",
                "Original probability": scores.confidence.original,
                "Explained probability": scores.confidence.explained,
                "Map time (ms)": 1000.0 * map_seconds,
                "Metric time (s)": scores.seconds,
            }
            for card, map_seconds, _, scores in rows
        ]
    )


def styled(table: pd.DataFrame) -> Styler:
    """The table with the best value of each score column highlighted."""
    style = table.style.format({
        "Deletion AUC ↓": "{:.3f}", "Insertion AUC ↑": "{:.3f}", "Average Drop % ↓": "{:.1f}",
        "Original probability": "{:.1%}", "Explained probability": "{:.1%}", "Map time (ms)": "{:.1f}",
        "Metric time (s)": "{:.2f}",
    })
    if len(table) > 1:
        style = style.highlight_min(subset=["Deletion AUC ↓", "Average Drop % ↓"], props=BEST)
        style = style.highlight_max(subset=["Insertion AUC ↑"], props=BEST)
        style = style.map(lambda value: BEST if value == "yes" else "", subset=["Increase in confidence"])
    return style


def best_line(table: pd.DataFrame) -> str:
    """The best method by each score, in words, and the methods whose map alone raises the confidence."""
    def best(column: str, title: str, lowest: bool, fmt: str, unit: str = "") -> str:
        row = table.loc[table[column].idxmin() if lowest else table[column].idxmax()]
        return f"{title} **{row['Method']}** ({row[column]:{fmt}}{unit})"

    gains = table.loc[table["Increase in confidence"] == "yes", "Method"].tolist()
    return ("Best — " + " · ".join([best("Deletion AUC ↓", "deletion:", True, ".3f"),
                                    best("Insertion AUC ↑", "insertion:", False, ".3f"),
                                    best("Average Drop % ↓", "Average Drop:", True, ".1f", " %")])
            + ". The map's pixels alone raise the confidence for: " + (", ".join(gains) if gains else "none") + ".")


def faithfulness(explainer: Explainer, analysis: Analysis, target: int, cards: dict[str, MethodCard]) -> None:
    """The chosen methods' deletion and insertion curves, their score table and its download."""
    chosen = st.multiselect("Methods", list(cards), key="evaluate_methods", format_func=lambda i: cards[i].name,
                            on_change=keep, args=("evaluate_methods",),
                            help="Slow methods (many model passes) show a progress bar the first time.")
    left, right, _ = st.columns([2, 2, 3], gap="large")
    steps = left.slider("Steps", 5, 100, key="evaluate_steps", on_change=keep, args=("evaluate_steps",),
                        help="Points on each curve after the first: each costs one model pass per curve.")
    baseline = right.radio("Removed pixels become", BASELINES, key="evaluate_baseline", horizontal=True,
                           format_func=BASELINE_LABELS.get, on_change=keep, args=("evaluate_baseline",),
                           help="RISE's protocol: deletion replaces pixels by the zero input, insertion adds them "
                           "to a blurred copy. Blurred: a heavily blurred copy of the image for both. Zero: the zero "
                           "model input (the dataset's mean colour) for both.")
    if not chosen:
        st.info("Choose at least one method.", icon=":material/touch_app:")
        return
    colours = {method_id: PALETTE[position % len(PALETTE)] for position, method_id in enumerate(chosen)}
    store = result_store("scores", KEPT_SCORES)
    keys = {method_id: (explainer.name, analysis.key, target, method_id, steps, baseline) for method_id in chosen}
    todo = [method_id for method_id in chosen if store.get(keys[method_id]) is None]
    if todo:
        compute_scores(analysis, cards, todo, target, steps, baseline)
    found = {method_id: store.get(keys[method_id]) for method_id in chosen}
    rows = [(cards[method_id], *entry) for method_id, entry in found.items() if entry is not None]
    if not rows:
        return
    st.plotly_chart(curves_figure(rows, colours, explainer.labels[target]), width="stretch",
                    config={"displayModeBar": False}, key="evaluate_curves")
    table = score_table(rows)
    st.dataframe(styled(table), hide_index=True, width="stretch", key="evaluate_table")
    if len(table) > 1:
        st.markdown(best_line(table))
    st.caption(f"Average Drop: 100 × max(0, p − p′) / p, where p is the class probability on the image and p′ on "
               "the image multiplied by the map; Increase in Confidence: p′ > p. Map time: the method's map from the "
               f"cached analysis; metric time: its {2 * (steps + 1) + 2} model passes (curves and confidence), "
               f"{WORKERS} method{'s' if WORKERS > 1 else ''} at a time.")
    for card, _, note, _ in rows:
        if note:
            st.caption(f":material/info: {card.name}: {note}")
    st.download_button("Download the table (CSV)", data=table.to_csv(index=False).encode(),
                       file_name=f"evaluation_{explainer.name}_{target}_{steps}_{baseline}.csv", mime="text/csv",
                       on_click="ignore", icon=":material/download:", key="evaluate_csv")


def edge_detector(explainer: Explainer, image: Image.Image, target: int) -> np.ndarray:
    """The negative control: a Sobel edge map, the same whatever the model."""
    return edge_map(image)


def strip_picture(image: Image.Image, saliency: np.ndarray) -> Image.Image:
    """The map (at model-input size) over the image, both at the image's aspect ratio."""
    shown = image.convert("RGB")
    shown.thumbnail((STRIP_SIDE, STRIP_SIDE))
    resized = Image.fromarray(saliency.astype(np.float32), mode="F").resize(shown.size, Image.BILINEAR)
    return overlay(shown, np.clip(np.asarray(resized), 0, 1), alpha=0.55, colormap="jet")


def step_name(step: SanityStep) -> str:
    """The last block a step randomised, or original."""
    return step.randomised[-1] if step.randomised else "original"


def sanity_figure(report: SanityReport, threshold: float = THRESHOLD) -> go.Figure:
    """Spearman ρ and SSIM of each step's map against the original's, and the pass line."""
    names = [step_name(step) for step in report.steps]
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=names, y=[s.spearman for s in report.steps], name="Spearman ρ",
                                mode="lines+markers", line=dict(color="#d0342c")))
    figure.add_trace(go.Scatter(x=names, y=[s.ssim for s in report.steps], name="SSIM", mode="lines+markers",
                                line=dict(color="#2e6fd8")))
    figure.add_trace(go.Scatter(x=[names[0], names[-1]], y=[threshold, threshold], mode="lines",
                                name=f"pass: final ρ below {threshold:g}", hoverinfo="skip",
                                line=dict(color="#9aa5b8", dash="dot", width=1.5)))
    figure.update_layout(height=260, margin=dict(l=10, r=10, t=10, b=10), yaxis=dict(range=[-1.05, 1.05],
                         title_text="similarity to the original map"), xaxis=dict(title_text="randomised down to"),
                         legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1))
    return figure


def sanity_check(explainer: Explainer, analysis: Analysis, target: int, cards: dict[str, MethodCard]) -> None:
    """The model-randomisation check of one method (or the edge-detector control), run on request and kept."""
    st.subheader("Sanity check: randomise the model", divider="gray")
    st.caption("Adebayo et al. (NeurIPS 2018): a map that explains the *model* must change when its learned weights "
               "are replaced by random ones. Here a copy of the model is randomised block by block from the top "
               "(classifier first) down to the input, and each map is compared with the original: rank correlation "
               "(Spearman ρ) and structural similarity (SSIM). A map that stays the same explains the image, not the "
               "model, like the edge detector, which is here as the control that must fail.")
    options = [*cards, EDGE]
    left, middle, right = st.columns([2, 2, 1.4], gap="large", vertical_alignment="bottom")
    method = left.selectbox("Method to check", options, key="evaluate_sanity_method", on_change=keep,
                            args=("evaluate_sanity_method",),
                            format_func=lambda i: "Edge detector (control)" if i == EDGE else cards[i].name)
    checkpoints = middle.slider("Checkpoints", 2, 10, key="evaluate_checkpoints", on_change=keep,
                                args=("evaluate_checkpoints",),
                                help="How many randomisation steps; each costs one map on the randomised copy.")
    run = right.button("Run the sanity check", key="evaluate_sanity_run", icon=":material/science:",
                       type="primary", width="stretch")
    key = (explainer.name, analysis.key, target, method, checkpoints)
    store = result_store("sanity", KEPT_CHECKS)
    report = store.get(key)
    if run and report is None:
        progress = ProgressLine("Randomising the model…")
        name = "Edge detector" if method == EDGE else cards[method].name
        try:
            report = randomisation_check(explainer, analysis.image, edge_detector if method == EDGE else method,
                                         target=target, checkpoints=checkpoints, threshold=THRESHOLD,
                                         progress=progress_callback(progress, name, "maps"))
        finally:
            progress.empty()
        store.put(key, report)
    if report is None:
        cost = "a few seconds" if method == EDGE or cards[method].cost != "slow" else \
            f"{checkpoints + 1} × the time of one {cards[method].name} map"
        st.info(f"Press the button to run it: {checkpoints + 1} maps, of the model and of randomised copies of it "
                f"({cost}).", icon=":material/science:")
        return
    (st.success if report.passed else st.error)(report.verdict, icon=":material/check_circle:" if report.passed
                                                 else ":material/cancel:")
    per_row = min(STRIP_COLUMNS, len(report.steps))
    for start in range(0, len(report.steps), per_row):
        columns = st.columns(per_row)
        for column, step in zip(columns, report.steps[start:start + per_row], strict=False):
            column.image(strip_picture(analysis.image, step.saliency),
                         caption=f"{step.label} · ρ {step.spearman:.2f} · SSIM {step.ssim:.2f}", width="stretch")
    st.plotly_chart(sanity_figure(report), width="stretch", config={"displayModeBar": False},
                    key="evaluate_sanity_chart")
    st.caption(f"Checked in {format_seconds(report.seconds)} on a copy of the model (the shared model is untouched); "
               "maps are at the model's input size, shown over the image.")


def evaluate() -> None:
    """The chosen methods' faithfulness curves and scores, and the model-randomisation check of one method."""
    subject = page("Evaluate", "How faithful is each map to the model? Deletion: remove the most salient pixels first, "
                   "the class probability should fall fast (lower AUC is better); insertion: add them first, it should "
                   "rise fast (higher is better); Average Drop lower is better; Increase in Confidence “yes” is good.")
    if subject is None:
        return
    explainer, analysis, target = subject
    with friendly_errors():
        cards = {card.id: card for card in methods()}
        remembered("evaluate_methods", [i for i in DEFAULT_METHODS if i in cards])
        remembered("evaluate_steps", DEFAULT_STEPS)
        remembered("evaluate_baseline", BASELINES[0])
        remembered("evaluate_sanity_method", "gradcam")
        remembered("evaluate_checkpoints", DEFAULT_CHECKPOINTS)
        st.markdown(f"**Explaining:** {class_label(explainer, analysis, target)}")
        with friendly_errors():
            faithfulness(explainer, analysis, target, cards)
        with friendly_errors():
            sanity_check(explainer, analysis, target, cards)


evaluate()
