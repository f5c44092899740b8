"""The Gini index and the entropy of hand-made maps: equal values, one hot pixel, a hand-computed mix, scaling, and
blank or invalid maps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cam_core import CamError
from cam_core.evaluation.sparsity import entropy, gini


def test_gini_from_equal_values_to_one_hot_pixel():
    assert gini(np.full((3, 4), 0.7)) == pytest.approx(0.0)
    one_hot = np.zeros((2, 2))
    one_hot[1, 0] = 1.0
    assert gini(one_hot) == pytest.approx(3 / 4)  # (n − 1) / n
    # Sorted 1, 2, 3, 4: Σ (2i − n − 1) xᵢ / (n Σ x) = (−3 − 2 + 3 + 12) / (4 · 10).
    assert gini(np.array([[4.0, 1.0], [3.0, 2.0]])) == pytest.approx(0.25)
    assert gini(np.array([[12.0, 3.0], [9.0, 6.0]])) == pytest.approx(0.25)  # scale-free


def test_entropy_in_nats_of_the_map_as_a_distribution():
    assert entropy(np.full((2, 2), 0.3)) == pytest.approx(math.log(4))
    one_hot = np.zeros((3, 3))
    one_hot[0, 2] = 0.5
    assert entropy(one_hot) == 0.0
    # Shares 1/4, 1/4, 1/2 and 0 (0 log 0 = 0).
    assert entropy(np.array([[1.0, 1.0], [2.0, 0.0]])) == pytest.approx(-(0.5 * math.log(0.25) + 0.5 * math.log(0.5)))


def test_blank_maps_have_no_sparsity_and_negative_maps_are_refused():
    assert math.isnan(gini(np.zeros((4, 4)))) and math.isnan(entropy(np.zeros((4, 4))))
    for measure in (gini, entropy):
        with pytest.raises(CamError, match="non-negative"):
            measure(np.array([[1.0, -0.1]]))
