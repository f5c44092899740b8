"""Compare page: one image and class through many CAM methods, side by side."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import streamlit as st
from PIL import Image
from streamlit.delta_generator import DeltaGenerator

from cam_core import Analysis, CamError, CamResult, Explainer, MethodCard, methods
from cam_core.provenance.manifest import manifest, zip_with_manifest
from cam_core.registry import default_grid
from cam_core.render.colourbar import difference_view, map_view, shared_top
from cam_core.render.pictures import COLORMAPS, npy_bytes, png_bytes
from cam_core.render.pictures import grid as grid_sheet
from cam_core.render.saliency import evidence_map
from cam_core.views.difference import describe, difference
from cam_core.views.specificity import specificity
from pages.ui.errors import friendly_errors
from pages.ui.frame import page
from pages.ui.method_settings import method_settings
from pages.ui.resources import GRID_TURNS
from pages.ui.state import class_label, class_labels
from pages.ui.widgets import ProgressLine, format_seconds, method_card, progress_callback

COLUMNS = 4
VIEW_LABELS = {"overlay": "Overlay on the image", "map": "Map only", "signed": "Signed map (red for, blue against)"}


class Look(NamedTuple):
    """How the maps are drawn: the view, the overlay's opacity, the colour map, the evidence shown, one scale for
    both class rows of a method, and a row of their difference."""

    view: str
    alpha: float
    colormap: str
    sign: str
    shared: bool = False
    difference: bool = False

    def picture(self, analysis: Analysis, result: CamResult, top: float | None = None) -> Image.Image:
        """The result's map drawn this way, with a colour bar of its real values (top: a scale shared with other
        maps)."""
        return map_view(analysis.image, result.saliency, result.raw, self.view, self.alpha, self.colormap,
                        result.rgb, result.sign, top)


class Shown(NamedTuple):
    """What a download's manifest says of the maps besides the maps themselves: the analysis (model and image), the
    image's name and how the maps are drawn."""

    analysis: Analysis
    name: str | None
    look: Look

    def zip(self, kind: str, files: dict[str, bytes], results: list[CamResult], **extra: object) -> bytes:
        """One zip of files and the manifest of the maps they show (model, image, methods, settings, versions) and
        of how they are drawn."""
        look = self.look
        drawn = {"view": look.view, "alpha": look.alpha, "colormap": look.colormap, "shared_scale": look.shared}
        record = manifest(self.analysis.explainer, kind, [self.analysis.image], results, names=[self.name],
                          drawn=drawn, **extra)
        return zip_with_manifest(files, record)


def about(card: MethodCard, shown: Shown, result: CamResult, picture: Image.Image, stem: str) -> None:
    """The method's card and its map's downloads (the picture with its colour bar; the raw signed map), each in a
    zip with its manifest, in a popover under its map."""
    with st.popover("About · download", icon=":material/school:", width="stretch"):
        method_card(card)
        left, right = st.columns(2)
        left.download_button("Map as PNG (zip with manifest)", file_name=f"{stem}_png.zip", mime="application/zip",
                             data=lambda: shown.zip("map", {f"{stem}.png": png_bytes(picture)}, [result]),
                             key=f"png_{stem}", on_click="ignore", icon=":material/download:", width="stretch")
        right.download_button("Raw map as NPY (zip with manifest)", file_name=f"{stem}_npy.zip",
                              mime="application/zip",
                              data=lambda: shown.zip("map", {f"{stem}.npy": npy_bytes(result.raw)}, [result]),
                              key=f"npy_{stem}", on_click="ignore", icon=":material/download:", width="stretch")


