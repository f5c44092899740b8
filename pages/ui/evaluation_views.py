"""The Evaluate page's faithfulness part: which images, which methods and settings, then one image's curves, values
and pointing against the boxes drawn on it, or many images' means with 95 % intervals; the per-image rows and the
manifest of settings to download."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cam_core import Analysis, Explainer, MethodCard
from cam_core.evaluation.metrics import BASELINES
from cam_core.evaluation.scoring import PROTOCOLS, protocol
from cam_core.provenance.manifest import zip_with_manifest
from pages.ui.box_picker import box_picker, current_boxes
from pages.ui.evaluation_scores import (
    Item,
    Scored,
    Settings,
    evaluation_manifest,
    example_items,
    scored_rows,
    upload_items,
)
from pages.ui.evaluation_tables import (
    GROUPS,
    METRICS,
    colours_of,
    column_help,
    curves_figure,
    intervals_figure,
    one_image_table,
    peaks,
    pointing_words,
    summary_table,
)
from pages.ui.widgets import format_probability

SCOPES = {"image": "This image", "examples": "All bundled examples", "uploads": "Several uploaded images"}
GROUP_TITLES = {"faithfulness": "Faithfulness", "pointing": "Pointing (the images with a box for their class)",
                "sparsity": "Sparsity of the map (no better side: a sharper map is not a more faithful one)"}
BASELINE_LABELS = {"rise": "RISE's (zero / blurred)", "blur": "blurred image", "zero": "zero input"}


def remembered(key: str, default: object) -> None:
    """Seed widget key from the last value this session chose (widget state is dropped when another page runs)."""
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(f"{key}_kept", default)


def keep(key: str) -> None:
    """Widget callback: remember key's value for when this page runs again."""
    st.session_state[f"{key}_kept"] = st.session_state[key]


def choose_items(explainer: Explainer, analysis: Analysis, target: int, scope: str) -> list[Item]:
    """The images the scope names: this image with the boxes drawn on it, every example, or the uploads."""
    if scope == "image":
        return [Item(st.session_state.get("image_name", "image"), analysis, target, tuple(current_boxes(analysis)))]
    if scope == "examples":
        items = example_items(explainer)
        st.caption(f"{len(items)} bundled photos, each explained for its own top class (the sidebar's class is this "
                   f"image's only), with boxes drawn by eye for their objects ({sum(len(i.boxes) for i in items)} "
                   "boxes).")
        return items
    return upload_items(explainer)


def settings_widgets(cards: dict[str, MethodCard]) -> tuple[list[str], Settings]:
    """The methods, steps, baseline and ROAD choices."""
    chosen = st.multiselect("Methods", list(cards), key="evaluate_methods", format_func=lambda i: cards[i].name,
                            on_change=keep, args=("evaluate_methods",),
                            help="Slow methods (many model passes) show a progress bar the first time.")
    left, middle, right = st.columns([2, 2, 1.4], gap="large")
    steps = left.slider("Steps", 5, 200, key="evaluate_steps", on_change=keep, args=("evaluate_steps",),
                        help="Points on each deletion / insertion curve after the first: each costs one model pass "
                        "per curve. Few steps: the curves reach 0 within the first step and barely separate methods.")
    baseline = middle.radio("Removed pixels become", BASELINES, key="evaluate_baseline", horizontal=True,
                            format_func=BASELINE_LABELS.get, on_change=keep, args=("evaluate_baseline",),
                            help="RISE's protocol: deletion replaces pixels by the zero input, insertion adds them "
                            "to a blurred copy. Blurred: a heavily blurred copy of the image for both. Zero: the zero "
                            "model input (the dataset's mean colour) for both.")
    road = right.toggle("ROAD", key="evaluate_road", on_change=keep, args=("evaluate_road",),
                        help="Remove And Debias (Rong et al. 2022): removed pixels are filled by noisy linear "
                        "imputation from their neighbours, most (MoRF) or least (LeRF) relevant first, at 10 % … 90 % "
                        "of the pixels: 18 imputed inputs per map, a few seconds per map.")
    return chosen, Settings(steps, baseline, road)


def protocol_lines(settings: Settings) -> str:
    """The protocols behind the columns, each with its steps and baseline."""
    lines = [f"- {protocol(key, settings.steps, settings.baseline)}" for key in PROTOCOLS
             if settings.road or not key.startswith("road")]
    return "**Protocols**\n" + "\n".join(lines)


