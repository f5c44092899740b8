"""The Evaluate page's tables and charts: one image's values, curves and pointing in words; many images' means with
95 % bootstrap intervals, a best method only where the intervals separate, and the intervals as error bars."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st
from pandas.io.formats.style import Styler
from plotly.subplots import make_subplots

from cam_core import MethodCard
from cam_core.evaluation.intervals import Interval, bootstrap_interval, clear_best
from cam_core.evaluation.metrics import Curve
from cam_core.evaluation.pointing import boxes_for
from cam_core.evaluation.scoring import protocol
from pages.ui.box_picker import Peak
from pages.ui.evaluation_scores import CONFIDENCE, Item, Scored

PALETTE = px.colors.qualitative.D3 + px.colors.qualitative.Dark24
BEST = "background-color: #d8f0dc; font-weight: 600"
ONE_IMAGE = "one image: no interval, no best"
FAITHFULNESS = "faithfulness"
LOCALISATION = "pointing"
SPARSITY = "sparsity"
GROUPS = (FAITHFULNESS, LOCALISATION, SPARSITY)


class Metric(NamedTuple):
    """A per-image score column: its CSV name, its title, whether lower is better (None: no better side), its digits
    and its group (faithfulness, pointing or sparsity)."""

    column: str
    title: str
    lower_is_better: bool | None
    digits: int
    group: str = FAITHFULNESS
    protocol: str = ""  # its key in cam_core.evaluation.scoring.PROTOCOLS, if it has one


METRICS = (
    Metric("deletion_auc", "Deletion AUC ↓", True, 3, protocol="deletion"),
    Metric("insertion_auc", "Insertion AUC ↑", False, 3, protocol="insertion"),
    Metric("average_drop_percent", "Average Drop % ↓", True, 1, protocol="average_drop"),
    Metric("increase_in_confidence_percent", "Increase in Confidence % ↑", False, 0,
           protocol="increase_in_confidence"),
    Metric("road_morf_auc", "ROAD MoRF AUC ↓", True, 3, protocol="road_morf"),
    Metric("road_lerf_auc", "ROAD LeRF AUC ↑", False, 3, protocol="road_lerf"),
    Metric("pointing_percent", "Pointing % ↑", False, 0, LOCALISATION),
    Metric("energy_pointing_percent", "Energy pointing % ↑", False, 1, LOCALISATION),
    Metric("gini", "Gini", None, 3, SPARSITY),
    Metric("entropy", "Entropy (nats)", None, 2, SPARSITY),
)


def colours_of(chosen: Sequence[str]) -> dict[str, str]:
    """One colour per chosen method, the same in every chart."""
    return {m: PALETTE[position % len(PALETTE)] for position, m in enumerate(chosen)}


def curves_figure(curves: dict[str, tuple[Curve, Curve]], names: dict[str, str], colours: dict[str, str],
                  titles: tuple[str, str], axes: tuple[str, str], class_name: str, height: int = 400) -> go.Figure:
    """Two curves per method side by side (deletion | insertion, or ROAD MoRF | LeRF), one colour per method in
    both, AUCs in the legend and on hover."""
    figure = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06, subplot_titles=titles)
    top = 0.0
    for method_id, pair in curves.items():
        for column, curve in enumerate(pair, start=1):
            top = max(top, float(np.max(curve.scores)))
            figure.add_trace(
                go.Scatter(
                    x=curve.fractions, y=curve.scores, mode="lines+markers" if len(curve.fractions) <= 26 else "lines",
                    name=f"{names[method_id]} · {pair[0].auc:.3f} · {pair[1].auc:.3f}", legendgroup=method_id,
                    showlegend=column == 1, line=dict(color=colours[method_id], width=2), marker=dict(size=4),
                    hovertemplate=f"<b>{names[method_id]}</b><br>AUC {curve.auc:.3f}<br>"
                    "%{x:.0%} of the pixels: p = %{y:.3f}<extra></extra>",
                ),
                row=1, col=column,
            )
    for column, title in enumerate(axes, start=1):
        figure.update_xaxes(title_text=title, tickformat=".0%", range=[0, 1], row=1, col=column)
    figure.update_yaxes(title_text=f"probability of {class_name}", range=[0, min(1.0, top * 1.08) or 1.0],
                        row=1, col=1)
    figure.update_annotations(font_size=13)
    figure.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), hovermode="closest",
                         legend=dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0,
                                     title_text="AUCs (left · right):"))
    return figure


OTHER_HELP = {
    "pointing_percent": "Pointing game (Zhang et al. 2016): the map's maximum lies inside a box of the class",
    "energy_pointing_percent": "Energy-based pointing game (Score-CAM, Wang et al. 2020): the share of the map's sum "
                               "inside the boxes of the class",
    "gini": "Gini index of the map's values (Chalasani et al. 2020): 0 for a flat map, near 1 for a few hot pixels",
    "entropy": "Shannon entropy (nats) of the map normalised to sum 1: lower is more concentrated",
}


def column_help(metrics: Sequence[Metric], steps: int, baseline: str) -> dict[str, st.column_config.Column]:
    """Each metric column's tooltip: the protocol it follows, with this run's steps and baseline."""
    return {m.title: st.column_config.Column(help=protocol(m.protocol, steps, baseline) if m.protocol
                                             else OTHER_HELP[m.column]) for m in metrics}


def shown_metrics(rows: pd.DataFrame) -> list[Metric]:
    """The metrics with at least one value (ROAD only when computed, pointing only with boxes)."""
    return [metric for metric in METRICS if rows[metric.column].notna().any()]


def one_image_table(rows: pd.DataFrame) -> Styler:
    """One image: each method's values (no interval, so nothing is marked best)."""
    metrics = shown_metrics(rows)
    table = rows[["method", *[m.column for m in metrics], "map_ms", "metric_s"]].rename(
        columns={"method": "Method", "map_ms": "Map time (ms)", "metric_s": "Metric time (s)",
                 **{m.column: m.title for m in metrics}})
    return table.style.format({**{m.title: f"{{:.{m.digits}f}}" for m in metrics}, "Map time (ms)": "{:.1f}",
                               "Metric time (s)": "{:.2f}"}, na_rep="–")


