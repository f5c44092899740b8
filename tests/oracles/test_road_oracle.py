"""Noisy linear imputation against pytorch-grad-cam's NoisyLinearImputer (taken from ROAD's authors' code, the
reference) and Quantus's noisy_linear_imputation (adapted from it), with no noise: the same weights and system, so
the same imputed image. (Their ROAD scores are not compared: Quantus counts correct predictions, pytorch-grad-cam
differences of probabilities, ours is the class probability.)"""

from __future__ import annotations

import pytest
import torch
from pytorch_grad_cam.metrics.road import NoisyLinearImputer
from quantus.functions.perturb_func import noisy_linear_imputation as quantus_imputation

from cam_core.evaluation.metrics import pixel_ranks
from cam_core.evaluation.road import noisy_linear_imputation

EGYPTIAN_CAT = 285


@pytest.mark.parametrize("share", [0.3, 0.8])
def test_imputation_matches_the_authors_on_a_real_photo(mobilenet, chelsea, share):
    analysis = mobilenet.analyze(chelsea)
    model_input = analysis.input[:, :, 80:144, 80:144]  # a 64 × 64 crop keeps the reference's lil_matrix quick
    rank = pixel_ranks(analysis.cam("gradcam", target=EGYPTIAN_CAT).saliency, model_input)
    removed = rank < round(share * rank.numel())
    ours = noisy_linear_imputation(model_input, removed, noise=0.0)
    theirs = NoisyLinearImputer(noise=0.0)(model_input[0], (~removed).to(torch.uint8))
    torch.testing.assert_close(ours[0], theirs, rtol=0, atol=1e-5)
    assert not torch.equal(ours, model_input)
    quantus = quantus_imputation(model_input[0].numpy(), torch.flatten(removed).nonzero()[:, 0].numpy(), noise=0.0)
    torch.testing.assert_close(ours[0], torch.from_numpy(quantus).float(), rtol=0, atol=1e-5)


def test_imputation_matches_the_authors_on_scattered_pixels():
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 20, 30, generator=generator)
    removed = torch.rand(20, 30, generator=generator) < 0.6
    ours = noisy_linear_imputation(image, removed, noise=0.0)
    theirs = NoisyLinearImputer(noise=0.0)(image[0], (~removed).to(torch.uint8))
    torch.testing.assert_close(ours[0], theirs, rtol=0, atol=1e-5)
