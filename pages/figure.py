"""Figure page: many images (rows, each with its class) × methods (columns) in one figure for a paper, previewed
and downloaded as PNG, PDF or SVG, each in a zip with its manifest."""

from __future__ import annotations

import streamlit as st
from PIL import Image

from cam_core import CamError, Explainer, methods
from cam_core.figures import (
    COLORBARS,
    DEFAULT_METHODS,
    FORMATS,
    VIEWS,
    Column,
    FigureMaps,
    Layout,
    Row,
    compute_maps,
    export,
)
from cam_core.inputs.examples import load_example
from cam_core.inputs.images import load_image
from cam_core.provenance.manifest import manifest, zip_with_manifest
from cam_core.render.pictures import COLORMAPS
from pages.ui.errors import error_text, friendly_errors
from pages.ui.frame import page
from pages.ui.method_settings import method_settings
from pages.ui.resources import GRID_TURNS
from pages.ui.state import IMAGE_UPLOAD_MB, UPLOAD_TYPES, class_labels, example_label, example_names
from pages.ui.widgets import ProgressLine

ROWS = "figure_rows"  # session_state: the figure's rows, each a dict of id, image, name and target (None: top-1)
FIGURE_SIDE = 800  # images are kept at most this many pixels on their longer side (cells are smaller)
VIEW_LABELS = {"overlay": "Overlay on the image", "map": "Map only"}
BAR_LABELS = {"none": "none", "column": "one per row (min … max)", "cell": "under every map (its values)"}
STEM = "cam_figure"


def rows() -> list[dict]:
    """This session's rows."""
    return st.session_state.setdefault(ROWS, [])


def add_row(image: Image.Image, name: str, target: int | None = None) -> None:
    """A row of image (downscaled to FIGURE_SIDE) explained for target (None: its top-1 class)."""
    kept = image.convert("RGB")
    if max(kept.size) > FIGURE_SIDE:
        kept.thumbnail((FIGURE_SIDE, FIGURE_SIDE), Image.LANCZOS)
    row_id = st.session_state.get("figure_next_row", 0)
    st.session_state.figure_next_row = row_id + 1
    rows().append({"id": row_id, "image": kept, "name": name, "target": target})


def on_uploads() -> None:
    """Add every uploaded image as a row; the files that are not images are named in a message."""
    key = f"figure_upload_{st.session_state.get('figure_upload_round', 0)}"
    refused = []
    for upload in st.session_state.get(key) or []:
        try:
            add_row(load_image(upload.getvalue()), upload.name)
        except CamError as exc:
            refused.append(f"{upload.name}: {exc}")
    st.session_state.figure_refused = refused
    st.session_state.figure_upload_round = st.session_state.get("figure_upload_round", 0) + 1  # empties the box


def on_examples() -> None:
    for name in st.session_state.get("figure_examples", []):
        add_row(load_example(name), name)
    st.session_state.figure_examples = []


def on_current() -> None:
    add_row(st.session_state.image, st.session_state.image_name, st.session_state.figure_current_class)


def on_class(row: dict, key: str) -> None:
    row["target"] = st.session_state[key]


def on_remove(row_id: int) -> None:
    st.session_state[ROWS] = [row for row in rows() if row["id"] != row_id]


