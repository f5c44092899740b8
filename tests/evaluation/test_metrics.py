"""Faithfulness metrics: hand-made cases with known answers, then a real photo through the embedded model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from cam_core import CamError
from cam_core.evaluation.metrics import (
    Confidence,
    average_drop,
    baseline_input,
    confidence_change,
    increase_in_confidence,
    map_at_input,
    probabilities,
    saliency_curve,
)
from cam_core.evaluation.scoring import DEFAULT_STEPS, PROTOCOLS, protocol, score_map
from cam_core.inputs.perturbed import blurred

EGYPTIAN_CAT = 285
OBJECT = (slice(0, 4), slice(0, 4))  # the top-left 4×4 of an 8×8 image


class RegionModel(nn.Module):
    """Two classes; class 0's logit is a·(mean of channel 0 over the object) − b·(mean over the rest), class 1's is
    0, so p(class 0) = sigmoid(logit)."""

    def __init__(self, a: float = 10.0, b: float = 0.0):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inside = torch.zeros(8, 8, dtype=torch.bool)
        inside[OBJECT] = True
        logit = self.a * x[:, 0, inside].mean(dim=1) - self.b * x[:, 0, ~inside].mean(dim=1)
        return torch.stack([logit, torch.zeros_like(logit)], dim=1)


def sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value))


def object_image(background: float = 0.0) -> torch.Tensor:
    image = torch.full((1, 3, 8, 8), background)
    image[(0, 0, *OBJECT)] = 1.0
    return image


OBJECT_MAP = np.zeros((8, 8), dtype=np.float32)
OBJECT_MAP[OBJECT] = 1.0


def test_deleting_the_object_first_drops_the_score_at_once_and_its_inverse_keeps_it():
    model, image, full = RegionModel(), object_image(), sigmoid(10.0)
    curve = saliency_curve(model, image, OBJECT_MAP, target=0, kind="deletion", steps=4, baseline="zero",
                           spacing="uniform")
    np.testing.assert_allclose(curve.fractions, [0, 0.25, 0.5, 0.75, 1.0])
    # After 16 of 64 pixels (all of the object) the logit is 0: p = 1/2 from then on.
    np.testing.assert_allclose(curve.scores, [full, 0.5, 0.5, 0.5, 0.5], rtol=1e-6)
    assert curve.auc == pytest.approx(0.25 * (full + 0.5) / 2 + 0.75 * 0.5, rel=1e-6)
    inverse = saliency_curve(model, image, 1.0 - OBJECT_MAP, target=0, kind="deletion", steps=4, baseline="zero",
                             spacing="uniform")
    # The 48 background pixels go first and change nothing; the object goes last.
    np.testing.assert_allclose(inverse.scores, [full, full, full, full, 0.5], rtol=1e-6)
    assert inverse.auc == pytest.approx(0.75 * full + 0.25 * (full + 0.5) / 2, rel=1e-6)
    assert curve.auc < inverse.auc


def test_inserting_the_object_first_restores_the_score_at_once():
    model, image, full = RegionModel(), object_image(), sigmoid(10.0)
    curve = saliency_curve(model, image, OBJECT_MAP, target=0, kind="insertion", steps=4, baseline="zero",
                           spacing="uniform")
    np.testing.assert_allclose(curve.scores, [0.5, full, full, full, full], rtol=1e-6)
    assert curve.auc == pytest.approx(0.25 * (0.5 + full) / 2 + 0.75 * full, rel=1e-6)
    inverse = saliency_curve(model, image, 1.0 - OBJECT_MAP, target=0, kind="insertion", steps=4, baseline="zero",
                             spacing="uniform")
    assert inverse.auc < curve.auc


def test_a_map_is_ranked_by_value_ties_in_pixel_order_and_resized_to_the_input():
    """A 2×2 map [[1, 0], [0, 0]] bilinearly resized to 8×8 (align_corners=False) has row and column weights 1, 1,
    .875, .625, .375, … so its top-left quadrant (at least .625² = .39) beats everything else (at most .375): 16
    deletions remove exactly the object."""
    small = np.array([[1.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    weights = map_at_input(small, torch.zeros(1, 3, 8, 8))
    steps = torch.tensor([1.0, 1.0, 0.875, 0.625, 0.375, 0.125, 0.0, 0.0])
    torch.testing.assert_close(weights, steps[:, None] * steps[None, :])
    curve = saliency_curve(RegionModel(), object_image(), small, target=0, kind="deletion", steps=4, baseline="zero",
                           spacing="uniform")
    assert curve.scores[1] == pytest.approx(0.5, rel=1e-6)
    # A constant map has no order: pixels go in raster order, so the first 16 are rows 0-1, 8 of them the object's.
    flat = saliency_curve(RegionModel(), object_image(), np.ones((8, 8)), target=0, kind="deletion", steps=4,
                          baseline="zero", spacing="uniform")
    assert flat.scores[1] == pytest.approx(sigmoid(5.0), rel=1e-6)


def test_batch_size_does_not_change_a_curve_and_baselines_are_what_they_say():
    torch.manual_seed(0)
    image = torch.rand(1, 3, 8, 8)
    saliency = np.random.default_rng(0).random((8, 8))
    one = saliency_curve(RegionModel(), image, saliency, 0, "insertion", steps=7, baseline="blur", batch_size=1)
    many = saliency_curve(RegionModel(), image, saliency, 0, "insertion", steps=7, baseline="blur", batch_size=16)
    np.testing.assert_array_equal(one.scores, many.scores)
    assert torch.equal(baseline_input(image, "zero"), torch.zeros_like(image))
    assert torch.equal(baseline_input(image, "blur"), blurred(image, 10.0))
    # Inserting every pixel gives the image back; deleting every pixel gives the baseline.
    full = float(torch.softmax(RegionModel()(image), dim=1)[0, 0])
    assert many.scores[-1] == pytest.approx(full, rel=1e-6)
    assert one.scores[0] == pytest.approx(float(torch.softmax(RegionModel()(blurred(image, 10.0)), 1)[0, 0]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 0}, "steps must be a whole number from 1 to 1000"),
        ({"steps": 2.5}, "steps must be a whole number"),
        ({"kind": "both"}, "kind must be one of deletion, insertion"),
        ({"baseline": "noise"}, "baseline must be one of rise, zero, blur"),
        ({"spacing": "log"}, "spacing must be one of quadratic, uniform"),
    ],
)
def test_bad_settings_name_the_valid_range(kwargs, message):
    with pytest.raises(CamError, match=message):
        saliency_curve(RegionModel(), object_image(), OBJECT_MAP, 0, **kwargs)


def test_a_map_that_is_not_a_finite_2d_array_is_refused():
    with pytest.raises(CamError, match="finite 2-D array"):
        saliency_curve(RegionModel(), object_image(), np.full((8, 8), np.nan), 0)
    with pytest.raises(CamError, match="finite 2-D array"):
        confidence_change(RegionModel(), object_image(), np.ones((2, 8, 8)), 0)


def test_confidence_change_multiplies_the_input_by_the_map():
    # Half of the object kept at full weight, half at 0.5: the object's mean becomes 0.75.
    partial = OBJECT_MAP.copy()
    partial[0:4, 2:4] = 0.5
    change = confidence_change(RegionModel(), object_image(), partial, 0)
    assert change.original == pytest.approx(sigmoid(10.0)) and change.explained == pytest.approx(sigmoid(7.5))
    assert change.drop == pytest.approx((sigmoid(10.0) - sigmoid(7.5)) / sigmoid(10.0), rel=1e-3)
    assert not change.increase
    # With a background that counts against the class, keeping only the object raises the confidence.
    against = confidence_change(RegionModel(b=5.0), object_image(background=1.0), OBJECT_MAP, 0)
    assert against.original == pytest.approx(sigmoid(5.0)) and against.explained == pytest.approx(sigmoid(10.0))
    assert against.drop == 0.0 and against.increase


def test_average_drop_and_increase_in_confidence_over_images():
    changes = [Confidence(0.8, 0.4), Confidence(0.5, 0.6), Confidence(0.9, 0.9)]
    assert average_drop(changes) == pytest.approx(100 * (0.5 + 0 + 0) / 3)
    assert increase_in_confidence(changes) == pytest.approx(100 / 3)
    assert math.isnan(average_drop([])) and math.isnan(increase_in_confidence([]))


class SpotModel(nn.Module):
    """Two classes on a 20 × 20 image; class 0's logit is 10 × the mean of channel 0 over the 2 × 2 spot at rows and
    columns 9-10 (1 % of the pixels), class 1's is 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logit = 10 * x[:, 0, 9:11, 9:11].mean(dim=(1, 2))
        return torch.stack([logit, torch.zeros_like(logit)], dim=1)


