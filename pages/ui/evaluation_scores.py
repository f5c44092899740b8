"""The Evaluate page's scores: the images to score (this one with the boxes drawn on it, every bundled example, or
uploads with an optional boxes CSV), each (image, method)'s map scored once for every session, its per-image row,
and the manifest of the settings behind the rows."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import streamlit as st
import torch
from PIL import Image

from cam_core import Analysis, CamError, CamResult, Explainer, MethodCard
from cam_core.evaluation.boxes import example_boxes, read_boxes
from cam_core.evaluation.pointing import (
    POINTING_TOLERANCE,
    Box,
    boxes_for,
    check_boxes,
    energy_share,
    pointing_hit,
)
from cam_core.evaluation.scoring import PROTOCOLS, MapScores, protocol, score_map
from cam_core.evaluation.sparsity import entropy, gini
from cam_core.inputs.examples import examples, load_example
from cam_core.inputs.images import load_image
from cam_core.provenance.manifest import manifest
from pages.ui.resources import result_store
from pages.ui.state import IMAGE_UPLOAD_MB, UPLOAD_TYPES
from pages.ui.widgets import ProgressLine, progress_callback

KEPT_SCORES = 64 * 2**20
WORKERS = max(1, min(2, os.cpu_count() or 1))
CONFIDENCE = 0.95


class Item(NamedTuple):
    """One image to score: its name, its analysis, the class explained and the boxes of its objects."""

    name: str
    analysis: Analysis
    target: int
    boxes: tuple[Box, ...]


class Scored(NamedTuple):
    """A method's map time and note with its faithfulness scores and its map's sparsity."""

    seconds: float
    note: str
    scores: MapScores
    gini: float
    entropy: float

    @property
    def nbytes(self) -> int:
        return self.scores.nbytes + len(self.note)


class Settings(NamedTuple):
    """What the scores depend on besides the image, the class and the method."""

    steps: int
    baseline: str
    road: bool


def score_key(explainer: Explainer, item: Item, method_id: str, settings: Settings) -> tuple:
    """Where a map's scores are kept for every session: model, image, class, method and settings."""
    return (explainer.name, item.analysis.key, item.target, method_id, *settings)


def score_worker_setup(threads: int) -> None:
    """A scoring thread runs torch with as many intra-op threads as the page's own (one in the dashboard)."""
    torch.set_num_threads(threads)


def compute_scores(explainer: Explainer, cards: dict[str, MethodCard], jobs: list[tuple[Item, str]],
                   settings: Settings) -> None:
    """The maps of the (image, method) jobs, then their scores, kept for every session, under one progress bar. A
    method that cannot run on an image is a warning."""
    progress = ProgressLine("Scoring the maps…")
    try:
        maps = compute_maps(cards, jobs, progress)
        score_maps(explainer, cards, maps, settings, progress)
    finally:
        progress.empty()


def compute_maps(cards: dict[str, MethodCard], jobs: list[tuple[Item, str]],
                 progress: ProgressLine) -> list[tuple[Item, str, CamResult]]:
    """Each job's map, one after another; the slow ones report their model passes (first half of the bar)."""
    units = 2 * len(jobs)
    maps = []
    for position, (item, method_id) in enumerate(jobs):
        card = cards[method_id]
        on_progress = progress_callback(progress, f"{card.name} on {item.name}", "model passes for the map",
                                        start=position / units, share=1 / units)
        progress.update(position / units, f"{card.name} on {item.name}: computing the map…")
        try:
            maps.append((item, method_id, item.analysis.cam(method_id, target=item.target, progress=on_progress)))
        except CamError as exc:
            st.warning(f"**{card.name}** on {item.name}: {exc}", icon=":material/block:")
    return maps