def controls(explainer: Explainer, analysis: Analysis, chosen: list[str],
             cards: dict[str, MethodCard]) -> tuple[Look, int | None, list[str]]:
    """The row of drawing choices, the second class to compare with (None: none), and the two methods whose
    difference is shown (none, or two)."""
    c1, c2, c3, c4, c5 = st.columns([2, 1.3, 1.3, 1.5, 2.2])
    view = c1.radio("Show", list(VIEW_LABELS), format_func=VIEW_LABELS.get, key="compare_view")
    alpha = c2.slider("Opacity", 0.0, 1.0, 0.6, 0.05, key="compare_alpha", disabled=view == "map")
    colormap = c3.selectbox("Colour map", COLORMAPS, key="compare_colormap", disabled=view == "signed",
                            help="viridis and its family are perceptually uniform; jet's bright bands draw edges "
                            "that are not in the map, and it fails for colour-blind viewers.")
    sign = c4.radio("Evidence", ["positive", "negative"], key="compare_sign", disabled=view == "signed",
                    format_func={"positive": "for the class", "negative": "against the class"}.get)
    second = c5.selectbox("Compare with a second class", range(len(explainer.labels)), index=None,
                          key="compare_second", placeholder="none",
                          format_func=class_labels(explainer, analysis).__getitem__)
    two = second is not None
    d1, d2, d3 = st.columns([1.3, 1.7, 3])
    shared = d1.checkbox("Shared scale", key="compare_shared", disabled=not two,
                         help="One scale for both class rows of a method: both maps divided by the larger of the "
                         "two maxima, so the weaker class looks weaker.")
    diff = d2.checkbox("Difference row (first − second class)", key="compare_difference", disabled=not two)
    pair = d3.multiselect("Difference of two methods (first − second)", chosen, max_selections=2,
                          key="compare_method_difference", format_func=lambda i: cards[i].name,
                          help="Each map divided by its own maximum, then subtracted: red where the first method "
                          "sees more, blue where the second does.")
    return Look(view, alpha, colormap, sign, shared and two, diff and two), second, pair


def slow_feedback(analysis: Analysis, card: MethodCard, slot: DeltaGenerator, progress: ProgressLine,
                  look: Look) -> dict:
    """For methods that run many model passes (masked inputs, ablations): a progress bar with a time estimate and,
    where the method can give one, the map as it sharpens. Methods that run no passes never call these."""

    def on_partial(result: CamResult) -> None:
        slot.image(look.picture(analysis, result), caption=f"{card.name} · so far ({format_seconds(result.seconds)})",
                   width="stretch")

    return {"progress": progress_callback(progress, card.name), "partial": on_partial}


class Grid:
    """The maps of the chosen methods for the classes, each computed once, and the pictures for the download."""

    def __init__(self, analysis: Analysis, cards: dict[str, MethodCard], settings: dict[str, dict], look: Look,
                 progress: ProgressLine) -> None:
        self.analysis, self.cards, self.settings, self.look, self.progress = analysis, cards, settings, look, progress
        self.results: dict[tuple[str, int], CamResult | CamError] = {}
        self.pictures: list[Image.Image] = []
        self.titles: list[str] = []
        self.maps: list[CamResult] = []
        self.pending: list[tuple[DeltaGenerator, MethodCard, CamResult, int]] = []

    def sign(self, method_id: str) -> str:
        return "positive" if not self.cards[method_id].signed else self.look.sign

    def result(self, method_id: str, class_index: int, slot: DeltaGenerator) -> CamResult | CamError:
        """method's map of class_index (a slow method shows its progress and partial maps in slot)."""
        key = (method_id, class_index)
        if key not in self.results:
            card = self.cards[method_id]
            try:
                self.results[key] = self.analysis.cam(
                    method_id, target=class_index, sign=self.sign(method_id), **self.settings.get(method_id, {}),
                    **slow_feedback(self.analysis, card, slot, self.progress, self.look))
            except CamError as exc:
                self.results[key] = exc
        return self.results[key]

    def shown(self) -> Shown:
        """The analysis, the image's name and the look, for the manifests of the downloads."""
        return Shown(self.analysis, st.session_state.get("image_name"), self.look)

    def keep(self, picture: Image.Image, title: str) -> None:
        self.pictures.append(picture)
        self.titles.append(title)

    def specificity_captions(self) -> None:
        """Each map's class-specificity in the place kept under it, once every map is shown (the other classes'
        maps and the layer search come after the maps): r with the same method's map of the other class; near 1,
        why, and a better layer."""
        for position, (spot, card, result, other) in enumerate(self.pending):
            self.progress.update(position / max(1, len(self.pending)), text=f"Class-specificity of {card.name}")
            try:
                found = specificity(self.analysis, card.id, result.target, other, result.sign,
                                    **self.settings.get(card.id, {}))
            except CamError as exc:
                spot.caption(f"Class-specificity not available: {exc}")
                continue
            spot.caption(found.caption(self.analysis.explainer.labels[other]))