def method_intervals(rows: pd.DataFrame, metric: Metric) -> dict[str, Interval]:
    """Each method's mean and 95 % bootstrap interval of a metric over the images where it has a value."""
    found = {}
    for method, group in rows.groupby("method", sort=False):
        values = group[metric.column].dropna().tolist()
        if values:
            found[str(method)] = bootstrap_interval(values, confidence=CONFIDENCE)
    return found


def interval_text(interval: Interval, digits: int) -> str:
    """A mean and its interval as "mean [low, high]", or the mean of one image, which has no interval."""
    if interval.count < 2:
        return f"{interval.mean:.{digits}f} (1 image)"
    return f"{interval.mean:.{digits}f} [{interval.low:.{digits}f}, {interval.high:.{digits}f}]"


def best_of(intervals: dict[str, Interval], metric: Metric) -> str | None:
    """The method whose interval is wholly on the better side of every other's, or None."""
    if metric.lower_is_better is None or len(intervals) < 2:
        return None
    return clear_best(intervals, metric.lower_is_better)


def best_words(intervals: dict[str, Interval], metric: Metric) -> str:
    """The verdict on one metric: the best method, "no clear difference", or why there is no best."""
    if any(interval.count < 2 for interval in intervals.values()):
        return ONE_IMAGE
    best = best_of(intervals, metric)
    return f"**{best}**" if best else "no clear difference"


