"""Object boxes from CSV files: a folder's (`file,label,x0,y0,x1,y1`) and the boxes drawn by eye for the bundled
example photos (`example_boxes.csv`, packaged with cam_core)."""

from __future__ import annotations

import csv
import functools
import io
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

from cam_core.errors import CamError
from cam_core.evaluation.pointing import Box
from cam_core.models.labels import label_set

EXAMPLE_BOXES = Path(__file__).with_name("example_boxes.csv")
CORNERS = ("x0", "y0", "x1", "y1")


def class_index(text: str, labels: Sequence[str], where: str) -> int:
    """The class index text names: an index 0..len(labels) - 1 or an exact class name; CamError naming where."""
    if text.isdigit() and int(text) < len(labels):
        return int(text)
    if text in labels:
        return list(labels).index(text)
    raise CamError(f"{where}: no class {text!r} (a class index 0..{len(labels) - 1} or an exact class name)")


def csv_rows(path: str | os.PathLike, what: str, header: Sequence[str]) -> Iterator[tuple[str, list[str]]]:
    """The rows of a CSV that must start with header, each with where it is ("<what> <path> line <n>"); blank rows
    are skipped. CamError naming what the file is when it is not UTF-8 or its header differs."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CamError(f"{what} {source} is not UTF-8 text") from exc
    reader = csv.reader(io.StringIO(text))
    found = [cell.strip() for cell in next(reader, [])]
    if found != list(header):
        raise CamError(f"{what} {source} must start with the header {','.join(header)}, not {','.join(found)!r}")
    for row in reader:
        if any(cell.strip() for cell in row):
            yield f"{what} {source} line {reader.line_num}", row


def read_boxes(path: str | os.PathLike, labels: Sequence[str]) -> dict[str, list[Box]]:
    """Boxes by image, from a CSV with the header `file,label,x0,y0,x1,y1`: file relative to the folder, label a
    class index or an exact class name (empty: any class), corners in the image's pixels (x to the right, y down).
    An image may have several rows; CamError with the file and line for a bad row."""
    return _read(path, "boxes file", "file", labels)


def example_boxes(name: str) -> list[Box]:
    """The boxes drawn by eye for the bundled example photo name, in the pixels of load_example(name) (may be []).
    One box per main object, labelled with the ImageNet class mobilenet_v2 finds most probable for that object
    (e.g. dog: the dog 'Eskimo dog', the bicycle 'bicycle-built-for-two', the truck 'pickup'); no label for an
    object ImageNet has no class for (the astronaut, the person, the giraffe)."""
    return list(_examples().get(name, ()))


@functools.cache
def _examples() -> dict[str, tuple[Box, ...]]:
    found = _read(EXAMPLE_BOXES, "example boxes file", "example", label_set("imagenet1k"))
    return {name: tuple(boxes) for name, boxes in found.items()}


def _read(path: str | os.PathLike, what: str, key: str, labels: Sequence[str]) -> dict[str, list[Box]]:
    boxes: dict[str, list[Box]] = {}
    for where, row in csv_rows(path, what, (key, "label", *CORNERS)):
        if len(row) != 2 + len(CORNERS):
            raise CamError(f"{where}: wants {key},label,x0,y0,x1,y1, not {','.join(row)!r}")
        name = PurePosixPath(row[0].strip().replace("\\", "/")).as_posix()
        label = row[1].strip()
        try:
            corners = [float(cell) for cell in row[2:]]
        except ValueError:
            raise CamError(f"{where}: the corners x0,y0,x1,y1 must be numbers, not {','.join(row[2:])!r}") from None
        x0, y0, x1, y1 = corners
        if not all(math.isfinite(value) for value in corners) or x0 >= x1 or y0 >= y1:
            raise CamError(f"{where}: a box needs finite corners with x0 < x1 and y0 < y1, not {','.join(row[2:])}")
        index = class_index(label, labels, where) if label else None
        boxes.setdefault(name, []).append(Box(x0, y0, x1, y1, index))
    return boxes
