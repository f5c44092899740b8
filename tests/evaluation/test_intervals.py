"""Bootstrap intervals of a mean (hand-computed cases, scipy's percentile bootstrap as an oracle, seeds, undefined
values) and a "best" only where intervals separate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from cam_core import CamError
from cam_core.evaluation.intervals import Interval, bootstrap_interval, clear_best


def test_two_values_span_from_one_to_the_other():
    # Resampled means of (0, 1) are 0, 1/2 or 1 with chances 1/4, 1/2, 1/4: the 2.5 % and 97.5 % points are 0 and 1.
    assert bootstrap_interval([0.0, 1.0]) == Interval(0.5, 0.0, 1.0, 2)


def test_equal_values_one_value_and_none():
    assert bootstrap_interval([0.3] * 5) == pytest.approx(Interval(0.3, 0.3, 0.3, 5))
    assert bootstrap_interval([0.7]) == Interval(0.7, 0.7, 0.7, 1)
    assert bootstrap_interval([0.7, float("nan")]) == Interval(0.7, 0.7, 0.7, 1)  # undefined values left out
    empty = bootstrap_interval([])
    assert empty.count == 0 and math.isnan(empty.mean) and math.isnan(empty.low) and math.isnan(empty.high)


def test_the_interval_matches_scipys_percentile_bootstrap_and_its_seed():
    values = np.random.default_rng(1).normal(0.4, 0.2, size=40)
    ours = bootstrap_interval(values)
    theirs = stats.bootstrap((values,), np.mean, confidence_level=0.95, n_resamples=20000, method="percentile",
                             random_state=0).confidence_interval
    width = theirs.high - theirs.low
    assert ours.mean == pytest.approx(values.mean()) and ours.count == 40
    assert ours.low == pytest.approx(theirs.low, abs=0.05 * width)
    assert ours.high == pytest.approx(theirs.high, abs=0.05 * width)
    assert bootstrap_interval(values, seed=0) == ours and bootstrap_interval(values, seed=1) != ours
    narrow = bootstrap_interval(values, confidence=0.5)
    assert ours.low < narrow.low < narrow.high < ours.high
    with pytest.raises(CamError, match="confidence must lie between 0 and 1"):
        bootstrap_interval(values, confidence=95)
    with pytest.raises(CamError, match="resamples must be at least 1"):
        bootstrap_interval(values, resamples=0)


def test_a_best_only_where_the_intervals_separate():
    low, high = Interval(0.10, 0.05, 0.15, 8), Interval(0.30, 0.20, 0.40, 8)
    assert clear_best({"a": low, "b": high}, lower_is_better=True) == "a"
    assert clear_best({"a": low, "b": high}, lower_is_better=False) == "b"
    touching = Interval(0.25, 0.15, 0.35, 8)  # starts where a ends
    assert clear_best({"a": low, "b": touching}, lower_is_better=True) is None
    wide = Interval(0.50, 0.0, 1.0, 8)  # far off on average, but its interval reaches a's
    assert clear_best({"a": low, "b": high, "c": wide}, lower_is_better=True) is None
    single = Interval(0.9, 0.9, 0.9, 1)  # one image: no interval
    assert clear_best({"a": low, "b": single}, lower_is_better=False) is None
    assert clear_best({"a": low}, lower_is_better=True) is None