def draw_cell(grid: Grid, method_id: str, class_index: int, other: int, top_of: dict[str, float | None]) -> None:
    """One method's map of one class, its captions and its popover."""
    analysis, look, card = grid.analysis, grid.look, grid.cards[method_id]
    slot = st.empty()
    result = grid.result(method_id, class_index, slot)
    if isinstance(result, CamError):
        slot.warning(f"**{card.name}**: {result}", icon=":material/block:")
        return
    if look.shared and method_id not in top_of:
        second = grid.result(method_id, other, st.empty())
        top_of[method_id] = None if isinstance(second, CamError) or result.rgb is not None else shared_top(
            [result.raw, second.raw], analysis.size, look.view, result.sign)
    picture = look.picture(analysis, result, top_of.get(method_id))
    slot.image(picture, caption=f"{card.name} · {format_seconds(result.seconds)}", width="stretch")
    if result.note:
        st.caption(f":material/info: {result.note}")
    if look.sign == "negative" and not card.signed:
        st.caption(":material/info: a gradient image has no map against the class; shown as it is")
    if look.view == "signed" and result.rgb is None and float(result.raw.min()) >= 0:
        st.caption(f":material/info: {card.name}'s raw map is ≥ 0 by construction, so only red can appear")
    grid.pending.append((st.empty(), card, result, other))
    grid.keep(picture, f"{card.name} · {analysis.explainer.labels[class_index]}")
    grid.maps.append(result)
    about(card, grid.shown(), result, picture, f"{method_id}_{class_index}_{look.sign}")


def draw_grid(grid: Grid, targets: list[int], chosen: list[str]) -> None:
    """One row of maps per class, one column per method (with a shared scale: one scale per method for both
    rows); then, when asked, the row of their difference."""
    analysis = grid.analysis
    explainer = analysis.explainer
    total = max(1, len(chosen) * len(targets))
    top_of: dict[str, float | None] = {}
    for row, class_index in enumerate(targets):
        other = targets[1 - row] if len(targets) == 2 else analysis.comparison_class(class_index)
        st.subheader(class_label(explainer, analysis, class_index), divider="gray")
        for position, method_id in enumerate(chosen):
            if position % COLUMNS == 0:
                columns = st.columns(COLUMNS)
            with columns[position % COLUMNS], GRID_TURNS.slot():
                draw_cell(grid, method_id, class_index, other, top_of)
            grid.progress.update((row * len(chosen) + position + 1) / total,
                                 text=f"Computed {grid.cards[method_id].name}")
    if grid.look.difference and len(targets) == 2:
        class_difference(grid, targets, chosen)


def evidence(analysis: Analysis, result: CamResult) -> np.ndarray:
    """The result's map after the ReLU at the image's size, in the method's units."""
    return evidence_map(result.raw, analysis.size, result.sign).numpy()


