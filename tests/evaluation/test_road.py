"""ROAD (Rong et al., ICML 2022): noisy linear imputation on hand-computed images, the curves on a hand-made model
with known answers, then a real photo through the embedded model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from cam_core import CamError
from cam_core.evaluation.road import FRACTIONS, noisy_linear_imputation, road_curve
from cam_core.evaluation.scoring import PROTOCOLS, score_map

EGYPTIAN_CAT = 285


def linear_field(height: int = 6, width: int = 7) -> torch.Tensor:
    """(1, 2, H, W): channel 0 is 2 + 0.5·row − 0.25·column, channel 1 the constant 3."""
    rows, columns = torch.meshgrid(torch.arange(height, dtype=torch.float32),
                                   torch.arange(width, dtype=torch.float32), indexing="ij")
    return torch.stack([2 + 0.5 * rows - 0.25 * columns, torch.full_like(rows, 3.0)])[None]


def test_one_removed_pixel_inside_a_linear_field_gets_its_value_back():
    # its 8 neighbours' weighted mean: symmetric weights cancel the slopes
    image = linear_field()
    removed = torch.zeros(6, 7, dtype=torch.bool)
    removed[2, 3] = True
    filled = noisy_linear_imputation(image, removed, noise=0.0)
    torch.testing.assert_close(filled, image)


def test_a_removed_corner_is_the_mean_of_its_three_neighbours_weighted_1_6_and_1_12():
    image = torch.zeros(1, 1, 3, 3)
    image[0, 0, 0, 1], image[0, 0, 1, 0], image[0, 0, 1, 1] = 6.0, 12.0, 24.0
    removed = torch.zeros(3, 3, dtype=torch.bool)
    removed[0, 0] = True
    filled = noisy_linear_imputation(image, removed, noise=0.0)
    # (6/6 + 12/6 + 24/12) / (1/6 + 1/6 + 1/12) = 5 / (5/12) = 12
    assert float(filled[0, 0, 0, 0]) == pytest.approx(12.0, rel=1e-6)
    assert torch.equal(filled[0, 0].ravel()[1:], image[0, 0].ravel()[1:])


def test_removed_pixels_next_to_each_other_are_solved_together():
    # one row 0, x, y, 3: x = (0 + y) / 2 and y = (x + 3) / 2, so x = 1 and y = 2
    image = torch.tensor([[[[0.0, 9.0, 9.0, 3.0]]]])
    filled = noisy_linear_imputation(image, torch.tensor([[False, True, True, False]]), noise=0.0)
    torch.testing.assert_close(filled, torch.tensor([[[[0.0, 1.0, 2.0, 3.0]]]]))


def test_the_noise_has_the_spread_asked_for_per_channel_and_follows_the_seed():
    image = torch.zeros(1, 2, 60, 60)
    removed = torch.zeros(60, 60, dtype=torch.bool)
    removed[::2] = True  # every other row: 1800 pixels, each imputed 0 before the noise
    filled = noisy_linear_imputation(image, removed, noise=[0.01, 0.5], seed=3)
    spread = filled[0][:, removed].std(dim=1)
    assert float(spread[0]) == pytest.approx(0.01, rel=0.1) and float(spread[1]) == pytest.approx(0.5, rel=0.1)
    assert not filled[0][:, ~removed].any()
    assert torch.equal(filled, noisy_linear_imputation(image, removed, noise=[0.01, 0.5], seed=3))
    assert not torch.equal(filled, noisy_linear_imputation(image, removed, noise=[0.01, 0.5], seed=4))


def test_imputing_the_normalised_input_is_normalising_the_imputed_pixels():
    """The authors impute images in [0, 1] before the normalisation, with noise 0.01; a weighted mean commutes with
    each channel's (x − mean) / std, so imputing the model input with noise 0.01 / std gives the same image."""
    generator = torch.Generator().manual_seed(1)
    pixels = torch.rand(1, 3, 16, 16, generator=generator)
    removed = torch.rand(16, 16, generator=generator) < 0.5
    mean, std = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225])

    def normalise(image: torch.Tensor) -> torch.Tensor:
        return (image - mean) / std.reshape(1, 3, 1, 1)

    ours = noisy_linear_imputation(normalise(pixels), removed, noise=(0.01 / std).tolist(), seed=5)
    theirs = normalise(noisy_linear_imputation(pixels, removed, noise=0.01, seed=5))
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"removed": torch.ones(4, 4, dtype=torch.bool)}, "at least one kept pixel"),
        ({"removed": torch.zeros(3, 4, dtype=torch.bool)}, r"\(4, 4\) mask"),
        ({"noise": -0.1}, "noise must be one standard deviation"),
        ({"noise": [0.1, 0.1]}, "one per channel \\(3\\)"),
    ],
)
def test_bad_imputation_arguments_are_refused(kwargs, message):
    arguments = {"model_input": torch.zeros(1, 3, 4, 4), "removed": torch.zeros(4, 4, dtype=torch.bool), **kwargs}
    with pytest.raises(CamError, match=message):
        noisy_linear_imputation(**arguments)


