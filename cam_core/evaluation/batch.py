"""Faithfulness of CAM methods over a folder of images: one CSV row per (image, method), resumable, run here or as
Ray tasks with identical results, and a summary per method like the papers' tables."""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from cam_core.engine.explainer import Explainer
from cam_core.errors import CamError, ImageError
from cam_core.evaluation.metrics import BASELINES
from cam_core.evaluation.scoring import DEFAULT_BASELINE, DEFAULT_STEPS, score_map
from cam_core.models.labels import label_set
from cam_core.models.specs import get_spec
from cam_core.registry import get_method

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
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
    "error",
)
METRICS = ("deletion_auc", "insertion_auc", "drop_percent", "increase")
RAY_REQUIREMENT = "ray==2.60.0"

Row = dict[str, str]
Job = tuple[str, str, list[str], int | None]  # file, image name, methods, target class
Progress = Callable[[int, int, str], None]
Stat = tuple[float, float]


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
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CamError(f"labels file {source} is not UTF-8 text") from exc
    reader = csv.reader(io.StringIO(text))
    header = [cell.strip() for cell in next(reader, [])]
    if header != ["file", "label"]:
        raise CamError(f"labels file {source} must start with the header file,label, not {','.join(header)!r}")
    classes = {label: index for index, label in enumerate(labels)}
    targets: dict[str, int] = {}
    for row in reader:
        where = f"labels file {source} line {reader.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise CamError(f"{where}: wants file,label, not {','.join(row)!r}")
        name, label = PurePosixPath(row[0].strip().replace("\\", "/")).as_posix(), row[1].strip()
        if name in targets:
            raise CamError(f"{where}: {name} is listed twice")
        if label.isdigit() and int(label) < len(labels):
            targets[name] = int(label)
        elif label in classes:
            targets[name] = classes[label]
        else:
            raise CamError(f"{where}: no class {label!r} (a class index 0..{len(labels) - 1} or an exact class name)")
    return targets


def evaluate_image(
    explainer: Explainer,
    path: str | os.PathLike,
    methods: Sequence[str],
    label: int | None,
    steps: int = DEFAULT_STEPS,
    baseline: str = DEFAULT_BASELINE,
    name: str | None = None,
) -> list[Row]:
    """One row per method: the map's target class (label, or the top-1 class when None) and its scores; an image
    that cannot be read gives rows with only `error` filled. name is the image column (default: the file name)."""
    image = name or Path(path).name
    try:
        analysis = explainer.analyze(path)
    except (ImageError, OSError) as exc:
        error = str(exc).replace(str(path), image)
        return [
            _row(image=image, model=explainer.name, method=method, steps=str(steps), baseline=baseline, error=error)
            for method in methods
        ]
    rows = []
    for method in methods:
        result = analysis.cam(method, target=label)
        scores = score_map(analysis, result.saliency, result.target, steps, baseline)
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
            )
        )
    return rows


def _row(**values: str) -> Row:
    return {column: values.get(column, "") for column in COLUMNS}


@dataclass(frozen=True)
class MethodSummary:
    """A method's scores over the folder's images: (mean, std) of each metric, the Increase in Confidence as the
    percentage of images whose map's pixels alone raise the confidence."""

    method: str
    images: int
    errors: int
    deletion_auc: Stat
    insertion_auc: Stat
    average_drop: Stat
    increase_percent: Stat


@dataclass(frozen=True)
class Summary:
    """The per-method scores of a folder (all its rows in the CSV, resumed ones included) and this run's work."""

    model: str
    out: Path
    methods: list[MethodSummary]
    evaluated: int
    resumed: int
    seconds: float

    def table(self) -> str:
        """The scores as a text table, mean ± std (population std over images)."""
        header = (
            "method",
            "images",
            "errors",
            "deletion AUC ↓",
            "insertion AUC ↑",
            "Average Drop % ↓",
            "Increase in Confidence % ↑",
        )
        lines = [header] + [
            (
                item.method,
                str(item.images),
                str(item.errors),
                _pm(item.deletion_auc, 4),
                _pm(item.insertion_auc, 4),
                _pm(item.average_drop, 2),
                _pm(item.increase_percent, 2),
            )
            for item in self.methods
        ]
        widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
        text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in lines]
        return "\n".join([f"{self.model}, {self.out}", *(line.rstrip() for line in text)])