def class_difference(grid: Grid, targets: list[int], chosen: list[str]) -> None:
    """Each method's map of the first class minus its map of the second, in the method's own units."""
    labels = grid.analysis.explainer.labels
    first, second = (labels[i] for i in targets)
    st.subheader(f"“{first}” − “{second}”", divider="gray")
    st.caption(f"Red: more evidence for “{first}” than for “{second}”; blue: the reverse. Both classes' maps after "
               f"the ReLU, subtracted in {describe('raw')}; the bar spans ± the larger of the two maps' maxima "
               "(their shared scale).")
    for position, method_id in enumerate(chosen):
        if position % COLUMNS == 0:
            columns = st.columns(COLUMNS)
        maps = [grid.results.get((method_id, t)) for t in targets]
        if not all(isinstance(m, CamResult) for m in maps):
            continue
        kept = [evidence(grid.analysis, m) for m in maps]
        name = grid.cards[method_id].name
        picture = difference_view(grid.analysis.image, difference(*kept, "raw"), grid.look.alpha,
                                  f"{name}: {first} − {second}", max(float(k.max()) for k in kept))
        columns[position % COLUMNS].image(picture, caption=f"{name} · difference", width="stretch")
        grid.keep(picture, f"{name} · {first} - {second}")


def method_difference(grid: Grid, targets: list[int], pair: list[str]) -> None:
    """The first method's map minus the second's for each class, each divided by its own maximum."""
    names = [grid.cards[i].name for i in pair]
    labels = grid.analysis.explainer.labels
    st.subheader(f"{names[0]} − {names[1]}", divider="gray")
    st.caption(f"Red: where {names[0]} puts more of its evidence, blue: where {names[1]} does; {describe('max')} "
               "(their units differ), so the difference runs from −1 to +1.")
    columns = st.columns(COLUMNS)
    for position, class_index in enumerate(targets):
        maps = [grid.results.get((method_id, class_index)) for method_id in pair]
        if not all(isinstance(m, CamResult) for m in maps):
            continue
        values = difference(*(evidence(grid.analysis, m) for m in maps), "max")
        picture = difference_view(grid.analysis.image, values, grid.look.alpha, "difference of the scaled maps", 1.0)
        columns[position % COLUMNS].image(picture, caption=f"{names[0]} − {names[1]} · {labels[class_index]}",
                                          width="stretch")
        grid.keep(picture, f"{names[0]} - {names[1]} · {labels[class_index]}")


def compare() -> None:
    """The chosen methods' maps of the user's class (and of a second class), and the whole grid to download."""
    subject = page("Compare methods", "The same image and class through many CAM methods side by side: where they "
                   "agree, the evidence is robust; where they differ, the method matters.")
    if subject is None:
        return
    explainer, analysis, target = subject
    with friendly_errors():
        cards = {card.id: card for card in methods() if not explainer.unmet(card)}
        quick = [card.id for card in default_grid() if card.id in cards]
        kept = st.session_state.get("compare_methods", [])
        if any(i not in cards for i in kept):  # methods chosen on another model that this one cannot run
            st.session_state.compare_methods = [i for i in kept if i in cards]
        chosen = st.multiselect("Methods", list(cards), default=quick, key="compare_methods",
                                format_func=lambda i: cards[i].name)
        settings = method_settings(explainer, chosen, cards)
        look, second, pair = controls(explainer, analysis, chosen, cards)
        targets = [target] + ([second] if second is not None and second != target else [])
        progress = ProgressLine("Computing maps…")
        grid = Grid(analysis, cards, settings, look, progress)
        with progress.queue():
            draw_grid(grid, targets, chosen)
            grid.specificity_captions()
        progress.empty()
        if len(pair) == 2:
            method_difference(grid, targets, pair)
        if grid.pictures:
            pictures, titles, maps, shown = grid.pictures, grid.titles, grid.maps, grid.shown()
            st.download_button("Download the whole grid (PNG, zip with manifest)",
                               data=lambda: shown.zip(
                                   "grid", {"cam_grid.png": png_bytes(grid_sheet(pictures, titles, columns=COLUMNS))},
                                   maps, pictures=titles, columns=COLUMNS),
                               file_name="cam_grid.zip", mime="application/zip", on_click="ignore",
                               icon=":material/grid_on:", key="grid_png")
        elif not chosen:
            st.info("Choose at least one method.", icon=":material/touch_app:")


compare()