def score_maps(explainer: Explainer, cards: dict[str, MethodCard], maps: list[tuple[Item, str, CamResult]],
               settings: Settings, progress: ProgressLine) -> None:
    """The maps' curves and confidence change on WORKERS threads of the model's private inference copy (second half
    of the bar)."""
    store = result_store("scores", KEPT_SCORES)
    progress.update(0.5, "Deletion and insertion curves…")
    with ThreadPoolExecutor(WORKERS, initializer=score_worker_setup, initargs=(torch.get_num_threads(),)) as pool:
        futures = {
            pool.submit(score_map, item.analysis, result.saliency, item.target, steps=settings.steps,
                        baseline=settings.baseline, road=settings.road): (item, method_id, result)
            for item, method_id, result in maps
        }
        for done, future in enumerate(as_completed(futures), start=1):
            item, method_id, result = futures[future]
            try:
                scores = future.result()
            except CamError as exc:
                st.warning(f"**{cards[method_id].name}** on {item.name}: {exc}", icon=":material/block:")
                continue
            store.put(score_key(explainer, item, method_id, settings),
                      Scored(result.seconds, result.note, scores, gini(result.saliency), entropy(result.saliency)))
            progress.update(0.5 + 0.5 * done / len(maps), f"Scored {done} of {len(maps)} maps")


def image_row(explainer: Explainer, item: Item, card: MethodCard, entry: Scored) -> dict[str, object]:
    """One image's scores for one method, as a CSV row (pointing against the boxes of the explained class; blank
    without one)."""
    scores, boxes = entry.scores, boxes_for(item.boxes, item.target)
    hit = share = math.nan
    if boxes:
        saliency = item.analysis.cam(card.id, target=item.target).saliency
        hit = 100.0 * pointing_hit(saliency, boxes, tolerance=POINTING_TOLERANCE)
        share = 100.0 * energy_share(saliency, boxes)
    road = {"road_morf_auc": math.nan, "road_lerf_auc": math.nan}
    if scores.road_morf is not None and scores.road_lerf is not None:
        road = {"road_morf_auc": scores.road_morf.auc, "road_lerf_auc": scores.road_lerf.auc}
    return {
        "image": item.name,
        "class": item.target,
        "label": explainer.labels[item.target],
        "probability": float(item.analysis.probabilities[item.target]),
        "method": card.name,
        "deletion_auc": scores.deletion.auc,
        "insertion_auc": scores.insertion.auc,
        "average_drop_percent": 100.0 * scores.confidence.drop,
        "increase_in_confidence_percent": 100.0 * scores.confidence.increase,
        "pointing_percent": hit,
        "energy_pointing_percent": share,
        **road,
        "gini": entry.gini,
        "entropy": entry.entropy,
        "boxes": len(boxes),
        "map_ms": 1000.0 * entry.seconds,
        "metric_s": scores.seconds,
    }


def scored_rows(explainer: Explainer, items: list[Item], chosen: list[str], cards: dict[str, MethodCard],
                settings: Settings) -> tuple[pd.DataFrame, dict[tuple[str, str], Scored]]:
    """Every (image, method)'s row, computing what no session has yet; also the entries by (image, method)."""
    store = result_store("scores", KEPT_SCORES)
    jobs = [(item, m) for item in items for m in chosen if store.get(score_key(explainer, item, m, settings)) is None]
    if jobs:
        compute_scores(explainer, cards, jobs, settings)
    entries = {(item.name, m): entry for item in items for m in chosen
               if (entry := store.get(score_key(explainer, item, m, settings))) is not None}
    by_name = {item.name: item for item in items}
    rows = [image_row(explainer, by_name[name], cards[m], entry) for (name, m), entry in entries.items()]
    return pd.DataFrame(rows), entries


@st.cache_resource(show_spinner=False, max_entries=16)
def example_image(name: str) -> Image.Image:
    """A bundled example photo, decoded once per server."""
    return load_example(name)


def example_items(explainer: Explainer) -> list[Item]:
    """Every bundled example, explained for its top class, with the boxes drawn by eye for it."""
    items = []
    for name in examples():
        analysis = explainer.analyze(example_image(name))
        items.append(Item(name, analysis, analysis.top_k(1)[0][0], tuple(example_boxes(name))))
    return items