def summary_table(rows: pd.DataFrame, group: str) -> tuple[Styler, str] | None:
    """Per method, for the group's metrics: the images with a value and each metric's mean [95 % interval]; a
    metric's best method highlighted where its interval separates from every other's. Also the verdicts in words.
    None when no metric of the group has a value."""
    metrics = [metric for metric in shown_metrics(rows) if metric.group == group]
    if not metrics:
        return None
    methods = list(dict.fromkeys(rows["method"]))
    found = {metric: method_intervals(rows, metric) for metric in metrics}
    table = pd.DataFrame({"Method": methods, "Images": [
        max(intervals[m].count if m in intervals else 0 for intervals in found.values()) for m in methods]})
    marks = pd.DataFrame("", index=table.index, columns=table.columns)
    verdicts = []
    for metric, intervals in found.items():
        table[metric.title] = [interval_text(intervals[m], metric.digits) if m in intervals else "–" for m in methods]
        marks[metric.title] = ""
        best = best_of(intervals, metric)
        if best is not None:
            marks.loc[table["Method"] == best, metric.title] = BEST
        if metric.lower_is_better is not None and len(intervals) > 1:
            verdicts.append(f"{metric.title.rstrip(' ↓↑')}: {best_words(intervals, metric)}")
    words = "Best, where the 95 % intervals separate: " + " · ".join(verdicts) + "." if verdicts else ""
    return table.style.apply(lambda _: marks, axis=None), words


def intervals_figure(rows: pd.DataFrame) -> go.Figure:
    """Deletion and insertion AUC per method: the mean and its 95 % interval as error bars."""
    chosen = [m for m in METRICS if m.column in ("deletion_auc", "insertion_auc")]
    figure = make_subplots(rows=1, cols=len(chosen), horizontal_spacing=0.12,
                           subplot_titles=[m.title for m in chosen])
    for column, metric in enumerate(chosen, start=1):
        intervals = method_intervals(rows, metric)
        names = list(intervals)
        means = [intervals[n].mean for n in names]
        figure.add_trace(go.Scatter(
            x=means, y=names, mode="markers", marker=dict(size=9, color=PALETTE[column - 1]), showlegend=False,
            error_x=dict(type="data", symmetric=False, array=[intervals[n].high - intervals[n].mean for n in names],
                         arrayminus=[intervals[n].mean - intervals[n].low for n in names], thickness=2, width=6),
            hovertemplate="<b>%{y}</b><br>mean %{x:.3f}<extra></extra>"), row=1, col=column)
        figure.update_yaxes(autorange="reversed", row=1, col=column)
    figure.update_annotations(font_size=13)
    figure.update_layout(height=90 + 34 * rows["method"].nunique(), margin=dict(l=10, r=10, t=40, b=10))
    return figure


def peaks(item: Item, chosen: Sequence[str], cards: dict[str, MethodCard],
          entries: dict[tuple[str, str], Scored]) -> list[Peak]:
    """Where each scored method's map peaks on the image (its first maximum), in the method's colour."""
    colours, found = colours_of(chosen), []
    for m in chosen:
        if (item.name, m) in entries:
            saliency = item.analysis.cam(m, target=item.target).saliency
            row, column = np.unravel_index(int(np.argmax(saliency)), saliency.shape)
            found.append(Peak(cards[m].name, column + 0.5, row + 0.5, colours[m]))
    return found


def pointing_words(rows: pd.DataFrame, item: Item) -> str:
    """The pointing game on one image in words: whose peak is inside a box of the class, and each energy share."""
    boxes = boxes_for(item.boxes, item.target)
    if not item.boxes:
        return ""
    if not boxes:
        return (f"**Pointing game:** none of the {len(item.boxes)} boxes is for the explained class or for any "
                "class, so there is nothing to point at.")
    groups = []
    for hit, where in ((100.0, "inside"), (0.0, "outside")):
        found = [f"{row.method} ({row.energy_pointing_percent:.0f} %)" for row in rows.itertuples()
                 if row.pointing_percent == hit]
        if found:
            groups.append(f"the peak is {where} for " + ", ".join(found))
    plural = "es" if len(boxes) > 1 else ""
    return (f"**Pointing game** ({len(boxes)} box{plural} for this class): " + "; ".join(groups)
            + ". In brackets: the share of the map's energy inside the box" + plural + ".")