def _pm(stat: Stat, decimals: int) -> str:
    mean, std = stat
    return "n/a" if np.isnan(mean) else f"{mean:.{decimals}f} ± {std:.{decimals}f}"


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
) -> Summary:
    """Score every method on every image of folder into the CSV out, skipping the (image, method) pairs it already
    holds for model, steps and baseline; here, or as one Ray task per image when use_ray, address or $RAY_ADDRESS
    is given (same rows either way). progress(done, total, image) is called after each image."""
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
    strangers = sorted(set(labels) - set(names))
    if strangers:
        raise CamError(f"labels file {labels_csv} names {strangers[0]}, which is not an image in {root}")
    out = Path(out)
    setting = (model, str(steps), baseline)
    done = {(row["image"], row["method"]) for row in _read_rows(out) if _setting(row) == setting}
    jobs = [
        (str(path), name, missing, labels.get(name))
        for name, path in names.items()
        if (missing := [method for method in methods if (name, method) not in done])
    ]
    on_ray = use_ray or address is not None or "RAY_ADDRESS" in os.environ
    results = (
        _on_ray(model, jobs, steps, baseline, threads, address)
        if on_ray
        else _here(model, jobs, steps, baseline, threads)
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
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise CamError(
                f"{out} has the columns {','.join(reader.fieldnames or ())}, not an evaluation's "
                f"({','.join(COLUMNS)}); choose another output file"
            )
        return list(reader)


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op threads set to count: the same count gives bit-identical results here and on Ray."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _here(model: str, jobs: list[Job], steps: int, baseline: str, threads: int) -> Iterator[list[Row]]:
    """The rows of each job, in order, computed in this process."""
    if not jobs:
        return
    explainer = Explainer(model, cache_bytes=0)
    for path, name, methods, label in jobs:
        with _torch_threads(threads):
            rows = evaluate_image(explainer, path, methods, label, steps, baseline, name)
        yield rows


_WORKER_EXPLAINERS: dict[str, Explainer] = {}


def _ray_task(
    model: str, path: str, name: str, methods: list[str], label: int | None, steps: int, baseline: str, threads: int
) -> list[Row]:
    """evaluate_image in a Ray worker, which loads each model once and keeps it for its later tasks."""
    if model not in _WORKER_EXPLAINERS:
        _WORKER_EXPLAINERS[model] = Explainer(model, cache_bytes=0)
    with _torch_threads(threads):
        return evaluate_image(_WORKER_EXPLAINERS[model], path, methods, label, steps, baseline, name)


def _on_ray(
    model: str, jobs: list[Job], steps: int, baseline: str, threads: int, address: str | None
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
            task.remote(model, path, name, methods, label, steps, baseline, threads)
            for path, name, methods, label in jobs
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
    items = []
    for method in methods:
        found = [row for (_, key), row in rows.items() if key == method]
        scored = [row for row in found if not row["error"]]
        values = {metric: np.array([float(row[metric]) for row in scored]) for metric in METRICS}
        items.append(
            MethodSummary(
                method=method,
                images=len(scored),
                errors=len(found) - len(scored),
                deletion_auc=_stat(values["deletion_auc"]),
                insertion_auc=_stat(values["insertion_auc"]),
                average_drop=_stat(values["drop_percent"]),
                increase_percent=_stat(100 * values["increase"]),
            )
        )
    return Summary(setting[0], out, items, evaluated, len(images) - evaluated, seconds)


def _stat(values: np.ndarray) -> Stat:
    return (float(np.mean(values)), float(np.std(values))) if values.size else (float("nan"), float("nan"))
