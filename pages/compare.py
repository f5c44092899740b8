"""Compare page: one image and class through many CAM methods, side by side."""

from __future__ import annotations

import io
import time
from typing import NamedTuple

import numpy as np
import streamlit as st
from PIL import Image
from streamlit.delta_generator import DeltaGenerator

from cam_core import Analysis, CamError, CamResult, Explainer, MethodCard, methods
from cam_core.provenance.manifest import manifest, zip_with_manifest
from cam_core.registry import COSTS, default_grid
from cam_core.render.colourbar import difference_view, map_view, shared_top
from cam_core.render.display import DISPLAY_WIDTH, jpeg_bytes, shown_image
from cam_core.render.pictures import COLORMAPS, npy_bytes, png_bytes
from cam_core.render.pictures import grid as grid_sheet
from cam_core.render.saliency import evidence_map
from cam_core.views.difference import describe, difference
from cam_core.views.specificity import known_specificity, specificity
from pages.ui.errors import friendly_errors
from pages.ui.frame import page
from pages.ui.method_settings import method_settings
from pages.ui.pictures import Shown, picture_key, shown_maps
from pages.ui.resources import GRID_TURNS
from pages.ui.state import class_label, class_labels
from pages.ui.widgets import ProgressLine, format_seconds, method_card, progress_callback

COLUMNS = 4
PROGRESS_EVERY = 0.2  # seconds between two redraws of the progress bar (each is a message to the browser)
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

    def picture(self, analysis: Analysis, result: CamResult, top: float | None = None,
                width: int | None = DISPLAY_WIDTH) -> Image.Image:
        """The result's map drawn this way at most width pixels wide (None: the image's full size, for downloads),
        with a colour bar of its real values (top: a scale shared with other maps)."""
        image = analysis.image if width is None else shown_image(analysis.image, width)
        saliency = result.saliency_at((image.height, image.width))
        return map_view(image, saliency, result.raw, self.view, self.alpha, self.colormap, result.rgb, result.sign,
                        top)


class Download(NamedTuple):
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


