"""Means over images with percentile-bootstrap intervals, and a "best" only where the intervals separate."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cam_core.errors import CamError


@dataclass(frozen=True)
class Interval:
    """The mean of count values and its bootstrap interval [low, high] (low = high = mean for fewer than 2)."""

    mean: float
    low: float
    high: float
    count: int


def bootstrap_interval(
    values: Sequence[float], confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> Interval:
    """The mean of the finite values and the percentile bootstrap interval of that mean: resamples resamples with
    replacement (numpy's default_rng(seed)), the (1 − confidence) / 2 and (1 + confidence) / 2 quantiles of their
    means. nan values (a metric undefined for an image) are left out; no values give nan."""
    if not 0 < confidence < 1:
        raise CamError(f"confidence must lie between 0 and 1, not {confidence}")
    if resamples < 1:
        raise CamError(f"resamples must be at least 1, not {resamples}")
    given = np.asarray(values, dtype=np.float64).ravel()
    finite = given[np.isfinite(given)]
    if finite.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0)  # one nan object: empty intervals compare equal
    mean = float(finite.mean())
    if finite.size < 2:
        return Interval(mean, mean, mean, int(finite.size))
    picks = np.random.default_rng(seed).integers(0, finite.size, size=(resamples, finite.size))
    means = finite[picks].mean(axis=1)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Interval(mean, float(low), float(high), int(finite.size))


def clear_best(intervals: Mapping[str, Interval], lower_is_better: bool) -> str | None:
    """The key whose interval lies wholly on the better side of every other's; None when two or more overlap, when
    there is only one, or when any has fewer than 2 values (no interval, so no "best")."""
    if len(intervals) < 2 or any(item.count < 2 for item in intervals.values()):
        return None
    best = min(intervals, key=lambda key: intervals[key].mean * (1 if lower_is_better else -1))
    top = intervals[best]
    others = [item for key, item in intervals.items() if key != best]
    separate = all(top.high < item.low if lower_is_better else top.low > item.high for item in others)
    return best if separate else None
