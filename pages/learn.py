"""Learn page: one method taken apart step by step on the user's image, and where two methods part ways."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from PIL import Image
from plotly.subplots import make_subplots
from streamlit.delta_generator import DeltaGenerator

from cam_core import Analysis, CamError, Explainer, MethodCard, methods
from cam_core.lessons import Bars, Chart, Heatmaps, Lesson, Line, Montage, Overlay, Step, compare_lessons, lesson
from cam_core.render.colourbar import difference_view, with_colour_bar
from cam_core.render.pictures import COLORMAPS, diverging, overlay, scaled_picture
from cam_core.render.saliency import evidence_map
from cam_core.views.difference import describe, difference
from cam_core.views.specificity import specificity
from pages.ui.errors import friendly_errors
from pages.ui.frame import page
from pages.ui.widgets import ProgressLine, layer_picker, method_card, param_widget, progress_callback, stack_choices

PLOT_SIDE = 64
TILE_HEIGHT = 250
COMPACT_HEIGHT = 200
PICTURE_WIDTH = 190
CHART = {"displayModeBar": False}
RED, BLUE = "#d0342c", "#3b6fb6"


def heatmaps(chart: Heatmaps, compact: bool) -> None:
    """Small maps as hoverable charts (the numbers under the pointer), large ones as pictures."""
    tiles = chart.tiles[:2] if compact else chart.tiles
    if max(max(values.shape) for _, values in tiles) > PLOT_SIDE:
        pictures = [diverging(values) if chart.signed else scaled_picture(values) for _, values in tiles]
        st.image(pictures, caption=[title for title, _ in tiles], width=PICTURE_WIDTH if len(tiles) > 1 else 360)
        return
    figure = make_subplots(rows=1, cols=len(tiles), subplot_titles=[title for title, _ in tiles],
                           horizontal_spacing=0.04)
    for column, (title, values) in enumerate(tiles, start=1):
        bound = float(np.abs(values).max()) or 1.0
        figure.add_trace(go.Heatmap(
            z=values, colorscale="RdBu_r" if chart.signed else "Viridis", showscale=False,
            zmin=-bound if chart.signed else None, zmax=bound if chart.signed else None,
            hovertemplate="row %{y}, column %{x}: %{z:.4g}<extra>" + title + "</extra>"), 1, column)
        anchor = "x" if column == 1 else f"x{column}"
        figure.update_yaxes(scaleanchor=anchor, autorange="reversed", row=1, col=column)
    figure.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, ticks="")
    figure.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, ticks="")
    figure.update_annotations(font_size=12)
    figure.update_layout(height=COMPACT_HEIGHT if compact else TILE_HEIGHT, margin=dict(l=0, r=0, t=30, b=0))
    st.plotly_chart(figure, width="stretch", config=CHART)


def bars(chart: Bars, compact: bool) -> None:
    """Bars coloured by sign, a reference line where there is one, and (full view) the numbers in a table."""
    names = [str(key) for key in chart.keys]
    figure = go.Figure(go.Bar(x=names, y=chart.values, marker_color=[RED if v >= 0 else BLUE for v in chart.values],
                              hovertemplate=chart.key_name + " %{x}: %{y:.4g}<extra></extra>"))
    title = chart.title
    if chart.reference is not None:  # named in the title: a label on the line would sit over the bars
        figure.add_hline(y=chart.reference, line_dash="dash", line_color="#555")
        title = f"{title}<br><sup>dashed line: {chart.reference_name} = {chart.reference:.3g}</sup>"
    figure.update_layout(title=dict(text=title, font_size=13), height=COMPACT_HEIGHT if compact else 280,
                         margin=dict(l=0, r=0, t=50 if chart.reference is not None else 36, b=0),
                         yaxis_title=chart.value_name, xaxis_type="category",
                         xaxis_title=chart.key_name)
    if compact:
        st.plotly_chart(figure, width="stretch", config=CHART)
        return
    left, right = st.columns([3, 1])
    left.plotly_chart(figure, width="stretch", config=CHART)
    right.dataframe(pd.DataFrame({chart.key_name: list(chart.keys), chart.value_name: chart.values}),
                    hide_index=True, height=280, width="stretch",
                    column_config={chart.value_name: st.column_config.NumberColumn(
                        format=f"%.{decimals(chart.values)}f")})


def decimals(values: Sequence[float]) -> int:
    """The decimals that give the smallest non-zero magnitude among values three significant digits (at most 9)."""
    magnitudes = [abs(float(v)) for v in values if float(v) != 0]
    if not magnitudes:
        return 0
    return int(min(9, max(0, 2 - math.floor(math.log10(min(magnitudes))))))


def line(chart: Line, compact: bool) -> None:
    """A curve over its steps (1, 2, …)."""
    figure = go.Figure(go.Scatter(x=list(range(1, len(chart.values) + 1)), y=chart.values, mode="lines+markers",
                                  marker_size=4, line_color=RED))
    figure.update_layout(title=dict(text=chart.title, font_size=13), height=COMPACT_HEIGHT if compact else 260,
                         margin=dict(l=0, r=0, t=36, b=0), xaxis_title=chart.x_name, yaxis_title=chart.y_name)
    st.plotly_chart(figure, width="stretch", config=CHART)


def draw(chart: Chart, image: Image.Image, compact: bool = False) -> None:
    """One chart of a step (image: the user's image, under overlays)."""
    if isinstance(chart, Heatmaps):
        heatmaps(chart, compact)
    elif isinstance(chart, Bars):
        bars(chart, compact)
    elif isinstance(chart, Line):
        line(chart, compact)
    elif isinstance(chart, Montage):
        pictures = chart.pictures[:3] if compact else chart.pictures
        st.image([picture for _, picture in pictures], caption=[title for title, _ in pictures],
                 width=PICTURE_WIDTH - 40 if compact else PICTURE_WIDTH)
    elif isinstance(chart, Overlay):
        picture = with_colour_bar(overlay(image, chart.saliency, alpha=0.5), chart.low, chart.high, COLORMAPS[0],
                                  "map after the ReLU")
        st.image(picture, caption=chart.title, width="stretch" if compact else 520)


def show_step(number: int, step: Step, image: Image.Image) -> None:
    """A step of the lesson, framed, with all its charts."""
    with st.container(border=True):
        st.subheader(f"{number}. {step.heading}")
        st.markdown(step.text)
        for chart in step.charts:
            draw(chart, image)


def compact_step(number: int, step: Step, image: Image.Image, parting: bool) -> None:
    """A step in the comparison with its first chart only; the step where the methods part is framed and marked."""
    with st.container(border=parting):
        heading = f"{number}. {step.heading}"
        st.markdown(f":red[**{heading}** · they part here]" if parting else f"**{heading}**")
        st.caption(step.text)
        if step.charts:
            draw(step.charts[0], image, compact=True)


def settings(card: MethodCard, explainer: Explainer, column: DeltaGenerator) -> dict:
    """The method's layer (or layers) in column, and its parameters in an expander below it."""
    with column:
        if card.multi_layer:
            choices = stack_choices(explainer)
            picked = st.multiselect("Layers", choices, default=explainer.model.pyramid(),
                                    key=f"learn_layers_{card.id}_{explainer.name}",
                                    help="Shallow to deep; the lesson shows each layer's map and how they combine.")
            chosen = {"layers": sorted(picked, key=choices.index) or None}
        elif card.reads_every_block:
            chosen = {}
            st.caption("Every block's attention: no layer to choose.")
        else:
            chosen = {"layer": layer_picker(explainer, "learn_layer")}
        if card.params:
            with st.expander("Method settings", icon=":material/tune:"):
                for param in card.params:
                    chosen[param.name] = param_widget(card, param, "learn")
    return chosen


def computed(analysis: Analysis, card: MethodCard, target: int, chosen: dict,
             bar: ProgressLine | None = None) -> Lesson:
    """The lesson, with a progress bar (bar, else one here) while the method runs the model passes it needs (once
    per image)."""
    bar = bar or ProgressLine(f"Taking {card.name} apart…", hidden=True)
    progress = progress_callback(bar, card.name, "model passes (once for this image)")
    with st.spinner(f"Taking {card.name} apart…"):
        found = lesson(analysis, card.id, target, progress=progress, **chosen)
    bar.empty()
    return found


def partner_settings(card: MethodCard, other: MethodCard, chosen: dict, explainer: Explainer) -> dict:
    """The second method at the first one's layer (multi-layer methods: the same layers, or the pyramid)."""
    layers = chosen.get("layers") or ([chosen["layer"]] if "layer" in chosen else explainer.model.pyramid())
    if other.multi_layer:
        return {"layers": layers if card.multi_layer else explainer.model.pyramid()}
    return {"layer": layers[-1]}


def differ(analysis: Analysis, cards: dict[str, MethodCard], story: Lesson, chosen: dict) -> None:
    """A second method's lesson next to the first from the step where the two part ways."""
    card, explainer = story.card, analysis.explainer
    method = card.id
    st.session_state.setdefault(f"learn_other_{method}", "gradcampp" if method == "gradcam" else "gradcam")
    second = st.selectbox("Compare with", [i for i in cards if i != method], key=f"learn_other_{method}",
                          format_func=lambda i: f"{cards[i].name} · {cards[i].family}")
    other = computed(analysis, cards[second], story.target, partner_settings(card, cards[second], chosen, explainer))
    parting = compare_lessons(story, other)
    if parting is None:
        st.success(f"{card.name} and {cards[second].name} give the same numbers at every step here.",
                   icon=":material/check_circle:")
        return
    st.info(parting.summary, icon=":material/call_split:")
    if parting.shared:
        st.markdown("**The same in both:** " + " · ".join(
            f"{n}. {step.heading}" for n, step in enumerate(story.steps[: parting.index], start=1)))
    columns = st.columns(2, gap="medium")
    for column, told in zip(columns, (story, other), strict=True):
        with column:
            st.markdown(f"#### {told.card.name}")
            for number, step in enumerate(told.steps[parting.index:], start=parting.index + 1):
                compact_step(number, step, analysis.image, number == parting.index + 1)
    difference_of(analysis, story, other)


def difference_of(analysis: Analysis, story: Lesson, other: Lesson) -> None:
    """Where the two maps differ: the first method's map minus the second's, each divided by its own maximum."""
    first, second = story.card.name, other.card.name
    maps = [evidence_map(told.raw, analysis.size).numpy() for told in (story, other)]
    picture = difference_view(analysis.image, difference(*maps, "max"), 0.6, f"{first} − {second}", 1.0)
    with st.container(border=True):
        st.markdown(f"**Where they differ: {first} − {second}**")
        st.caption(f"Red: where {first} puts more of its evidence, blue: where {second} does. Both maps after the "
                   f"ReLU at the image's size, {describe('max')} (their units differ), then subtracted: −1 … +1.")
        st.image(picture, width=520)


def lesson_settings(card: MethodCard, story: Lesson) -> dict:
    """The layer (multi-layer methods: layers) and parameters the lesson ran with, as Analysis.cam takes them."""
    where = {"layers": list(story.layers)} if card.multi_layer else {"layer": story.layers[-1]}
    return {**story.params, **where}


def learn() -> None:
    """One method's lesson on the user's image, step by step, then where a second method parts from it."""
    subject = page("Learn", "Every method taken apart on your image: the numbers it computes, step by step, from "
                   "the activations to the map. Then two methods side by side, and where they part ways.")
    if subject is None:
        return
    explainer, analysis, target = subject
    cards = {card.id: card for card in methods() if not explainer.unmet(card)}
    bar = ProgressLine("Taking the method apart…", hidden=True)  # at the top: visible during a cold pass
    with friendly_errors():
        left, right = st.columns([3, 2])
        if st.session_state.get("learn_method") not in cards:  # unset, or a method this model cannot run
            st.session_state.learn_method = "gradcam"
        method = left.selectbox("Method", list(cards), key="learn_method",
                                format_func=lambda i: f"{cards[i].name} · {cards[i].family}")
        card = cards[method]
        chosen = settings(card, explainer, right)
        with st.container(border=True):
            method_card(card, wide=True)
        story = computed(analysis, card, target, chosen, bar)
        st.header(f"{card.name} on your image, step by step", divider="gray")
        st.caption(f"Class “{story.label}” ({story.target}) · layer{'s' if len(story.layers) > 1 else ''} "
                   f"{', '.join(story.layers)}" + (f" · {story.note}" if story.note else ""))
        for number, step in enumerate(story.steps, start=1):
            show_step(number, step, analysis.image)
        other = analysis.comparison_class(story.target)
        try:
            found = specificity(analysis, card.id, story.target, other, **lesson_settings(card, story))
            st.caption(f"How class-specific: {found.caption(explainer.labels[other])}")
        except CamError as exc:
            st.caption(f"How class-specific: not available ({exc})")

        st.header("Why does it differ?", divider="gray")
        with friendly_errors():
            differ(analysis, cards, story, chosen)


learn()
