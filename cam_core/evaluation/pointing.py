"""Pointing against object boxes: the pointing game (Zhang et al. 2016) and the energy-based pointing game (Score-CAM,
Wang et al. 2020). A pixel is in a box when its centre is: pixel (column i, row j) has its centre at (i + ½, j + ½)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from cam_core.errors import CamError

# Zhang et al. 2016's tolerance: a peak within 15 pixels of a box is a hit.
POINTING_TOLERANCE = 15


@dataclass(frozen=True)
class Box:
    """An object's box in image pixels: x to the right, y down, x0 < x1, y0 < y1; label: the ImageNet class index
    it is for (None: any class)."""

    x0: float
    y0: float
    x1: float
    y1: float
    label: int | None = None


def check_boxes(boxes: Sequence[Box], width: int, height: int) -> list[Box]:
    """The boxes clipped to a width × height image; CamError when there are none, or one is empty or outside it."""
    if not boxes:
        raise CamError("draw at least one box")
    checked = []
    for box in boxes:
        corners = (box.x0, box.y0, box.x1, box.y1)
        if not all(np.isfinite(corners)):
            raise CamError(f"a box's corners must be numbers, not {corners}")
        if box.x0 >= box.x1 or box.y0 >= box.y1:
            raise CamError(
                f"the box ({box.x0:g}, {box.y0:g})–({box.x1:g}, {box.y1:g}) is empty: it needs x0 < x1 and y0 < y1"
            )
        clipped = replace(box, x0=max(box.x0, 0.0), y0=max(box.y0, 0.0), x1=min(box.x1, width), y1=min(box.y1, height))
        if clipped.x0 >= clipped.x1 or clipped.y0 >= clipped.y1:
            raise CamError(
                f"the box ({box.x0:g}, {box.y0:g})–({box.x1:g}, {box.y1:g}) is outside the {width}×{height} image"
            )
        checked.append(clipped)
    return checked


def boxes_for(boxes: Sequence[Box], target: int) -> list[Box]:
    """The boxes of class target, and those for any class (label None)."""
    return [box for box in boxes if box.label is None or box.label == target]


def as_map(saliency: np.ndarray) -> np.ndarray:
    """saliency as a float64 (H, W) array; CamError unless it is 2-D, finite and non-negative."""
    values = np.asarray(saliency, dtype=np.float64)
    if values.ndim != 2 or values.size == 0:
        raise CamError(f"a saliency map is a non-empty (height, width) array, not one of shape {values.shape}")
    if not np.isfinite(values).all() or values.min() < 0:
        raise CamError("a saliency map's values must be finite and non-negative")
    return values


def box_mask(boxes: Sequence[Box], shape: tuple[int, int], image_size: tuple[int, int] | None = None) -> np.ndarray:
    """The (H, W) boolean mask of the union of boxes on a map of shape (H, W); image_size = (width, height) of the
    image the boxes are in (default: the map's own size)."""
    height, width = shape
    columns, rows = _centres(shape, image_size)
    mask = np.zeros((height, width), dtype=bool)
    for box in boxes:
        inside_x = (columns >= box.x0) & (columns <= box.x1)
        inside_y = (rows >= box.y0) & (rows <= box.y1)
        mask |= inside_y[:, None] & inside_x[None, :]
    return mask


def pointing_hit(
    saliency: np.ndarray, boxes: Sequence[Box], image_size: tuple[int, int] | None = None, tolerance: int = 0
) -> bool:
    """Zhang et al. 2016 (top-down neural attention): whether the map's maximum lies in one of the boxes, or within
    tolerance pixels (of the image) of one. Where several pixels share the maximum, one in a box is a hit; a blank
    (constant) map points nowhere and misses. image_size = (width, height) the boxes refer to (default: the map's)."""
    values = as_map(saliency)
    if tolerance < 0:
        raise CamError(f"the pointing tolerance must be at least 0 pixels, not {tolerance}")
    if not boxes or values.max() == values.min():
        return False
    columns, rows = _centres(values.shape, image_size)
    peak_rows, peak_columns = np.nonzero(values == values.max())
    x, y = columns[peak_columns], rows[peak_rows]
    for box in boxes:
        dx = np.maximum(np.maximum(box.x0 - x, x - box.x1), 0.0)
        dy = np.maximum(np.maximum(box.y0 - y, y - box.y1), 0.0)
        if np.any(np.hypot(dx, dy) <= tolerance):
            return True
    return False


def energy_share(saliency: np.ndarray, boxes: Sequence[Box], image_size: tuple[int, int] | None = None) -> float:
    """Score-CAM paper (Wang et al. 2020, §4.2) energy-based pointing game: the map's sum inside the union of boxes
    over its sum, 0..1 (overlapping boxes count once); nan when the map is blank (all zeros)."""
    values = as_map(saliency)
    total = values.sum()
    if total == 0:
        return float("nan")
    return float(values[box_mask(boxes, values.shape, image_size)].sum() / total)


def _centres(shape: tuple[int, int], image_size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    """The x of each column's and the y of each row's pixel centre, in the pixels of image_size."""
    height, width = shape
    image_width, image_height = (width, height) if image_size is None else image_size
    if image_width <= 0 or image_height <= 0:
        raise CamError(f"the image size must be positive, not {image_width}×{image_height}")
    columns = (np.arange(width) + 0.5) * (image_width / width)
    rows = (np.arange(height) + 0.5) * (image_height / height)
    return columns, rows
