"""The arithmetic of RISE, occlusion and LIME on small hand-computed tensors: RISE's upsampling and its weighted sum
without masks, the windows' mean drop, LIME's kernel and its weighted ridge fit, and the specs' checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.transform import resize

from cam_core import CamError
from cam_core.inputs.input_perturbations import (
    InputScores,
    LimePlan,
    PerturbationSpec,
    RisePlan,
    occlusion_plan,
    rise_plan,
    upsampling_matrix,
)
from cam_core.methods.perturbation import kernel_weights, lime_fit
from cam_core.registry import CamInputs, get_method


def scores_of(plan, logits: torch.Tensor, input_logits: torch.Tensor) -> InputScores:
    return InputScores(plan, logits, input_logits, torch.zeros_like(input_logits), 0.0)


def test_two_cells_upsample_to_four_pixels_reflected_at_the_edges():
    """Output pixel centres fall at −0.25, 0.25, 0.75, 1.25 cells; the outer two reflect to 0.25 and 0.75."""
    expected = torch.tensor([[0.75, 0.25], [0.75, 0.25], [0.25, 0.75], [0.25, 0.75]])
    assert torch.allclose(upsampling_matrix(2, 4), expected)


def test_the_upsampling_is_the_authors_skimage_resize():
    grid = np.random.default_rng(0).random((5, 5)).astype(np.float32)
    matrix = upsampling_matrix(5, 18).double().numpy()
    ours = matrix @ grid @ matrix.T
    theirs = resize(grid, (18, 18), order=1, mode="reflect", anti_aliasing=False)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_rise_masks_are_shifted_crops_and_their_weighted_sum_needs_no_mask():
    plan = rise_plan(PerturbationSpec("rise", samples=12, cells=3, keep=0.5, seed=1), 10)
    assert plan.cell == 4 and plan.upsampling.shape == (16, 3)
    masks = plan.masks(slice(0, 12))[:, 0]
    for i in range(12):
        row, column = (int(v) for v in plan.shifts[i])
        grown = plan.upsampling @ plan.grids[i].float() @ plan.upsampling.T
        assert torch.allclose(masks[i], grown[row:row + 10, column:column + 10], atol=1e-6)
    weights = torch.linspace(-1, 2, 12)
    assert torch.allclose(plan.weighted_sum(weights), torch.einsum("n,nhw->hw", weights, masks), atol=1e-5)
    assert torch.allclose(plan.weighted_sum(weights[:5]), torch.einsum("n,nhw->hw", weights[:5], masks[:5]),
                          atol=1e-5)


def test_rise_map_is_the_probability_weighted_mean_of_the_masks_over_p():
    """Two one-cell masks (kept, dropped) on a 2×2 input: S = (P₁·1 + P₂·0) / (N·p)."""
    plan = RisePlan(torch.tensor([[[True]], [[False]]]), torch.zeros(2, 2, dtype=torch.long), upsampling_matrix(1, 4),
                    2, 0.5)
    logits = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])  # P(class 0) = 0.75 and 0.5
    inputs = CamInputs(torch.zeros(1, 1, 1), target=0, input_scores=scores_of(plan, logits, torch.zeros(2)))
    out = get_method("rise").apply(inputs)
    assert torch.allclose(out.raw, torch.full((2, 2), 0.75 / (2 * 0.5)))


def test_occlusion_windows_reach_the_border_and_each_pixel_averages_its_windows():
    """Size 3, window 2, stride 1: four windows; the centre pixel is covered by all four, a corner by one."""
    plan = occlusion_plan(PerturbationSpec("occlusion", window=2, stride=1), 3)
    assert plan.corners.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]] and plan.grid == (2, 2)
    drops = torch.tensor([1.0, 2.0, 3.0, 4.0])
    expected = torch.tensor([[1.0, 1.5, 2.0], [2.0, 2.5, 3.0], [3.0, 3.5, 4.0]])
    assert torch.allclose(plan.window_mean(drops), expected)
    cut = occlusion_plan(PerturbationSpec("occlusion", window=2, stride=2), 5)  # ceil(3 / 2) + 1 = 3 per side
    assert sorted(set(cut.corners[:, 0].tolist())) == [0, 2, 4]
    assert cut.masks(slice(8, 9))[0, 0].tolist()[4] == [1, 1, 1, 1, 0]  # the last window, cut off by the border


def test_occlusion_drop_in_probability_or_logit():
    plan = occlusion_plan(PerturbationSpec("occlusion", window=1, stride=1), 1)
    logits = torch.tensor([[0.0, 0.0]])
    whole = torch.tensor([math.log(3.0), 0.0])  # P(class 0) = 0.75 whole, 0.5 occluded
    inputs = CamInputs(torch.zeros(1, 1, 1), target=0, input_scores=scores_of(plan, logits, whole))
    method = get_method("occlusion")
    assert float(method.apply(inputs).raw[0, 0]) == pytest.approx(0.25)
    assert float(method.apply(inputs, score="logit").raw[0, 0]) == pytest.approx(math.log(3.0))


def test_lime_kernel_on_the_cosine_distance_to_the_whole_image():
    """K = 4: all on is at distance 0; one on has cosine ½, distance ½; none on counts as distance 1."""
    samples = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    expected = torch.tensor([1.0, math.exp(-0.25 / 0.0625), math.exp(-1.0 / 0.0625)], dtype=torch.float64)
    assert torch.allclose(kernel_weights(samples, 0.25), expected)


def test_lime_fit_recovers_a_linear_score_and_paints_its_superpixels():
    """y = 1 + 2 z₀ − 3 z₁ exactly: an unpenalised fit gives the coefficients back whatever the weights."""
    samples = torch.tensor([[1, 1], [1, 0], [0, 1], [0, 0], [1, 1]], dtype=torch.bool)
    targets = 1 + 2 * samples[:, 0].double() - 3 * samples[:, 1].double()
    coefficients, intercept = lime_fit(samples, targets, torch.tensor([1.0, 0.5, 0.2, 0.1, 1.0]), 0.0)
    assert torch.allclose(coefficients, torch.tensor([2.0, -3.0], dtype=torch.float64), atol=1e-9)
    assert intercept == pytest.approx(1.0)
    plan = LimePlan(torch.tensor([[0, 1], [1, 1]], dtype=torch.int32), samples)
    logits = torch.stack([targets.float(), torch.zeros(5)], dim=1)
    inputs = CamInputs(torch.zeros(1, 1, 1), target=0, input_scores=scores_of(plan, logits, torch.zeros(2)))
    out = get_method("lime").apply(inputs, score="logit", alpha=0.0)
    assert torch.allclose(out.raw, torch.tensor([[2.0, -3.0], [-3.0, -3.0]]), atol=1e-5)


def test_specs_refuse_what_has_no_meaning():
    with pytest.raises(CamError, match="stride .* must not exceed the window"):
        PerturbationSpec("occlusion", window=8, stride=9)
    with pytest.raises(CamError, match="one of rise, occlusion, lime"):
        PerturbationSpec("shap")
    with pytest.raises(CamError, match="larger than the 224×224 input"):
        occlusion_plan(PerturbationSpec("occlusion", window=300, stride=8), 224)
