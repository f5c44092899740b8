"""The arithmetic of SS-CAM, IS-CAM and the faster Score-CAM against numbers worked out by hand: the integration
factors, the seeded noise, the choice of the most varied channels, the weights averaged over samples, and the rows
score_masks fills for each (sample, mask) on a tiny linear model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cam_core.errors import CamError
from cam_core.inputs.mask_scores import MaskScores, MaskSpec, most_varied, score_masks
from cam_core.inputs.masking import mask_noise, mask_scales, normalized_masks
from cam_core.registry import CamInputs, get_method


class Sums(nn.Module):
    """Two logits: the sum of the input and the sum of its first colour channel (linear in the input)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x.sum(dim=(1, 2, 3)), x[:, 0].sum(dim=(1, 2))], dim=1)


IMAGE = torch.arange(1, 3 * 8 * 8 + 1, dtype=torch.float32).reshape(1, 3, 8, 8) / 100
MAPS = torch.tensor([[[0.0, 1.0], [2.0, 3.0]], [[5.0, 5.0], [5.0, 5.0]], [[4.0, 0.0], [0.0, 0.0]]])


def test_integration_factors_by_hand():
    np.testing.assert_allclose(mask_scales("linear", 4).numpy(), [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(mask_scales("cumulative", 4).numpy(), [0.25, 0.75, 1.5, 2.5])  # torchcam's ISCAM
    np.testing.assert_allclose(mask_scales("none", 3).numpy(), [1.0, 1.0, 1.0])
    with pytest.raises(CamError, match="integration must be one of"):
        mask_scales("trapezoid", 3)


def test_the_noise_is_drawn_from_the_seed_sample_and_mask_alone():
    first = mask_noise(7, 2, 5, 64, 2.0)
    assert first.shape == (1, 64, 64)
    assert torch.equal(first, mask_noise(7, 2, 5, 64, 2.0))
    for other in (mask_noise(8, 2, 5, 64, 2.0), mask_noise(7, 3, 5, 64, 2.0), mask_noise(7, 2, 6, 64, 2.0)):
        assert not torch.allclose(first, other)
    assert abs(float(first.std()) - 2.0) < 0.1 and abs(float(first.mean())) < 0.1


def test_the_faster_score_cam_keeps_the_maps_that_vary_most():
    # standard deviations over the positions: 1.118, 0, 1.732
    np.testing.assert_array_equal(most_varied(MAPS, 0.34).numpy(), [False, False, True])
    np.testing.assert_array_equal(most_varied(MAPS, 0.5).numpy(), [True, False, True])
    assert most_varied(MAPS, 1.0) is None
    np.testing.assert_array_equal(most_varied(MAPS, 0.01).numpy(), [False, False, True])  # at least one map


def test_weights_average_each_masks_samples_and_skip_unscored_masks():
    # rows s·M + k: two samples of three masks; class 1's logits 1, 2, 0 (sample 0) and 3, 0, 0 (sample 1)
    logits = torch.tensor([[0.0, 1.0], [0.0, 2.0], [0.0, 0.0], [0.0, 3.0], [0.0, 0.0], [0.0, 0.0]])
    scores = MaskScores(MAPS, None, logits, torch.zeros(2), torch.zeros(3, dtype=torch.bool), 0.0, samples=2)
    inputs = CamInputs(activations=MAPS, target=1, mask_scores=scores)

    def weights(choice: str, selected=None) -> np.ndarray:
        found = MaskScores(MAPS, None, logits, torch.zeros(2), torch.zeros(3, dtype=torch.bool), 0.0, samples=2,
                           selected=selected)
        return get_method("sscam").apply(CamInputs(activations=MAPS, target=1, mask_scores=found),
                                         weights=choice).weights.numpy()

    def p(logit: float) -> float:
        return float(torch.softmax(torch.tensor([0.0, logit]), 0)[1])

    probability = [(p(1) + p(3)) / 2, (p(2) + p(0)) / 2, p(0)]
    np.testing.assert_allclose(weights("probability"), probability, rtol=1e-6)
    mean_logits = np.array([2.0, 1.0, 0.0])  # torchcam: a softmax over channels of the averaged logits
    np.testing.assert_allclose(weights("logit softmax"), np.exp(mean_logits) / np.exp(mean_logits).sum(), rtol=1e-6)
    np.testing.assert_allclose(weights("gain"), np.array(probability) - 0.5, rtol=1e-5)
    scored = torch.tensor([True, False, True])
    np.testing.assert_allclose(weights("probability", scored), [probability[0], 0.0, probability[2]], rtol=1e-6)
    softmax = np.exp([2.0, 0.0]) / np.exp([2.0, 0.0]).sum()
    np.testing.assert_allclose(weights("logit softmax", scored), [softmax[0], 0.0, softmax[1]], rtol=1e-6)
    out = get_method("iscam").apply(inputs, weights="probability")
    np.testing.assert_allclose(out.raw.numpy(), np.einsum("k,khw->hw", probability, MAPS.numpy()), rtol=1e-6)


def masked_logits(masks: torch.Tensor) -> torch.Tensor:
    """Sums on the input kept under each (1, S, S) mask over the zero baseline."""
    return Sums()(IMAGE * masks)


def test_score_masks_scales_each_sample_of_each_mask():
    spec = MaskSpec("layer", samples=3, integration="linear")
    scores = score_masks(Sums(), IMAGE, MAPS, spec, batch_size=4)
    assert scores.samples == 3 and scores.logits.shape == (9, 2) and scores.selected is None
    full, _ = normalized_masks(MAPS, 8)
    for sample in range(3):
        for k in (0, 2):
            np.testing.assert_allclose(scores.logits[sample * 3 + k].numpy(),
                                       masked_logits(full[k] * (sample + 1) / 3)[0].numpy(), rtol=1e-5)
        # the constant map's mask is empty at every scale: its input is the baseline, not run
        np.testing.assert_allclose(scores.logits[sample * 3 + 1].numpy(), [0.0, 0.0])
    assert scores.skipped.tolist() == [False, True, False]


def test_score_masks_adds_each_samples_own_noise_and_runs_constant_maps():
    spec = MaskSpec("layer", samples=2, noise=0.5, seed=3)
    scores = score_masks(Sums(), IMAGE, MAPS, spec, batch_size=3)
    full, _ = normalized_masks(MAPS, 8)
    assert not scores.skipped.any()
    for sample in range(2):
        for k in range(3):
            expected = masked_logits(full[k] + mask_noise(3, sample, k, 8, 0.5))[0]
            np.testing.assert_allclose(scores.logits[sample * 3 + k].numpy(), expected.numpy(), rtol=1e-5)
    again = score_masks(Sums(), IMAGE, MAPS, spec, batch_size=1)
    np.testing.assert_allclose(again.logits.numpy(), scores.logits.numpy(), rtol=1e-6)


def test_score_masks_runs_only_the_most_varied_maps():
    scores = score_masks(Sums(), IMAGE, MAPS, MaskSpec("layer", top_variance=0.34), batch_size=4)
    assert scores.selected.tolist() == [False, False, True]
    full, _ = normalized_masks(MAPS, 8)
    np.testing.assert_allclose(scores.logits[2].numpy(), masked_logits(full[2])[0].numpy(), rtol=1e-5)
    np.testing.assert_allclose(scores.logits[0].numpy(), scores.baseline_logits.numpy())  # not run


@pytest.mark.parametrize("bad, message", [
    ({"samples": 0}, "samples must be"), ({"samples": 2, "keep": "both"}, "inside the mask only"),
    ({"noise": -1.0}, "noise must be"), ({"top_variance": 0.0}, "top_variance must be"),
    ({"integration": "steps"}, "integration must be"),
])
def test_bad_sampling_specs_say_what_is_allowed(bad, message):
    with pytest.raises(CamError, match=message):
        MaskSpec("layer", **bad)
