"""Faithfulness of CAM methods over a folder of images: one CSV row per (image, method), resumable, run here or as
Ray tasks with identical results, and a summary per method: each metric's mean with a bootstrap 95 % interval, and
the clear best method only where the intervals separate."""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from cam_core.engine.explainer import Explainer
from cam_core.errors import CamError, ImageError
from cam_core.evaluation.boxes import class_index, csv_rows, read_boxes
from cam_core.evaluation.intervals import Interval, bootstrap_interval, clear_best
from cam_core.evaluation.metrics import BASELINES
from cam_core.evaluation.pointing import POINTING_TOLERANCE, Box, boxes_for, check_boxes, energy_share, pointing_hit
from cam_core.evaluation.scoring import DEFAULT_BASELINE, DEFAULT_STEPS, score_map
from cam_core.evaluation.sparsity import entropy, gini
from cam_core.inputs.images import IMAGE_SUFFIXES
from cam_core.models.labels import label_set
from cam_core.models.specs import get_spec
from cam_core.registry import get_method

COLUMNS = (
    "image",
    "model",
    "method",
    "steps",
    "baseline",
    "target",
    "label",
    "probability",
    "deletion_auc",
    "insertion_auc",
    "drop_percent",
    "increase",
    "explained_probability",
    "pointing",
    "energy",
    "gini",
    "entropy",
    "road_morf_auc",
    "road_lerf_auc",
    "error",
)
# Columns added after the first layout, in order: a CSV without the last few of them is an earlier evaluation, read
# with them empty.
ADDED_COLUMNS = ("pointing", "energy", "gini", "entropy", "road_morf_auc", "road_lerf_auc")
RAY_REQUIREMENT = "ray==2.60.0"

Row = dict[str, str]
Job = tuple[str, str, list[str], int | None, tuple[Box, ...]]  # file, image name, methods, target class, boxes
Road = bool | Sequence[float]  # score_map's road: False, True (the authors' fractions) or the fractions
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Metric:
    """A summarised column: its heading, the factor its values are shown with (100: a 0/1 column as a percentage),
    which way is better ("lower", "higher", or None for a description of the map rather than a score) and the
    decimals shown."""

    column: str
    title: str
    scale: float
    better: str | None
    decimals: int