class PixelModel(nn.Module):
    """Two classes; class 0's logit is 10 × channel 0 at pixel (5, 5), class 1's is 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logit = 10 * x[:, 0, 5, 5]
        return torch.stack([logit, torch.zeros_like(logit)], dim=1)


def test_morf_removes_the_one_pixel_that_matters_and_lerf_keeps_it():
    """On a black 10×10 image with one white pixel, the map peaking there: MoRF imputes it from its black neighbours
    at once (p = 1/2 from 10 % on), LeRF keeps it to the end (p = sigmoid(10))."""
    image = torch.zeros(1, 3, 10, 10)
    image[0, 0, 5, 5] = 1.0
    rows, columns = np.mgrid[0:10, 0:10]
    saliency = np.exp(-((rows - 5.0) ** 2 + (columns - 5.0) ** 2) / 8)
    morf = road_curve(PixelModel(), image, saliency, 0, "morf", noise=0.0)
    lerf = road_curve(PixelModel(), image, saliency, 0, "lerf", noise=0.0)
    full = 1 / (1 + math.exp(-10))
    np.testing.assert_allclose(morf.fractions, FRACTIONS)
    np.testing.assert_allclose(morf.scores, 0.5, rtol=1e-6)
    np.testing.assert_allclose(lerf.scores, full, rtol=1e-6)
    # the trapezoid area over 10 % to 90 % of the pixels
    assert morf.auc == pytest.approx(0.8 * 0.5) and lerf.auc == pytest.approx(0.8 * full)
    assert (morf.kind, lerf.kind) == ("road_morf", "road_lerf")


def test_bad_curve_settings_are_refused():
    image, saliency = torch.zeros(1, 3, 10, 10), np.ones((10, 10))
    with pytest.raises(CamError, match="order must be one of morf, lerf"):
        road_curve(PixelModel(), image, saliency, 0, "random")
    with pytest.raises(CamError, match="increasing shares between 0 and 1"):
        road_curve(PixelModel(), image, saliency, 0, fractions=(0.5, 1.0))


def test_road_on_a_real_photo_ranks_gradcams_pixels(mobilenet, chelsea):
    analysis = mobilenet.analyze(chelsea)
    saliency = analysis.cam("gradcam", target=EGYPTIAN_CAT).saliency
    plain = score_map(analysis, saliency, EGYPTIAN_CAT, steps=4)
    scores = score_map(analysis, saliency, EGYPTIAN_CAT, steps=4, road=(0.2, 0.5, 0.8))  # the full 9 take ~4 s
    print(f"ROAD MoRF {scores.road_morf.auc:.3f}, LeRF {scores.road_lerf.auc:.3f}, {scores.seconds:.2f} s")
    assert plain.road_morf is None and plain.road_lerf is None
    # removing Grad-CAM's most relevant pixels hurts far more than removing its least relevant ones
    assert scores.road_morf.auc < scores.road_lerf.auc - 0.2
    assert scores.road_morf.scores[-1] < 0.1 < scores.road_lerf.scores[0]
    np.testing.assert_allclose(scores.road_morf.fractions, [0.2, 0.5, 0.8])
    # the noise is the authors' 0.01 on pixels in [0, 1]: 0.01 / std in the model input's units
    std = mobilenet.spec.preprocessing.std
    alone = road_curve(mobilenet.fast_model(), analysis.input, saliency, EGYPTIAN_CAT, "lerf", (0.2, 0.5, 0.8),
                       noise=[0.01 / value for value in std])
    np.testing.assert_allclose(alone.scores, scores.road_lerf.scores, rtol=1e-5, atol=1e-7)
    assert scores.nbytes == plain.nbytes + scores.road_morf.nbytes + scores.road_lerf.nbytes
    assert "noisy linear imputation" in PROTOCOLS["road_morf"] and "10%, 20%, …, 90%" in PROTOCOLS["road_lerf"]