def about(card: MethodCard, download: Download, shown: Shown, stem: str) -> None:
    """The method's card and its map's downloads (the picture at the image's full size with its colour bar; the raw
    signed map), each in a zip with its manifest, in a popover under its map."""
    result = shown.result

    def full_picture() -> bytes:
        return png_bytes(download.look.picture(download.analysis, result, shown.top, width=None))

    about_box = st.popover("About · download", icon=":material/school:", width="stretch", key=f"about_{stem}",
                           on_change="rerun")
    if not about_box.open:  # its content is drawn only when opened: a grid of closed popovers costs nothing
        return
    with about_box:
        method_card(card)
        left, right = st.columns(2)
        left.download_button("Map as PNG (zip with manifest)", file_name=f"{stem}_png.zip", mime="application/zip",
                             data=lambda: download.zip("map", {f"{stem}.png": full_picture()}, [result]),
                             key=f"png_{stem}", on_click="ignore", icon=":material/download:", width="stretch")
        right.download_button("Raw map as NPY (zip with manifest)", file_name=f"{stem}_npy.zip",
                              mime="application/zip",
                              data=lambda: download.zip("map", {f"{stem}.npy": npy_bytes(result.raw)}, [result]),
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
        slot.image(jpeg_bytes(look.picture(analysis, result)),
                   caption=f"{card.name} · so far ({format_seconds(result.seconds)})", width="stretch")

    return {"progress": progress_callback(progress, card.name), "partial": on_partial}


class Grid:
    """The maps of the chosen methods for the classes, each computed and drawn once (and kept for every session at
    its shown size), and what the downloads need, in grid order."""

    def __init__(self, analysis: Analysis, cards: dict[str, MethodCard], settings: dict[str, dict], look: Look,
                 progress: ProgressLine) -> None:
        self.analysis, self.cards, self.settings, self.look, self.progress = analysis, cards, settings, look, progress
        self.results: dict[tuple[str, int], CamResult | CamError] = {}
        self.kept: dict[int, tuple[bytes, str, CamResult]] = {}  # grid position → picture, title, map
        self.extras: list[tuple[bytes, str]] = []  # the difference rows' pictures and titles
        self.pending: list[tuple[DeltaGenerator, MethodCard, CamResult, int]] = []
        self.store = shown_maps()
        self.shown_at = time.perf_counter()

    def step(self, value: float, text: str) -> None:
        """Move the progress bar, at most once every PROGRESS_EVERY seconds (a grid drawn from the store sends
        none)."""
        if time.perf_counter() - self.shown_at >= PROGRESS_EVERY:
            self.progress.update(value, text=text)
            self.shown_at = time.perf_counter()

    def sign(self, method_id: str) -> str:
        return "positive" if not self.cards[method_id].signed else self.look.sign

    def key(self, method_id: str, class_index: int, other: int) -> tuple:
        """The store's key of method's map of class_index as drawn in this grid."""
        return picture_key(self.analysis, method_id, class_index, self.sign(method_id),
                           self.settings.get(method_id, {}), self.look._replace(difference=False),
                           other if self.look.shared else None,
                           DISPLAY_WIDTH)

    def drawn(self, method_id: str, class_index: int, other: int) -> Shown | None:
        """The map as already drawn for some session, or None."""
        return self.store.get(self.key(method_id, class_index, other))

    def order(self, method_id: str, class_index: int, other: int) -> tuple[int, int]:
        """When to fill a cell: maps already drawn first, then by cost, methods that run passes for each new class
        last within their cost."""
        if self.drawn(method_id, class_index, other) is not None:
            return 0, 0
        card = self.cards[method_id]
        return 1 + COSTS.index(card.cost), int(card.passes_per_class(self.settings.get(method_id, {})))

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

    def shown(self, method_id: str, class_index: int, other: int, slot: DeltaGenerator) -> Shown | CamError:
        """method's map of class_index drawn in this grid's look: from the store, or computed, drawn and stored."""
        found = self.drawn(method_id, class_index, other)
        if found is not None:
            self.results.setdefault((method_id, class_index), found.result)
            return found
        result = self.result(method_id, class_index, slot)
        if isinstance(result, CamError):
            return result
        top = None
        if self.look.shared and result.rgb is None:
            second = self.result(method_id, other, st.empty())
            top = None if isinstance(second, CamError) else shared_top(
                [result.raw, second.raw], shown_image(self.analysis.image).size[::-1], self.look.view, result.sign)
        drawn = Shown(result, top, jpeg_bytes(self.look.picture(self.analysis, result, top)))
        return self.store.put(self.key(method_id, class_index, other), drawn)

    def download(self) -> Download:
        """The analysis, the image's name and the look, for the manifests of the downloads."""
        return Download(self.analysis, st.session_state.get("image_name"), self.look)

    def sheet(self) -> tuple[list[Image.Image], list[str], list[CamResult]]:
        """The pictures and titles kept, in grid order, then the difference rows', decoded for the grid sheet; the
        maps they show."""
        kept = [self.kept[position] for position in sorted(self.kept)]
        pictures = [(picture, title) for picture, title, _ in kept] + self.extras
        return ([Image.open(io.BytesIO(picture)) for picture, _ in pictures], [title for _, title in pictures],
                [result for _, _, result in kept])

    def specificity_captions(self) -> None:
        """Each map's class-specificity in the place kept under it, once every map is shown (the other classes'
        maps and the layer search come after the maps): r with the same method's map of the other class; near 1,
        why, and a better layer."""
        for position, (spot, card, result, other) in enumerate(self.pending):
            self.step(position / max(1, len(self.pending)), text=f"Class-specificity of {card.name}")
            try:
                found = specificity(self.analysis, card.id, result.target, other, result.sign,
                                    **self.settings.get(card.id, {}))
            except CamError as exc:
                spot.caption(f"Class-specificity not available: {exc}")
                continue
            spot.caption(found.caption(self.analysis.explainer.labels[other]))


def draw_cell(grid: Grid, position: int, method_id: str, class_index: int, other: int) -> None:
    """One method's map of one class, its captions and its popover."""
    look, card = grid.look, grid.cards[method_id]
    slot = st.empty()
    shown = grid.shown(method_id, class_index, other, slot)
    if isinstance(shown, CamError):
        slot.warning(f"**{card.name}**: {shown}", icon=":material/block:")
        return
    result = shown.result
    slot.image(shown.picture, caption=f"{card.name} · {format_seconds(result.seconds)}", width="stretch")
    if result.note:
        st.caption(f":material/info: {result.note}")
    if look.sign == "negative" and not card.signed:
        st.caption(":material/info: a gradient image has no map against the class; shown as it is")
    if look.view == "signed" and result.rgb is None and float(result.raw.min()) >= 0:
        st.caption(f":material/info: {card.name}'s raw map is ≥ 0 by construction, so only red can appear")
    settings = grid.settings.get(method_id, {})
    known = known_specificity(grid.analysis, method_id, class_index, other, result.sign, **settings)
    if known is None:
        grid.pending.append((st.empty(), card, result, other))
    else:
        st.caption(known.caption(grid.analysis.explainer.labels[other]))
    grid.kept[position] = (shown.picture, f"{card.name} · {grid.analysis.explainer.labels[class_index]}", result)
    about(card, grid.download(), shown, f"{method_id}_{class_index}_{look.sign}")


def draw_grid(grid: Grid, targets: list[int], chosen: list[str]) -> None:
    """One row of maps per class, one column per method (with a shared scale: one scale per method for both
    rows); then, when asked, the row of their difference; then each map's class-specificity caption. Every cell's
    place is laid out first, then filled: maps already drawn, then by cost, those that run model passes for each new
    class last."""
    analysis = grid.analysis
    explainer = analysis.explainer
    cells = []
    for row, class_index in enumerate(targets):
        other = targets[1 - row] if len(targets) == 2 else analysis.comparison_class(class_index)
        st.subheader(class_label(explainer, analysis, class_index), divider="gray")
        for position, method_id in enumerate(chosen):
            if position % COLUMNS == 0:
                columns = st.columns(COLUMNS)
            cells.append((columns[position % COLUMNS].container(), method_id, class_index, other))
    order = sorted(range(len(cells)), key=lambda i: grid.order(*cells[i][1:]))
    for done, position in enumerate(order, start=1):
        spot, method_id, class_index, other = cells[position]
        with spot, GRID_TURNS.slot():
            draw_cell(grid, position, method_id, class_index, other)
        grid.step(done / len(cells), text=f"Computed {grid.cards[method_id].name}")
    if grid.look.difference and len(targets) == 2:
        class_difference(grid, targets, chosen)
    grid.specificity_captions()


def evidence(grid: Grid, result: CamResult) -> np.ndarray:
    """The result's map after the ReLU at the grid's shown size, in the method's units."""
    return evidence_map(result.raw, shown_image(grid.analysis.image).size[::-1], result.sign).numpy()


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
        kept = [evidence(grid, m) for m in maps]
        name = grid.cards[method_id].name
        picture = jpeg_bytes(difference_view(shown_image(grid.analysis.image), difference(*kept, "raw"),
                                             grid.look.alpha, f"{name}: {first} − {second}",
                                             max(float(k.max()) for k in kept)))
        columns[position % COLUMNS].image(picture, caption=f"{name} · difference", width="stretch")
        grid.extras.append((picture, f"{name} · {first} - {second}"))


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
        values = difference(*(evidence(grid, m) for m in maps), "max")
        picture = jpeg_bytes(difference_view(shown_image(grid.analysis.image), values, grid.look.alpha,
                                             "difference of the scaled maps", 1.0))
        columns[position % COLUMNS].image(picture, caption=f"{names[0]} − {names[1]} · {labels[class_index]}",
                                          width="stretch")
        grid.extras.append((picture, f"{names[0]} - {names[1]} · {labels[class_index]}"))


@st.fragment
def maps(explainer: Explainer, analysis: Analysis, target: int, chosen: list[str],
         cards: dict[str, MethodCard]) -> None:
    """The methods' settings, the drawing choices and the grid: changing any of them reruns this part alone."""
    with friendly_errors():
        settings = method_settings(explainer, chosen, cards)
        look, second, pair = controls(explainer, analysis, chosen, cards)
        targets = [target] + ([second] if second is not None and second != target else [])
        progress = ProgressLine("Computing maps…")
        grid = Grid(analysis, cards, settings, look, progress)
        with progress.queue():
            draw_grid(grid, targets, chosen)
        progress.empty()
        if len(pair) == 2:
            method_difference(grid, targets, pair)
        if grid.kept or grid.extras:
            download = grid.download()

            def whole_grid() -> bytes:
                pictures, titles, results = grid.sheet()
                sheet = png_bytes(grid_sheet(pictures, titles, columns=COLUMNS))
                return download.zip("grid", {"cam_grid.png": sheet}, results, pictures=titles, columns=COLUMNS)

            st.download_button("Download the whole grid (PNG, zip with manifest)", data=whole_grid,
                               file_name="cam_grid.zip", mime="application/zip", on_click="ignore",
                               icon=":material/grid_on:", key="grid_png")
        elif not chosen:
            st.info("Choose at least one method.", icon=":material/touch_app:")


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
    maps(explainer, analysis, target, chosen, cards)


compare()