def test_quadratic_steps_tell_apart_maps_that_equal_steps_cannot():
    """A map that ranks the spot first and one that ranks 4 other pixels before it: 20 equal steps remove 20 pixels
    (5 %) at once, so both curves read sigmoid(10), then 1/2, and tie; the default's quadratic steps, dense at the
    start, see the second map keep the spot for a few more points."""
    image = torch.zeros(1, 3, 20, 20)
    image[0, 0, 9:11, 9:11] = 1.0
    first = np.zeros((20, 20))
    first[9:11, 9:11] = 1.0
    later = first * 0.5
    later[0, 0:4] = 1.0
    equal = [saliency_curve(SpotModel(), image, saliency, 0, steps=20, baseline="zero", spacing="uniform").auc
             for saliency in (first, later)]
    assert equal[0] == pytest.approx(equal[1], abs=1e-12)
    curves = [saliency_curve(SpotModel(), image, saliency, 0, steps=DEFAULT_STEPS, baseline="zero")
              for saliency in (first, later)]
    # point k of 50 at (k / 50)² of the 400 pixels, rounded: 0, 0, 1, 1, 3, 4, 6, 8, ...
    np.testing.assert_array_equal(np.round(curves[0].fractions[:8] * 400), [0, 0, 1, 1, 3, 4, 6, 8])
    full = sigmoid(10.0)
    # the spot goes pixel by pixel for the first map (means 3/4, 3/4, 1/4, 0); after 4 pixels for the second
    np.testing.assert_allclose(curves[0].scores[:8], [full, full, sigmoid(7.5), sigmoid(7.5), sigmoid(2.5),
                                                      0.5, 0.5, 0.5], rtol=1e-6)
    np.testing.assert_allclose(curves[1].scores[:8], [full, full, full, full, full, full, sigmoid(5.0), 0.5],
                               rtol=1e-6)
    assert curves[0].auc < curves[1].auc - 1e-4