def adding(explainer: Explainer, labels: list[str], target: int) -> None:
    """Three ways to add rows: uploads (several at once), bundled examples, the current image with a class."""
    upload_tab, example_tab, current_tab = st.tabs([":material/upload: Uploads", ":material/photo_library: Examples",
                                                    ":material/image: The current image"])
    with upload_tab:
        st.file_uploader(f"Images of your own ({', '.join(UPLOAD_TYPES)})", accept_multiple_files=True,
                         key=f"figure_upload_{st.session_state.get('figure_upload_round', 0)}",
                         on_change=on_uploads, max_upload_size=IMAGE_UPLOAD_MB,
                         help="Each image becomes a row, explained for its top-1 class.")
        for message in st.session_state.get("figure_refused", []):
            st.error(f"{message}. It was not added.", icon=":material/broken_image:")
    with example_tab:
        left, right = st.columns([4, 1], vertical_alignment="bottom")
        left.multiselect("Bundled photos", example_names(), key="figure_examples", format_func=example_label,
                         placeholder="Choose example photos")
        right.button("Add", key="figure_add_examples", on_click=on_examples, icon=":material/add:",
                     disabled=not st.session_state.get("figure_examples"), width="stretch")
    with current_tab:
        left, right = st.columns([4, 1], vertical_alignment="bottom")
        left.selectbox(f"{st.session_state.image_name}, explained for", range(len(labels)), index=target,
                                key="figure_current_class", format_func=labels.__getitem__,
                                help="Add it twice with two classes to compare them in the figure.")
        right.button("Add", key="figure_add_current", on_click=on_current, icon=":material/add:", width="stretch")


def row_list(explainer: Explainer) -> None:
    """Each row: its image, name, a class picker (top-1 by default) and a remove button."""
    for number, row in enumerate(rows(), start=1):
        analysis = explainer.analyze(row["image"])
        if row["target"] is not None and row["target"] >= len(explainer.labels):
            row["target"] = None  # a class of another model
        top = analysis.top_k(1)[0]
        picture, name, picker, remove = st.columns([0.6, 2, 4, 0.5], vertical_alignment="center")
        picture.image(row["image"], width=72)
        name.markdown(f"**{number}.** {row['name']}")
        key = f"figure_class_{row['id']}"
        st.session_state[key] = row["target"]  # re-seeded every run, written back by on_class
        picker.selectbox(f"Class of row {number}", range(len(explainer.labels)), key=key, on_change=on_class,
                         args=(row, key), label_visibility="collapsed", placeholder=f"top-1: {top[1]} ({top[0]})",
                         format_func=class_labels(explainer, analysis).__getitem__)
        remove.button("", key=f"figure_remove_{row['id']}", icon=":material/delete:", on_click=on_remove,
                      args=(row["id"],), help="Remove this row")


def layout_options() -> Layout:
    """The figure's drawing options."""
    with st.expander("Layout", icon=":material/tune:", expanded=True):
        c1, c2, c3, c4 = st.columns(4)
        view = c1.radio("Show", VIEWS, format_func=VIEW_LABELS.get, key="figure_view")
        alpha = c1.slider("Opacity", 0.0, 1.0, 0.5, 0.05, key="figure_alpha", disabled=view == "map")
        colormap = c2.selectbox("Colour map", COLORMAPS, key="figure_colormap")
        colorbar = c2.radio("Colour bars", COLORBARS, format_func=BAR_LABELS.get, key="figure_colorbar")
        cell = c3.slider("Cell width (inches)", 0.5, 4.0, 1.6, 0.1, key="figure_cell")
        spacing = c3.slider("Spacing (inches)", 0.0, 0.5, 0.05, 0.01, key="figure_spacing")
        font_size = c3.slider("Font size (points)", 4.0, 20.0, 8.0, 0.5, key="figure_font")
        dpi = c4.number_input("PNG DPI", 50, 600, 200, 10, key="figure_dpi",
                              help="The PNG's resolution, and the resolution the maps are embedded at in PDF and SVG "
                              "(their text and lines are vectors).")
        raw = c4.checkbox("Image column", value=True, key="figure_raw")
        titles = c4.checkbox("Method names above", value=True, key="figure_titles")
        names = c4.checkbox("Image names under the class", value=False, key="figure_names")
    return Layout(cell=cell, spacing=spacing, colormap=colormap, view=view, alpha=alpha, font_size=font_size,
                  raw_column=raw, colorbar=colorbar, titles=titles, image_names=names, dpi=int(dpi))


