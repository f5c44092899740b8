"""Compare page: one image and class through many CAM methods, side by side."""

from __future__ import annotations

import time

import streamlit as st

from cam_core import CamError, methods
from cam_core.render.pictures import COLORMAPS, grid, npy_bytes, png_bytes, result_picture
from pages import (
    GRID_TURNS,
    ProgressLine,
    class_label,
    class_labels,
    current_analysis,
    current_explainer,
    current_target,
    friendly_errors,
    page_setup,
    param_range,
    param_widget,
    stack_choices,
)

COLUMNS = 4
VIEW_LABELS = {"overlay": "Overlay on the image", "map": "Map only", "signed": "Signed map (red for, blue against)"}


def method_card(card, picture, saliency, stem: str) -> None:
    """The teaching card of a method and its downloads, in a popover under its map."""
    with st.popover("About · download", icon=":material/school:", width="stretch"):
        st.markdown(f"**{card.name}** · {card.family} · cost: {card.cost}")
        st.markdown(card.explanation)
        st.latex(card.formula)
        if card.strengths:
            st.markdown("**Strengths:** " + "; ".join(card.strengths))
        if card.weaknesses:
            st.markdown("**Weaknesses:** " + "; ".join(card.weaknesses))
        if card.params:
            st.markdown("**Parameters:** " + "; ".join(f"`{p.name}` ({param_range(p)}): {p.help}" for p in card.params))
        st.caption(card.paper)
        left, right = st.columns(2)
        left.download_button("Map as PNG", data=lambda: png_bytes(picture), file_name=f"{stem}.png", mime="image/png",
                             key=f"png_{stem}", on_click="ignore", icon=":material/download:", width="stretch")
        right.download_button("Map as NPY", data=lambda: npy_bytes(saliency), file_name=f"{stem}.npy",
                              mime="application/octet-stream", key=f"npy_{stem}", on_click="ignore",
                              icon=":material/download:", width="stretch")


def method_settings(chosen: list[str], cards: dict) -> dict[str, dict]:
    """An expander with the chosen methods' parameters and, for multi-layer methods, their layers."""
    settings: dict[str, dict] = {}
    tunable = [cards[i] for i in chosen if cards[i].params or cards[i].multi_layer]
    if not tunable:
        return settings
    explainer_ = current_explainer()
    order = stack_choices(explainer_)
    with st.expander("Method settings", icon=":material/tune:"):
        columns = st.columns(min(3, len(tunable)))
        for position, card in enumerate(tunable):
            with columns[position % len(columns)]:
                st.markdown(f"**{card.name}**")
                values = {param.name: param_widget(card, param) for param in card.params}
                if card.multi_layer:
                    default = explainer_.model.pyramid() if card.pyramid_by_default else [explainer_.default_layer]
                    picked = st.multiselect("layers", order, default=default,
                                            key=f"layers_{card.id}_{explainer_.name}",
                                            help="Shallow layers add detail, deep layers class evidence; "
                                            "maps are fused at the finest layer's resolution.")
                    values["layers"] = sorted(picked, key=order.index) or None
                settings[card.id] = values
    return settings


def format_seconds(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def slow_feedback(analysis, card, slot, progress: ProgressLine, view: str, alpha: float, colormap: str) -> dict:
    """For methods that run many model passes (masked inputs, ablations): a progress bar with a time estimate and,
    where the method can give one, the map as it sharpens. Methods that run no passes never call these."""
    started = time.perf_counter()

    def on_progress(done: int, total: int) -> None:
        elapsed = time.perf_counter() - started
        left = elapsed / max(done, 1) * (total - done)
        progress.update(done / max(total, 1), text=f"{card.name}: {done} of {total} model passes · about "
                        f"{left:.0f} s left")

    def on_partial(result) -> None:
        picture = result_picture(analysis.image, result.saliency, result.raw, view, alpha, colormap, result.rgb)
        slot.image(picture, caption=f"{card.name} · so far ({format_seconds(result.seconds)})", width="stretch")

    return {"progress": on_progress, "partial": on_partial}


def draw_grid(analysis, targets: list[int], chosen: list[str], cards: dict, settings: dict, view: str, alpha: float,
              colormap: str, sign: str, progress: ProgressLine) -> tuple[list, list[str]]:
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
                    result = analysis.cam(method_id, target=class_index, sign="positive" if not card.signed else sign,
                                          **settings.get(method_id, {}),
                                          **slow_feedback(analysis, card, slot, progress, view, alpha, colormap))
                except CamError as exc:
                    slot.warning(f"**{card.name}**: {exc}", icon=":material/block:")
                    continue
                picture = result_picture(analysis.image, result.saliency, result.raw, view, alpha, colormap,
                                         result.rgb)
                title = f"{card.name} · {format_seconds(result.seconds)}"
                slot.image(picture, caption=title, width="stretch")
                if result.note:
                    st.caption(f":material/info: {result.note}")
                if sign == "negative" and not card.signed:
                    st.caption(":material/info: a gradient image has no map against the class; shown as it is")
                pictures.append(picture)
                titles.append(f"{card.name} · {explainer.labels[class_index]}")
                method_card(card, picture, result.saliency, f"{method_id}_{class_index}_{sign}")
            progress.update((row * len(chosen) + position + 1) / total, text=f"Computed {card.name}")
    return pictures, titles


page_setup("Compare methods", "The same image and class through many CAM methods side by side: where they agree, "
            "the evidence is robust; where they differ, the method matters.")
with friendly_errors():
    explainer = current_explainer()
    analysis = current_analysis()
    target = current_target(analysis)
    cards = {card.id: card for card in methods()}
    quick = [card.id for card in cards.values() if card.cost in ("instant", "fast")]
    chosen = st.multiselect("Methods", list(cards), default=quick, key="compare_methods",
                            format_func=lambda i: cards[i].name)
    settings = method_settings(chosen, cards)
    c1, c2, c3, c4, c5 = st.columns([2, 1.3, 1.3, 1.5, 2.2])
    view = c1.radio("Show", list(VIEW_LABELS), format_func=VIEW_LABELS.get, key="compare_view")
    alpha = c2.slider("Opacity", 0.0, 1.0, 0.6, 0.05, key="compare_alpha", disabled=view == "map")
    colormap = c3.selectbox("Colour map", COLORMAPS, key="compare_colormap", disabled=view == "signed")
    sign = c4.radio("Evidence", ["positive", "negative"], key="compare_sign", disabled=view == "signed",
                    format_func={"positive": "for the class", "negative": "against the class"}.get)
    second = c5.selectbox("Compare with a second class", range(len(explainer.labels)), index=None,
                          key="compare_second", placeholder="none",
                          format_func=class_labels(explainer, analysis).__getitem__)
    targets = [target] + ([second] if second is not None and second != target else [])
    progress = ProgressLine("Computing maps…")
    with progress.queue():
        pictures, titles = draw_grid(analysis, targets, chosen, cards, settings, view, alpha, colormap, sign, progress)
    progress.empty()
    if pictures:
        st.download_button("Download the whole grid (PNG)",
                           data=lambda: png_bytes(grid(pictures, titles, columns=COLUMNS)),
                           file_name="cam_grid.png", mime="image/png", on_click="ignore",
                           icon=":material/grid_on:", key="grid_png")
    elif not chosen:
        st.info("Choose at least one method.", icon=":material/touch_app:")
