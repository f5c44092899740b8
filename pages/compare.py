"""Compare page: one image and class through many CAM methods, side by side."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import streamlit as st
from PIL import Image
from streamlit.delta_generator import DeltaGenerator

from cam_core import Analysis, CamError, CamResult, Explainer, MethodCard, methods
from cam_core.render.pictures import COLORMAPS, grid, npy_bytes, png_bytes, result_picture
from pages.ui.errors import friendly_errors
from pages.ui.frame import page
from pages.ui.resources import GRID_TURNS
from pages.ui.state import class_label, class_labels
from pages.ui.widgets import ProgressLine, format_seconds, method_card, param_widget, progress_callback, stack_choices

COLUMNS = 4
VIEW_LABELS = {"overlay": "Overlay on the image", "map": "Map only", "signed": "Signed map (red for, blue against)"}


class Look(NamedTuple):
    """How the maps are drawn: the view, the overlay's opacity, the colour map, and the evidence shown."""

    view: str
    alpha: float
    colormap: str
    sign: str

    def picture(self, analysis: Analysis, result: CamResult) -> Image.Image:
        """The result's map drawn this way."""
        return result_picture(analysis.image, result.saliency, result.raw, self.view, self.alpha, self.colormap,
                              result.rgb)


def about(card: MethodCard, picture: Image.Image, saliency: np.ndarray, stem: str) -> None:
    """The method's card and its map's downloads, in a popover under its map."""
    with st.popover("About · download", icon=":material/school:", width="stretch"):
        method_card(card)
        left, right = st.columns(2)
        left.download_button("Map as PNG", data=lambda: png_bytes(picture), file_name=f"{stem}.png", mime="image/png",
                             key=f"png_{stem}", on_click="ignore", icon=":material/download:", width="stretch")
        right.download_button("Map as NPY", data=lambda: npy_bytes(saliency), file_name=f"{stem}.npy",
                              mime="application/octet-stream", key=f"npy_{stem}", on_click="ignore",
                              icon=":material/download:", width="stretch")


def method_settings(explainer: Explainer, chosen: list[str], cards: dict[str, MethodCard]) -> dict[str, dict]:
    """An expander with the chosen methods' parameters and their layer (multi-layer methods: their layers). Vanilla
    CAM has no layer to choose: it exists only at the layer the classifier follows."""
    settings: dict[str, dict] = {}
    tunable = [cards[i] for i in chosen if cards[i].params or "class_weights" not in cards[i].needs]
    if not tunable:
        return settings
    order = stack_choices(explainer)
    deepest_first = explainer.model.layer_choices()[::-1]
    with st.expander("Method settings", icon=":material/tune:"):
        columns = st.columns(min(3, len(tunable)))
        for position, card in enumerate(tunable):
            with columns[position % len(columns)]:
                st.markdown(f"**{card.name}**")
                values = {param.name: param_widget(card, param) for param in card.params}
                if card.multi_layer:
                    default = explainer.model.pyramid() if card.pyramid_by_default else [explainer.default_layer]
                    picked = st.multiselect("layers", order, default=default,
                                            key=f"layers_{card.id}_{explainer.name}",
                                            help="Shallow layers add detail, deep layers class evidence; "
                                            "maps are fused at the finest layer's resolution.")
                    values["layers"] = sorted(picked, key=order.index) or None
                elif "class_weights" not in card.needs:
                    values["layer"] = st.selectbox("layer", deepest_first, key=f"layer_{card.id}_{explainer.name}",
                                                   help="Deeper layers: coarser maps, more class-specific channels; "
                                                   "for methods of one pass per channel, fewer channels are faster.")
                settings[card.id] = values
    return settings


def controls(explainer: Explainer, analysis: Analysis) -> tuple[Look, int | None]:
    """The row of drawing choices, and the second class to compare with (None: none)."""
    c1, c2, c3, c4, c5 = st.columns([2, 1.3, 1.3, 1.5, 2.2])
    view = c1.radio("Show", list(VIEW_LABELS), format_func=VIEW_LABELS.get, key="compare_view")
    alpha = c2.slider("Opacity", 0.0, 1.0, 0.6, 0.05, key="compare_alpha", disabled=view == "map")
    colormap = c3.selectbox("Colour map", COLORMAPS, key="compare_colormap", disabled=view == "signed")
    sign = c4.radio("Evidence", ["positive", "negative"], key="compare_sign", disabled=view == "signed",
                    format_func={"positive": "for the class", "negative": "against the class"}.get)
    second = c5.selectbox("Compare with a second class", range(len(explainer.labels)), index=None,
                          key="compare_second", placeholder="none",
                          format_func=class_labels(explainer, analysis).__getitem__)
    return Look(view, alpha, colormap, sign), second