def upload_boxes(explainer: Explainer) -> dict[str, list[Box]]:
    """The boxes of an uploaded boxes CSV (file,label,x0,y0,x1,y1), by file name (none without one)."""
    upload = st.session_state.get("evaluate_boxes_csv")
    if upload is None:
        return {}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(upload.name).name
        path.write_bytes(upload.getvalue())
        return read_boxes(path, explainer.labels)


def upload_items(explainer: Explainer) -> list[Item]:
    """The uploaded images, each explained for its top class with its boxes from the boxes CSV; a file that is not
    an image is a warning."""
    left, right = st.columns([3, 2], gap="large")
    uploads = left.file_uploader("Images", type=UPLOAD_TYPES, accept_multiple_files=True, key="evaluate_uploads",
                              max_upload_size=IMAGE_UPLOAD_MB)
    right.file_uploader("Boxes (optional CSV: file,label,x0,y0,x1,y1)", type=["csv"], key="evaluate_boxes_csv",
                        help="One row per box, in the image's pixels; label: a class index or exact class name, "
                        "empty for any class. Without boxes the pointing columns stay empty.")
    boxes = upload_boxes(explainer)
    items = []
    for upload in uploads or []:
        try:
            image = load_image(upload.getvalue())
            found = check_boxes(boxes[upload.name], image.width, image.height) if boxes.get(upload.name) else []
        except CamError as exc:
            st.warning(f"{upload.name}: {exc}", icon=":material/block:")
            continue
        analysis = explainer.analyze(image)
        items.append(Item(upload.name, analysis, analysis.top_k(1)[0][0], tuple(found)))
    strangers = sorted(set(boxes) - {upload.name for upload in uploads or []})
    if strangers:
        st.caption(f"The boxes CSV also names {', '.join(strangers)}, not among the uploads.")
    return items


def evaluation_manifest(explainer: Explainer, items: Sequence[Item], entries: Mapping[tuple[str, str], Scored],
                        chosen: Sequence[str], cards: dict[str, MethodCard], settings: Settings) -> dict[str, object]:
    """The manifest of the per-image rows: the model, each image, each scored map (taken from the images'
    analyses) and, in its extra, the settings (settings_record)."""
    scored = [(position, item, m) for position, item in enumerate(items) for m in chosen if (item.name, m) in entries]
    maps = [item.analysis.cam(m, target=item.target) for _, item, m in scored]
    return manifest(explainer, "evaluation", [item.analysis.image for item in items], maps,
                    names=[item.name for item in items], image_of=[position for position, _, _ in scored],
                    settings=settings_record(explainer, items, chosen, cards, settings))


def settings_record(explainer: Explainer, items: Sequence[Item], chosen: Sequence[str], cards: dict[str, MethodCard],
                    settings: Settings) -> dict[str, object]:
    """The settings behind the per-image rows: model, weights, layer, steps, baseline, methods and their
    parameters, the images with their classes and boxes, the interval, the library version and the date."""
    try:
        library = version("cam-explorer")
    except PackageNotFoundError:
        library = "unknown"
    return {
        "model": explainer.name,
        "weights": explainer.model.weights_source,
        "layer": explainer.default_layer,
        "steps": settings.steps,
        "baseline": settings.baseline,
        "road": settings.road,
        "protocols": {key: protocol(key, settings.steps, settings.baseline) for key in PROTOCOLS
                      if settings.road or not key.startswith("road")},
        "methods": {i: {"name": cards[i].name, "parameters": {p.name: p.default for p in cards[i].params}}
                    for i in chosen},
        "images": [{"image": item.name, "class": item.target, "label": explainer.labels[item.target],
                    "boxes": [[b.x0, b.y0, b.x1, b.y1, b.label] for b in item.boxes]} for item in items],
        "interval": f"percentile bootstrap of the mean over images, {CONFIDENCE:.0%}, 2000 resamples, seed 0",
        "cam_core_version": library,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
