"""Class-specificity on dog.jpg at the default layer: Grad-CAM's dog and pickup maps are far apart, Grad-CAM++'s and
guided backpropagation's are nearly one map, with a note that says why and a layer where the classes do separate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cam_core.errors import CamError
from cam_core.views.specificity import (
    SEPARATED,
    THRESHOLD,
    map_correlation,
    pearson,
    specificity,
)
from tests.conftest import two_object_photo

PICKUP = 717


@pytest.fixture(scope="module")
def dog(mobilenet):
    return mobilenet.analyze(two_object_photo("dog.jpg"))


def test_pearson_against_hand_computed_values():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert pearson(a, 2 * a + 1) == pytest.approx(1.0)
    assert pearson(a, -a) == pytest.approx(-1.0)
    assert pearson(a, np.array([[1.0, 0.0], [0.0, 1.0]])) == pytest.approx(0.0)
    assert math.isnan(pearson(a, np.ones((2, 2))))
    with pytest.raises(CamError, match="cannot be correlated"):
        pearson(a, np.ones(3))


def test_comparison_class_is_the_second_class_else_the_top_or_the_runner_up(dog):
    (top, _, _), (runner_up, _, _) = dog.top_k(2)
    assert dog.comparison_class(PICKUP, second=3) == 3
    assert dog.comparison_class(PICKUP) == top
    assert dog.comparison_class(top) == runner_up
    assert dog.comparison_class(top, second=top) == runner_up


def test_grad_cam_separates_the_dog_from_the_pickup(dog):
    found = specificity(dog, "gradcam", dog.target(None), PICKUP)
    assert found.r < 0, found
    assert not found.barely_specific and found.note == "" and found.best_layer is None


def test_guided_backprop_is_nearly_one_map_and_says_why(dog):
    found = specificity(dog, "guidedbackprop", dog.target(None), PICKUP)
    assert found.r > 0.99 and found.barely_specific, found
    assert "positive gradients" in found.note
    assert found.best_layer is None, "guided backpropagation has no layer that would change its map"


def test_grad_cam_pp_names_a_layer_where_the_classes_really_separate(dog):
    dog_class = dog.target(None)
    found = specificity(dog, "gradcampp", dog_class, PICKUP)
    assert found.r >= THRESHOLD and "positive gradient" in found.note, found
    assert found.best_layer is not None and found.best_layer != dog.explainer.default_layer
    again = map_correlation(dog, "gradcampp", dog_class, PICKUP, layer=found.best_layer)
    assert again == pytest.approx(found.best_r, abs=1e-6)
    assert again < found.r - 0.5, (again, found.r)
    assert specificity(dog, "gradcampp", dog_class, PICKUP) is found, "the second call must be the cached result"


def test_two_breeds_of_the_same_dog_are_in_the_same_place_at_every_layer(dog):
    eskimo, malamute = (dog.explainer.labels.index(name) for name in ("Eskimo dog", "malamute"))
    found = specificity(dog, "gradcam", eskimo, malamute)
    assert found.barely_specific and found.best_layer is None, found
    assert "may lie in the same place" in found.note and "no candidate layer separates them" in found.note
    lowest = min(map_correlation(dog, "gradcam", eskimo, malamute, layer=layer)
                 for layer in dog.explainer.model.layer_choices())
    assert lowest >= SEPARATED and f"{lowest:.2f}" in found.note
