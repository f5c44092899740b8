"""Difference maps: where one map has more evidence than another, signed, on one scale for both."""

from __future__ import annotations

import numpy as np

from cam_core.errors import CamError

NORMALISATIONS = {
    "raw": "raw values (the same method's units)",
    "max": "each map divided by its own maximum",
}


def difference(first: np.ndarray, second: np.ndarray, normalisation: str = "raw") -> np.ndarray:
    """first − second of two evidence maps of one shape (≥ 0, at the image's size): in raw values when their units
    agree (one method, two classes), or with each map divided by its own maximum ("max": two methods; a blank map
    stays 0), so the result lies in −1 … +1."""
    if normalisation not in NORMALISATIONS:
        raise CamError(f"normalisation must be one of {', '.join(NORMALISATIONS)}, not {normalisation!r}")
    a, b = np.asarray(first, dtype=np.float32), np.asarray(second, dtype=np.float32)
    if a.shape != b.shape:
        raise CamError(f"maps of shapes {a.shape} and {b.shape} cannot be subtracted")
    if normalisation == "max":
        a, b = (m / peak if (peak := float(m.max())) > 0 else np.zeros_like(m) for m in (a, b))
    return a - b


def describe(normalisation: str) -> str:
    """The normalisation in words, for a caption."""
    if normalisation not in NORMALISATIONS:
        raise CamError(f"normalisation must be one of {', '.join(NORMALISATIONS)}, not {normalisation!r}")
    return NORMALISATIONS[normalisation]
