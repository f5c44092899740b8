"""The boxes a user draws on the image for the pointing games: the image as a chart to drag boxes on, the boxes drawn
over it and listed, the bundled example's own boxes on request. Boxes belong to the image they were drawn on."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import NamedTuple

import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from cam_core import Analysis, Explainer
from cam_core.evaluation.boxes import example_boxes
from cam_core.evaluation.pointing import Box
from pages.ui.state import current_example

BOXES = "evaluate_boxes"  # session state: (the image's key, the boxes drawn on it)
PICKS = "evaluate_box_picks"  # how many boxes were read from the chart: its key, so that each new chart starts empty
CHART_SIDE = 720
COLOURS = ("#ffd400", "#00e5ff", "#ff4fd8", "#7CFC00", "#ff8c00")


def current_boxes(analysis: Analysis) -> list[Box]:
    """The boxes drawn on analysis's image; boxes drawn on another image are dropped."""
    kept = st.session_state.get(BOXES)
    if kept is not None and kept[0] != analysis.key:
        del st.session_state[BOXES]
        return []
    return list(kept[1]) if kept is not None else []


def set_boxes(analysis: Analysis, boxes: Sequence[Box]) -> None:
    """Make boxes the ones drawn on analysis's image (any other image's are dropped)."""
    st.session_state[BOXES] = (analysis.key, tuple(boxes))


def selection_box(selection: dict, width: int, height: int, scale: float = 1.0) -> Box | None:
    """The last rectangle of a plotly box selection on the chart of the image shrunk by scale, as a box in the
    image's pixels (in the chart, pixel i spans i − ½ … i + ½), clipped to the image; None when there is no
    rectangle or it covers less than one pixel."""
    rectangles = selection.get("box") or []
    if not rectangles:
        return None
    xs, ys = rectangles[-1]["x"], rectangles[-1]["y"]
    x0, x1 = sorted(min(max((value + 0.5) * scale, 0.0), float(width)) for value in xs)
    y0, y1 = sorted(min(max((value + 0.5) * scale, 0.0), float(height)) for value in ys)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return Box(round(x0, 1), round(y0, 1), round(x1, 1), round(y1, 1))


def box_text(box: Box, explainer: Explainer) -> str:
    """A box in words: its corners and the class it is for."""
    label = "any class" if box.label is None else f"{explainer.labels[box.label]} ({box.label})"
    return f"x {box.x0:.0f}–{box.x1:.0f}, y {box.y0:.0f}–{box.y1:.0f} · {label}"


class Peak(NamedTuple):
    """Where a method's map is highest, in the image's pixels, and the colour it is drawn in."""

    name: str
    x: float
    y: float
    colour: str


def boxes_figure(image: Image.Image, boxes: Sequence[Box], scale: float, peaks: Sequence[Peak] = ()) -> go.Figure:
    """The image (shrunk by scale) as a chart whose drag draws a box selection, with boxes drawn and numbered and
    the methods' peaks marked."""
    shown = image.convert("RGB").resize((round(image.width / scale), round(image.height / scale)))
    buffer = io.BytesIO()
    shown.save(buffer, format="PNG")
    source = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    figure = go.Figure(go.Image(source=source, hoverinfo="skip"))
    for number, box in enumerate(boxes, start=1):
        colour = COLOURS[(number - 1) % len(COLOURS)]
        x0, y0, x1, y1 = (value / scale - 0.5 for value in (box.x0, box.y0, box.x1, box.y1))
        figure.add_shape(type="rect", x0=x0, y0=y0, x1=x1, y1=y1, line=dict(color=colour, width=3))
        figure.add_annotation(x=x0, y=y0, text=f"<b>{number}</b>", showarrow=False, xanchor="left", yanchor="top",
                              font=dict(color="black", size=13), bgcolor=colour)
    for peak in peaks:
        figure.add_trace(go.Scatter(x=[peak.x / scale - 0.5], y=[peak.y / scale - 0.5], mode="markers", name=peak.name,
                                    marker=dict(symbol="x-thin", size=16, color=peak.colour, line=dict(width=4,
                                    color=peak.colour)), hovertemplate=f"{peak.name}: the map's peak<extra></extra>"))
    figure.update_xaxes(visible=False, range=[-0.5, shown.width - 0.5])
    figure.update_yaxes(visible=False, range=[shown.height - 0.5, -0.5], scaleanchor="x")
    figure.update_layout(dragmode="select", height=min(560, shown.height + 20), margin=dict(l=0, r=0, t=0, b=0),
                         newselection=dict(line=dict(color="#ffd400", width=2, dash="solid")),
                         showlegend=bool(peaks), legend=dict(orientation="h", yanchor="top", y=-0.01, x=0,
                                                             title_text="peaks:"))
    return figure


def box_picker(explainer: Explainer, analysis: Analysis, peaks: Sequence[Peak] = ()) -> None:
    """Drag on the image to add a box; the boxes drawn (with the methods' peaks), listed, cleared on request or
    loaded from the bundled example's own."""
    image = analysis.image
    scale = max(1.0, max(image.size) / CHART_SIDE)
    picks = st.session_state.setdefault(PICKS, 0)
    key = f"evaluate_box_chart_{picks}"

    def on_select() -> None:
        box = selection_box(st.session_state[key]["selection"], image.width, image.height, scale)
        if box is not None:
            set_boxes(analysis, [*current_boxes(analysis), box])
            st.session_state[PICKS] = picks + 1

    boxes = current_boxes(analysis)
    chart, listing = st.columns([3, 2], gap="large")
    with chart:
        st.plotly_chart(boxes_figure(image, boxes, scale, peaks), on_select=on_select, selection_mode="box", key=key,
                        config={"displayModeBar": False, "scrollZoom": False}, width="stretch")
    with listing:
        st.markdown("**Boxes on this image**")
        st.caption("Drag a rectangle on the image around the object to add a box. Pointing game: is the map's peak "
                   "inside a box? Energy pointing: what share of the map lies inside the boxes?")
        for number, box in enumerate(boxes, start=1):
            st.markdown(f"{number}. {box_text(box, explainer)}")
        if not boxes:
            st.caption("No box yet: the pointing columns appear once there is one.")
        example = current_example()
        own = example_boxes(example) if example else []
        if own:
            st.button("Use the example's boxes", key="evaluate_example_boxes", icon=":material/crop_free:",
                        width="stretch", on_click=set_boxes, args=(analysis, own),
                        help="Boxes drawn by eye around this photo's objects, each for its ImageNet class.")
        if boxes:
            st.button("Clear the boxes", key="evaluate_clear_boxes", icon=":material/delete:", width="stretch",
                         on_click=set_boxes, args=(analysis, []))