def test_each_protocol_names_its_baseline_and_steps():
    assert PROTOCOLS["deletion"] == ("deletion (lower is better): most salient pixels first replaced by the all-zero "
                                     f"input (the training images' mean colour), {DEFAULT_STEPS} steps, denser at the "
                                     "start (RISE, Petsiuk et al. 2018)")
    assert PROTOCOLS["insertion"].startswith("insertion (higher is better): most salient pixels first inserted into "
                                             "a heavily blurred copy")
    assert "replaced by a heavily blurred copy, 30 steps" in protocol("deletion", 30, "blur")
    assert "inserted into the all-zero input" in protocol("insertion", 30, "zero")
    assert set(PROTOCOLS) == {"deletion", "insertion", "road_morf", "road_lerf", "average_drop",
                              "increase_in_confidence"}
    with pytest.raises(CamError, match="metric must be one of deletion"):
        protocol("pointing")
    with pytest.raises(CamError, match="baseline must be one of rise, zero, blur"):
        protocol("deletion", baseline="noise")


# ------------------------------------------------------------------------------------------ a real photo


@pytest.fixture(scope="module")
def chelsea_scores(mobilenet, chelsea):
    analysis = mobilenet.analyze(chelsea)
    gradcam = analysis.cam("gradcam", target=EGYPTIAN_CAT).saliency
    noise = np.random.default_rng(0).random((7, 7))  # a random map on the CAM's own 7×7 grid, upsampled
    return {
        name: score_map(analysis, saliency, EGYPTIAN_CAT, steps=10)
        for name, saliency in (("gradcam", gradcam), ("inverse", 1.0 - gradcam), ("noise", noise))
    }


def test_gradcams_map_of_the_cat_is_more_faithful_than_its_inverse_and_than_noise(chelsea_scores, mobilenet, chelsea):
    ours, inverse, noise = (chelsea_scores[name] for name in ("gradcam", "inverse", "noise"))
    for label, scores in chelsea_scores.items():
        print(f"{label}: deletion {scores.deletion.auc:.3f}, insertion {scores.insertion.auc:.3f}, "
              f"drop {scores.confidence.drop:.3f}, {scores.seconds:.2f} s")
    # (A random map is no fixed point between the two: chelsea's cat fills most of the photo, so the inverse of
    # Grad-CAM's map still covers much of the cat.)
    assert ours.deletion.auc < min(noise.deletion.auc, inverse.deletion.auc)
    assert ours.insertion.auc > max(noise.insertion.auc, inverse.insertion.auc)
    # Grad-CAM's map alone keeps nearly all of the confidence. (So does its inverse here, which keeps most of the
    # photo: Average Drop rewards maps that cover much, one reason to read it next to the deletion curve.)
    assert ours.confidence.drop < 0.1
    # The curves start and end at the image's and the baselines' probabilities: RISE's protocol deletes down to the
    # zero input and inserts into a blurred copy.
    assert ours.deletion.scores[0] == pytest.approx(ours.insertion.scores[-1], rel=1e-5)
    model_input = mobilenet.analyze(chelsea).input
    for kind, end in (("deletion", ours.deletion.scores[-1]), ("insertion", ours.insertion.scores[0])):
        other = probabilities(mobilenet.fast_model(), baseline_input(model_input, "rise", kind), EGYPTIAN_CAT)[0]
        assert end == pytest.approx(float(other), rel=1e-4, abs=1e-6), kind
    assert ours.deletion.scores[0] > 0.5 and ours.deletion.scores[-1] < 0.1


def test_scores_use_the_models_probability_of_the_class(mobilenet, chelsea, chelsea_scores):
    analysis = mobilenet.analyze(chelsea)
    assert chelsea_scores["gradcam"].confidence.original == pytest.approx(
        float(analysis.probabilities[EGYPTIAN_CAT]), abs=2e-3
    )