METRICS = (
    Metric("deletion_auc", "deletion AUC ↓", 1, "lower", 4),
    Metric("insertion_auc", "insertion AUC ↑", 1, "higher", 4),
    Metric("drop_percent", "Average Drop % ↓", 1, "lower", 2),
    Metric("increase", "Increase in Confidence % ↑", 100, "higher", 1),
    Metric("pointing", "pointing game % ↑", 100, "higher", 1),
    Metric("energy", "energy pointing ↑", 1, "higher", 3),
    Metric("gini", "Gini (sparseness)", 1, None, 3),
    Metric("entropy", "entropy (nats)", 1, None, 3),
    Metric("road_morf_auc", "ROAD MoRF AUC ↓", 1, "lower", 4),
    Metric("road_lerf_auc", "ROAD LeRF AUC ↑", 1, "higher", 4),
)


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The images under folder, recursively, sorted by their path relative to it."""
    root = Path(folder)
    if not root.is_dir():
        raise CamError(f"folder {root} not found")
    found = [path for path in root.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()]
    if not found:
        raise CamError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {root}")
    return sorted(found, key=lambda path: path.relative_to(root).as_posix())


def read_labels(path: str | os.PathLike, labels: Sequence[str]) -> dict[str, int]:
    """Target class by image, from a CSV with the header `file,label`: file relative to the folder, label a class
    index or an exact class name."""
    targets: dict[str, int] = {}
    for where, row in csv_rows(path, "labels file", ("file", "label")):
        if len(row) != 2:
            raise CamError(f"{where}: wants file,label, not {','.join(row)!r}")
        name, label = PurePosixPath(row[0].strip().replace("\\", "/")).as_posix(), row[1].strip()
        if name in targets:
            raise CamError(f"{where}: {name} is listed twice")
        targets[name] = class_index(label, labels, where)
    return targets


def evaluate_image(
    explainer: Explainer,
    path: str | os.PathLike,
    methods: Sequence[str],
    label: int | None,
    steps: int = DEFAULT_STEPS,
    baseline: str = DEFAULT_BASELINE,
    name: str | None = None,
    boxes: Sequence[Box] = (),
    road: Road = False,
) -> list[Row]:
    """One row per method: the map's target class (label, or the top-1 class when None), its scores, the pointing
    game (within POINTING_TOLERANCE pixels) and energy share against the boxes of that class (empty when it has
    none), the map's Gini and entropy, and with road the ROAD AUCs (score_map's road); an image that cannot be read
    gives rows with only `error` filled. name is the image column (default: the file name)."""
    image = name or Path(path).name
    try:
        analysis = explainer.analyze(path)
    except (ImageError, OSError) as exc:
        error = str(exc).replace(str(path), image)
        return [
            _row(image=image, model=explainer.name, method=method, steps=str(steps), baseline=baseline, error=error)
            for method in methods
        ]
    size = analysis.image.size
    try:
        boxes = check_boxes(boxes, *size) if boxes else []
    except CamError as exc:
        raise CamError(f"the boxes of {image}: {exc}") from None
    rows = []
    for method in methods:
        result = analysis.cam(method, target=label)
        scores = score_map(analysis, result.saliency, result.target, steps, baseline, road=road)
        own = boxes_for(boxes, result.target)
        rows.append(
            _row(
                image=image,
                model=explainer.name,
                method=method,
                steps=str(steps),
                baseline=baseline,
                target=str(result.target),
                label=result.label,
                probability=f"{result.probability:.6f}",
                deletion_auc=f"{scores.deletion.auc:.6f}",
                insertion_auc=f"{scores.insertion.auc:.6f}",
                drop_percent=f"{100 * scores.confidence.drop:.6f}",
                increase=str(int(scores.confidence.increase)),
                explained_probability=f"{scores.confidence.explained:.6f}",
                pointing=str(int(pointing_hit(result.saliency, own, size, POINTING_TOLERANCE))) if own else "",
                energy=_number(energy_share(result.saliency, own, size)) if own else "",
                gini=_number(gini(result.saliency)),
                entropy=_number(entropy(result.saliency)),
                road_morf_auc=_number(scores.road_morf.auc) if scores.road_morf else "",
                road_lerf_auc=_number(scores.road_lerf.auc) if scores.road_lerf else "",
            )
        )
    return rows


def _number(value: float) -> str:
    """A score with 6 decimals; empty when it is undefined (nan: a blank map)."""
    return "" if np.isnan(value) else f"{value:.6f}"


def _row(**values: str) -> Row:
    return {column: values.get(column, "") for column in COLUMNS}


@dataclass(frozen=True)
class MethodSummary:
    """A method's scores over the folder's images: per METRICS column, the mean and bootstrap 95 % interval of its
    values (shown scaled: the Increase in Confidence and the pointing game as percentages of images); a metric
    undefined for an image (no boxes of its class, a blank map) leaves it out of that metric's count."""

    method: str
    images: int
    errors: int
    scores: dict[str, Interval] = field(default_factory=dict)


def method_summaries(rows: Sequence[Row], methods: Sequence[str]) -> list[MethodSummary]:
    """Each method's summary from evaluation rows (one per image; rows with an error are counted apart)."""
    items = []
    for method in methods:
        found = [row for row in rows if row["method"] == method]
        scored = [row for row in found if not row["error"]]
        scores = {
            metric.column: bootstrap_interval(
                [metric.scale * float(row[metric.column]) for row in scored if row.get(metric.column)]
            )
            for metric in METRICS
        }
        items.append(MethodSummary(method, len(scored), len(found) - len(scored), scores))
    return items


def clear_bests(items: Sequence[MethodSummary]) -> dict[str, str | None]:
    """For each metric with a better direction, the method whose interval is wholly better than every other's,
    else None ("no clear difference")."""
    return {
        metric.column: clear_best({item.method: item.scores[metric.column] for item in items}, metric.better == "lower")
        for metric in METRICS
        if metric.better
    }


def interval_text(interval: Interval, decimals: int) -> str:
    """mean [low, high], or n/a without values."""
    if interval.count == 0:
        return "n/a"
    return f"{interval.mean:.{decimals}f} [{interval.low:.{decimals}f}, {interval.high:.{decimals}f}]"