def one_image(explainer: Explainer, item: Item, rows: pd.DataFrame, entries: dict[tuple[str, str], Scored],
              chosen: list[str], cards: dict[str, MethodCard], settings: Settings) -> None:
    """One image: the curves, each method's values, and why nothing is marked best."""
    colours = colours_of(chosen)
    found = {m: entries[(item.name, m)] for m in chosen if (item.name, m) in entries}
    names = {m: cards[m].name for m in found}
    class_name = explainer.labels[item.target]
    st.plotly_chart(curves_figure({m: (e.scores.deletion, e.scores.insertion) for m, e in found.items()}, names,
                                  colours, ("Deletion: most salient pixels removed first (lower AUC is better)",
                                            "Insertion: most salient pixels added first (higher AUC is better)"),
                                  ("fraction of pixels removed", "fraction of pixels inserted"), class_name),
                    width="stretch", config={"displayModeBar": False}, key="evaluate_curves")
    if settings.road:
        road = {m: (e.scores.road_morf, e.scores.road_lerf) for m, e in found.items()
                if e.scores.road_morf is not None and e.scores.road_lerf is not None}
        st.plotly_chart(curves_figure(road, names, colours, ("ROAD MoRF: most relevant removed first (lower is "
                                                             "better)", "ROAD LeRF: least relevant removed first "
                                                             "(higher is better)"),
                                      ("fraction of pixels removed", "fraction of pixels removed"), class_name,
                                      height=340),
                        width="stretch", config={"displayModeBar": False}, key="evaluate_road_curves")
    st.dataframe(one_image_table(rows), hide_index=True, width="stretch", key="evaluate_table",
                 column_config=column_help(METRICS, settings.steps, settings.baseline))
    words = pointing_words(rows, item)
    if words:
        st.markdown(words)
    st.info(f"One image: no interval, no best. Differences between methods on one image can be noise; choose "
            f"“{SCOPES['examples']}” or upload several images for means with 95 % intervals.",
            icon=":material/info:")
    for m, entry in found.items():
        if entry.note:
            st.caption(f":material/info: {cards[m].name}: {entry.note}")


def many_images(rows: pd.DataFrame, settings: Settings) -> None:
    """Many images: each method's means with 95 % intervals, best only where they separate, and the rows."""
    for group in GROUPS:
        summary = summary_table(rows, group)
        if summary is None:
            continue
        st.markdown(f"**{GROUP_TITLES[group]}**")
        st.dataframe(summary[0], hide_index=True, width="stretch", key=f"evaluate_summary_{group}",
                     column_config=column_help(METRICS, settings.steps, settings.baseline))
        if summary[1]:
            st.markdown(summary[1])
    st.caption("Mean over the images [95 % percentile bootstrap interval of the mean, 2000 resamples]. Increase in "
               "Confidence: % of images whose map's pixels alone raise the class probability; pointing: % of images "
               "whose map peaks inside a box of the class; energy pointing: the mean share of the map inside them.")
    st.plotly_chart(intervals_figure(rows), width="stretch", config={"displayModeBar": False},
                    key="evaluate_intervals")
    with st.expander(f"Per-image rows ({len(rows)})"):
        st.dataframe(rows.style.format({"probability": format_probability}, na_rep="–"), hide_index=True,
                     width="stretch", key="evaluate_rows")


def downloads(explainer: Explainer, rows: pd.DataFrame, items: list[Item], entries: dict[tuple[str, str], Scored],
              chosen: list[str], cards: dict[str, MethodCard], settings: Settings) -> None:
    """The per-image rows as CSV in one zip with the manifest: the model, images and scored maps, with the
    settings behind the rows (its extra)."""
    stem = f"evaluation_{explainer.name}_{len(items)}images_{settings.steps}steps_{settings.baseline}"
    csv = rows.to_csv(index=False).encode()
    st.download_button("Per-image rows as CSV (zip with manifest)", file_name=f"{stem}.zip", mime="application/zip",
                       data=lambda: zip_with_manifest({f"{stem}.csv": csv},
                                                      evaluation_manifest(explainer, items, entries, chosen, cards,
                                                                          settings)),
                       on_click="ignore", icon=":material/download:", key="evaluate_csv")


def faithfulness(explainer: Explainer, analysis: Analysis, target: int, cards: dict[str, MethodCard]) -> None:
    """The images, the chosen methods' scores on them and the tables and downloads."""
    scope = st.segmented_control("Images", list(SCOPES), format_func=SCOPES.get, key="evaluate_scope",
                                 on_change=keep, args=("evaluate_scope",), required=True)
    chosen, settings = settings_widgets(cards)
    picker = st.container()
    items = choose_items(explainer, analysis, target, scope)
    if not chosen or not items:
        if scope == "image":
            with picker:
                box_picker(explainer, analysis)
        st.info("Choose at least one method." if not chosen else "Upload one or more images.",
                icon=":material/touch_app:" if not chosen else ":material/upload:")
        return
    rows, entries = scored_rows(explainer, items, chosen, cards, settings)
    if scope == "image":
        with picker:
            box_picker(explainer, analysis, peaks(items[0], chosen, cards, entries))
    if rows.empty:
        return
    if scope == "image":
        one_image(explainer, items[0], rows, entries, chosen, cards, settings)
    else:
        many_images(rows, settings)
    st.markdown(protocol_lines(settings))
    downloads(explainer, rows, items, entries, chosen, cards, settings)