def slow_feedback(analysis: Analysis, card: MethodCard, slot: DeltaGenerator, progress: ProgressLine,
                  look: Look) -> dict:
    """For methods that run many model passes (masked inputs, ablations): a progress bar with a time estimate and,
    where the method can give one, the map as it sharpens. Methods that run no passes never call these."""

    def on_partial(result: CamResult) -> None:
        slot.image(look.picture(analysis, result), caption=f"{card.name} · so far ({format_seconds(result.seconds)})",
                   width="stretch")

    return {"progress": progress_callback(progress, card.name), "partial": on_partial}


def draw_grid(analysis: Analysis, targets: list[int], chosen: list[str], cards: dict[str, MethodCard],
              settings: dict[str, dict], look: Look, progress: ProgressLine) -> tuple[list, list[str]]:
    """One row of maps per class, one column per method; the pictures and their titles (for the grid download)."""
    explainer = analysis.explainer
    pictures, titles = [], []
    total = max(1, len(chosen) * len(targets))
    for row, class_index in enumerate(targets):
        st.subheader(class_label(explainer, analysis, class_index), divider="gray")
        columns = st.columns(COLUMNS)
        for position, method_id in enumerate(chosen):
            card = cards[method_id]
            with columns[position % COLUMNS], GRID_TURNS.slot():
                slot = st.empty()
                try:
                    result = analysis.cam(method_id, target=class_index,
                                          sign="positive" if not card.signed else look.sign,
                                          **settings.get(method_id, {}),
                                          **slow_feedback(analysis, card, slot, progress, look))
                except CamError as exc:
                    slot.warning(f"**{card.name}**: {exc}", icon=":material/block:")
                    continue
                picture = look.picture(analysis, result)
                title = f"{card.name} · {format_seconds(result.seconds)}"
                slot.image(picture, caption=title, width="stretch")
                if result.note:
                    st.caption(f":material/info: {result.note}")
                if look.sign == "negative" and not card.signed:
                    st.caption(":material/info: a gradient image has no map against the class; shown as it is")
                pictures.append(picture)
                titles.append(f"{card.name} · {explainer.labels[class_index]}")
                about(card, picture, result.saliency, f"{method_id}_{class_index}_{look.sign}")
            progress.update((row * len(chosen) + position + 1) / total, text=f"Computed {card.name}")
    return pictures, titles


def compare() -> None:
    """The chosen methods' maps of the user's class (and of a second class), and the whole grid to download."""
    subject = page("Compare methods", "The same image and class through many CAM methods side by side: where they "
                   "agree, the evidence is robust; where they differ, the method matters.")
    if subject is None:
        return
    explainer, analysis, target = subject
    with friendly_errors():
        cards = {card.id: card for card in methods()}
        quick = [card.id for card in cards.values() if card.cost in ("instant", "fast")]
        chosen = st.multiselect("Methods", list(cards), default=quick, key="compare_methods",
                                format_func=lambda i: cards[i].name)
        settings = method_settings(explainer, chosen, cards)
        look, second = controls(explainer, analysis)
        targets = [target] + ([second] if second is not None and second != target else [])
        progress = ProgressLine("Computing maps…")
        with progress.queue():
            pictures, titles = draw_grid(analysis, targets, chosen, cards, settings, look, progress)
        progress.empty()
        if pictures:
            st.download_button("Download the whole grid (PNG)",
                               data=lambda: png_bytes(grid(pictures, titles, columns=COLUMNS)),
                               file_name="cam_grid.png", mime="image/png", on_click="ignore",
                               icon=":material/grid_on:", key="grid_png")
        elif not chosen:
            st.info("Choose at least one method.", icon=":material/touch_app:")


compare()