@dataclass(frozen=True)
class Summary:
    """The per-method scores of a folder (all its rows in the CSV, resumed ones included) and this run's work."""

    model: str
    out: Path
    methods: list[MethodSummary]
    evaluated: int
    resumed: int
    seconds: float

    @property
    def best(self) -> dict[str, str | None]:
        """clear_bests of the methods."""
        return clear_bests(self.methods)

    def _verdict(self, metric: Metric, best: dict[str, str | None]) -> str:
        """The best column: the clear best, "no clear difference", or why there is no comparison ("not computed":
        no boxes, or no ROAD)."""
        counts = [item.scores[metric.column].count for item in self.methods]
        if not any(counts):
            return "not computed"
        if metric.better is None or len(self.methods) < 2:
            return ""
        if min(counts) < 2:
            return "too few images for an interval"
        return best[metric.column] or "no clear difference"

    def table(self) -> str:
        """One line per metric, one column per method: mean [95 % bootstrap interval] over images (with the count
        where it is not every image), then the clear best, "no clear difference", "too few images for an
        interval" (a method with fewer than 2 values) or "not computed"."""
        best = self.best
        header = ("metric", *(item.method for item in self.methods), "best")
        lines = [header, ("images", *(str(item.images) for item in self.methods), "")]
        lines.append(("errors", *(str(item.errors) for item in self.methods), ""))
        for metric in METRICS:
            cells = []
            for item in self.methods:
                interval = item.scores[metric.column]
                counted = f" (n={interval.count})" if 0 < interval.count != item.images else ""
                cells.append(interval_text(interval, metric.decimals) + counted)
            lines.append((metric.title, *cells, self._verdict(metric, best)))
        widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
        text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in lines]
        return "\n".join([f"{self.model}, {self.out}: mean [bootstrap 95 % interval] over images",
                          *(line.rstrip() for line in text)])


def evaluate_folder(
    folder: str | os.PathLike,
    model: str,
    methods: Sequence[str],
    out: str | os.PathLike,
    labels_csv: str | os.PathLike | None = None,
    steps: int = DEFAULT_STEPS,
    baseline: str = DEFAULT_BASELINE,
    use_ray: bool = False,
    address: str | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
    boxes_csv: str | os.PathLike | None = None,
    road: Road = False,
) -> Summary:
    """Score every method on every image of folder into the CSV out, skipping the (image, method) pairs it already
    holds for model, steps and baseline; here, or as one Ray task per image when use_ray, address or $RAY_ADDRESS
    is given (same rows either way). boxes_csv (read_boxes) gives the boxes for the pointing columns; with road, the
    ROAD columns are filled too, and a pair whose row has none is computed again (its newest row counts).
    progress(done, total, image) is called after each image."""
    started = time.perf_counter()
    methods = list(dict.fromkeys(methods))
    if not methods:
        raise CamError("give at least one method")
    for method in methods:
        get_method(method)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 1000:
        raise CamError(f"steps must be a whole number from 1 to 1000, not {steps!r}")
    if baseline not in BASELINES:
        raise CamError(f"baseline must be one of {', '.join(BASELINES)}, not {baseline!r}")
    threads = torch.get_num_threads() if threads is None else threads
    if threads < 1:
        raise CamError(f"threads must be at least 1, not {threads}")
    spec = get_spec(model)
    root = Path(folder)
    names = {path.relative_to(root).as_posix(): path for path in image_files(root)}
    labels = read_labels(labels_csv, label_set(spec.labels)) if labels_csv else {}
    boxes = read_boxes(boxes_csv, label_set(spec.labels)) if boxes_csv else {}
    for what, source, listed in (("labels", labels_csv, labels), ("boxes", boxes_csv, boxes)):
        strangers = sorted(set(listed) - set(names))
        if strangers:
            raise CamError(f"{what} file {source} names {strangers[0]}, which is not an image in {root}")
    out = Path(out)
    setting = (model, str(steps), baseline)
    done = {
        (row["image"], row["method"])
        for row in _read_rows(out)
        if _setting(row) == setting and (not road or row["road_morf_auc"] or row["error"])
    }
    jobs = [
        (str(path), name, missing, labels.get(name), tuple(boxes.get(name, ())))
        for name, path in names.items()
        if (missing := [method for method in methods if (name, method) not in done])
    ]
    if jobs:
        _upgrade(out)
    on_ray = use_ray or address is not None or "RAY_ADDRESS" in os.environ
    results = (
        _on_ray(model, jobs, steps, baseline, threads, address, road)
        if on_ray
        else _here(model, jobs, steps, baseline, threads, road)
    )
    with out.open("a", newline="", encoding="utf-8") as handle:
        if handle.tell() == 0:
            handle.write(_csv_text([{column: column for column in COLUMNS}]))
        for count, rows in enumerate(results, start=1):
            handle.write(_csv_text(rows))
            handle.flush()
            if progress:
                progress(count, len(jobs), jobs[count - 1][1])
    return _summary(setting, methods, list(names), out, len(jobs), time.perf_counter() - started)


def _setting(row: Row) -> tuple[str, str, str]:
    return row["model"], row["steps"], row["baseline"]


def _csv_text(rows: list[Row]) -> str:
    text = io.StringIO()
    csv.DictWriter(text, COLUMNS, lineterminator="\n").writerows(rows)
    return text.getvalue()