def figure_maps(explainer: Explainer, columns: list[Column]) -> FigureMaps:
    """Every cell's map from the rows' cached Analyses, with one progress bar for the whole figure."""
    progress = ProgressLine("Computing the figure…")

    def step(done: int, total: int, text: str) -> None:
        progress.update(done / total, text=f"{done}/{total} maps · {text}")

    with progress.queue(), GRID_TURNS.slot():
        maps = compute_maps(explainer, [Row(r["image"], r["name"], r["target"]) for r in rows()],
                            columns, step)
    progress.empty()
    return maps


def record(explainer: Explainer, maps: FigureMaps, layout: Layout, fmt: str) -> dict:
    """The manifest of the figure in format fmt."""
    per_row = len(maps.columns)
    return manifest(explainer, "figure", list(maps.images), maps.flat(), names=[row.name for row in maps.rows],
                    image_of=[index // per_row for index in range(len(maps.rows) * per_row)],
                    figure={"layout": layout.record(), "format": fmt, **maps.record()})


def preview_png(explainer: Explainer, maps: FigureMaps, layout: Layout) -> bytes:
    """The figure as PNG, drawn again only when the rows, methods (or their settings), model or layout change."""
    key = (explainer.name, tuple((r["id"], r["target"]) for r in rows()), maps.columns, layout)
    kept = st.session_state.get("figure_preview")
    if kept is None or kept[0] != key:
        with st.spinner("Drawing the figure…"):
            kept = (key, export(maps, layout, "png"))
        st.session_state.figure_preview = kept
    return kept[1]


def downloads(explainer: Explainer, maps: FigureMaps, layout: Layout, png: bytes) -> None:
    """PNG, PDF and SVG, each a zip of the figure and its manifest.json (made when clicked)."""
    def zipped(fmt: str):
        def build() -> bytes:
            data = png if fmt == "png" else export(maps, layout, fmt)
            return zip_with_manifest({f"{STEM}.{fmt}": data}, record(explainer, maps, layout, fmt))
        return build

    for place, fmt in zip(st.columns(len(FORMATS)), FORMATS, strict=True):
        place.download_button(f"{fmt.upper()} + manifest", data=zipped(fmt), file_name=f"{STEM}_{fmt}.zip",
                              mime="application/zip", key=f"figure_{fmt}", on_click="ignore",
                              icon=":material/download:", width="stretch")


def figure() -> None:
    """Rows of images, columns of methods: the figure, its preview and its downloads."""
    subject = page("Figure", "Images as rows, methods as columns, for a paper: add images, pick each row's class "
                   "and the methods, then download the figure as PNG, PDF or SVG with its manifest.")
    if subject is None:
        return
    explainer, analysis, target = subject
    with friendly_errors():
        adding(explainer, class_labels(explainer, analysis), target)
        row_list(explainer)
        cards = {card.id: card for card in methods() if not explainer.unmet(card)}
        kept = st.session_state.get("figure_methods")
        if kept is not None and any(i not in cards for i in kept):  # methods of another model
            st.session_state.figure_methods = [i for i in kept if i in cards]
        chosen = st.multiselect("Methods (columns)", list(cards), default=[i for i in DEFAULT_METHODS if i in cards],
                                key="figure_methods", format_func=lambda i: cards[i].name,
                                help="Methods that run many model passes (Score-CAM and its family, RISE, …) take "
                                "a while per row.")
        settings = method_settings(explainer, chosen, cards, key_prefix="figure_")
        layout = layout_options()
        if not rows() or not chosen:
            st.info("Add at least one image and choose at least one method.", icon=":material/touch_app:")
            return
        try:
            maps = figure_maps(explainer, [Column(method, settings.get(method, {})) for method in chosen])
        except CamError as exc:
            st.error(error_text(exc), icon=":material/error:")
            return
        png = preview_png(explainer, maps, layout)
        st.image(png, caption=f"{len(maps.rows)} images × {len(chosen)} methods · PNG at {layout.dpi} DPI",
                 width="stretch")
        downloads(explainer, maps, layout, png)


figure()