def _read_rows(out: Path) -> list[Row]:
    """The rows out already holds (none if it is missing); a last line cut short by an interruption is removed."""
    if not out.exists():
        return []
    with out.open("rb+") as handle:
        content = handle.read()
        if content and not content.endswith(b"\n"):
            handle.truncate(content.rfind(b"\n") + 1)
    if out.stat().st_size == 0:
        return []
    with out.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        found = tuple(reader.fieldnames or ())
        if found not in _LAYOUTS:
            raise CamError(
                f"{out} has the columns {','.join(found)}, not an evaluation's ({','.join(COLUMNS)}); choose another "
                "output file"
            )
        return [{column: row.get(column) or "" for column in COLUMNS} for row in reader]


# The headers of this evaluation and of the earlier ones, which lack some of ADDED_COLUMNS.
_LAYOUTS = {
    tuple(column for column in COLUMNS if column not in ADDED_COLUMNS[index:]) for index in range(len(ADDED_COLUMNS))
} | {COLUMNS}


def _upgrade(out: Path) -> None:
    """An earlier evaluation's CSV rewritten with today's columns (its rows' new cells empty), so that new rows can
    be appended to it."""
    rows = _read_rows(out)
    if not rows or out.read_text(encoding="utf-8").split("\n", 1)[0] == ",".join(COLUMNS):
        return
    staged = out.with_name(out.name + ".upgrading")
    staged.write_text(_csv_text([{column: column for column in COLUMNS}, *rows]), encoding="utf-8")
    os.replace(staged, out)


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op threads set to count: the same count gives bit-identical results here and on Ray."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _here(model: str, jobs: list[Job], steps: int, baseline: str, threads: int, road: Road) -> Iterator[list[Row]]:
    """The rows of each job, in order, computed in this process."""
    if not jobs:
        return
    explainer = Explainer(model, cache_bytes=0)
    for path, name, methods, label, boxes in jobs:
        with _torch_threads(threads):
            rows = evaluate_image(explainer, path, methods, label, steps, baseline, name, boxes, road)
        yield rows


_WORKER_EXPLAINERS: dict[str, Explainer] = {}


def _ray_task(
    model: str,
    path: str,
    name: str,
    methods: list[str],
    label: int | None,
    boxes: tuple[Box, ...],
    steps: int,
    baseline: str,
    threads: int,
    road: Road,
) -> list[Row]:
    """evaluate_image in a Ray worker, which loads each model once and keeps it for its later tasks."""
    if model not in _WORKER_EXPLAINERS:
        _WORKER_EXPLAINERS[model] = Explainer(model, cache_bytes=0)
    with _torch_threads(threads):
        return evaluate_image(_WORKER_EXPLAINERS[model], path, methods, label, steps, baseline, name, boxes, road)


def _on_ray(
    model: str, jobs: list[Job], steps: int, baseline: str, threads: int, address: str | None, road: Road
) -> Iterator[list[Row]]:
    """The rows of each job, in order, from Ray tasks submitted at once (a new local Ray unless address or
    $RAY_ADDRESS names a cluster, whose nodes must see the folder at the same path)."""
    if not jobs:
        return
    try:
        import ray
    except ImportError:
        raise CamError(f"--ray needs Ray: pip install {RAY_REQUIREMENT}") from None
    started_here = not ray.is_initialized()
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            ignore_reinit_error=True,
            logging_level=logging.WARNING,
        )
    except ConnectionError as exc:
        hint = "" if "RAY_AUTH_MODE" in os.environ else "; a cluster with token auth needs RAY_AUTH_MODE=token"
        raise CamError(f"cannot reach Ray at {address}: {exc}{hint}") from exc
    try:
        largest = max(node["Resources"].get("CPU", 0) for node in ray.nodes() if node["Alive"])
        if threads > largest:
            raise CamError(f"{threads} threads per task, but no Ray node has more than {largest:g} CPUs")
        task = ray.remote(num_cpus=threads)(_ray_task)
        futures = [
            task.remote(model, path, name, methods, label, boxes, steps, baseline, threads, road)
            for path, name, methods, label, boxes in jobs
        ]
        for future in futures:
            try:
                yield ray.get(future)
            except ray.exceptions.RayTaskError as exc:
                if isinstance(exc.cause, CamError):
                    raise exc.cause from None
                raise
    finally:
        if started_here:
            ray.shutdown()


def _summary(
    setting: tuple[str, str, str], methods: list[str], images: list[str], out: Path, evaluated: int, seconds: float
) -> Summary:
    wanted = set(images)
    rows = {
        (row["image"], row["method"]): row
        for row in _read_rows(out)
        if _setting(row) == setting and row["image"] in wanted
    }
    items = method_summaries(list(rows.values()), methods)
    return Summary(setting[0], out, items, evaluated, len(images) - evaluated, seconds)
