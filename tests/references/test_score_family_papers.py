"""SS-CAM, IS-CAM and the faster Score-CAM against plain-torch re-implementations of their definitions (never calling
cam_core's method functions), on the three two-object photos × three classes (tests/references/conftest.py).

SS-CAM's noise is random, so the reference draws the very same noise: the noise of sample s of channel k is a
standard normal image from a torch.Generator seeded by numpy's SeedSequence([seed, s, k]), times σ (the scheme our
cards document for their seed); with the same noise the two maps agree to rounding, whatever the number of samples.
The masked passes run at features.6 (32 channels at 28×28) with two samples a channel, to keep the passes few; the
noise is the definition's σ = 2."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.conftest import TWO_OBJECT_PHOTOS
from tests.references.conftest import CLASS_KINDS, activations_and_gradients, check, ours, probabilities_of

LAYER = "features.6"
SAMPLES = 2
SIGMA = 2.0
SEED = 0
FASTER = 0.25  # the faster Score-CAM's fraction of channels


def channel_masks(acts: torch.Tensor, size) -> torch.Tensor:
    """Score-CAM's masks: each channel bilinearly upsampled to the input, min-max scaled (a constant one: zero)."""
    upsampled = F.interpolate(acts[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    flat = upsampled.flatten(1)
    low, high = flat.min(1).values, flat.max(1).values
    spread = torch.where(high > low, high - low, torch.ones_like(high))
    return torch.where((high > low)[:, None, None], (upsampled - low[:, None, None]) / spread[:, None, None], 0.0)


def seeded_noise(sample: int, channel: int, size) -> torch.Tensor:
    state = int(np.random.SeedSequence([SEED, sample, channel]).generate_state(1, np.uint64)[0])
    return torch.randn((1, *size), generator=torch.Generator().manual_seed(state)) * SIGMA


def mean_probabilities(ref, masks_of_sample) -> torch.Tensor:
    """The (C, classes) post-softmax probabilities of the input under each channel's mask, averaged over the
    samples; masks_of_sample(s) gives sample s's (C, S, S) masks (the baseline is the zero input)."""
    rows = torch.cat([ref.input * masks_of_sample(sample)[:, None] for sample in range(SAMPLES)])
    probabilities = probabilities_of(ref.model, rows)
    return probabilities.reshape(SAMPLES, -1, probabilities.shape[1]).mean(0)


def ref_sscam(ref, target):
    """Wang et al. 2020 (SS-CAM(1)): each channel's mask plus Gaussian noise N(0, σ²), N times; the weight is the
    class's probability averaged over the noisy masked inputs (as Score-CAM's authors weight); L = Σ_k w_k A^k."""
    acts, _ = activations_and_gradients(ref, LAYER, target)
    size = ref.input.shape[-2:]

    def scores():
        masks = channel_masks(acts, size)
        return mean_probabilities(ref, lambda s: masks + torch.cat([seeded_noise(s, k, size)
                                                                     for k in range(len(acts))]))

    return torch.einsum("k,khw->hw", ref.remember(("sscam", LAYER), scores)[:, target], acts)


def ref_iscam(ref, target):
    """Naidu et al. 2020: each channel's mask scaled by i/N for i = 1 … N; the weight is the class's probability
    averaged along that path; L = Σ_k w_k A^k."""
    acts, _ = activations_and_gradients(ref, LAYER, target)
    size = ref.input.shape[-2:]

    def scores():
        masks = channel_masks(acts, size)
        return mean_probabilities(ref, lambda s: masks * (s + 1) / SAMPLES)

    return torch.einsum("k,khw->hw", ref.remember(("iscam", LAYER), scores)[:, target], acts)


def ref_faster_scorecam(ref, target):
    """tf-keras-vis's Faster Score-CAM (max_N): only the channels of the largest standard deviation over the
    positions are scored (Score-CAM's authors' weights: the masked input's probability); the others weigh 0."""
    acts, _ = activations_and_gradients(ref, LAYER, target)
    kept = torch.argsort(acts.flatten(1).std(dim=1, unbiased=False), descending=True)[: round(FASTER * len(acts))]

    def scores():
        masks = channel_masks(acts[kept], ref.input.shape[-2:])
        return probabilities_of(ref.model, ref.input * masks[:, None])

    weights = ref.remember(("faster", LAYER), scores)[:, target]
    return torch.einsum("k,khw->hw", weights, acts[kept])


@pytest.mark.parametrize("kind", CLASS_KINDS)
@pytest.mark.parametrize("name", TWO_OBJECT_PHOTOS)
def test_sscam_follows_the_paper_with_the_same_noise(mobilenet, references, name, kind):
    ref = references[name]
    target = ref.classes[kind]
    result = ours(mobilenet, name, "sscam", target, layer=LAYER, samples=SAMPLES, noise=SIGMA, seed=SEED)
    check(result.raw, ref_sscam(ref, target), f"sscam {name} {kind}")


@pytest.mark.parametrize("kind", CLASS_KINDS)
@pytest.mark.parametrize("name", TWO_OBJECT_PHOTOS)
def test_iscam_follows_the_paper(mobilenet, references, name, kind):
    ref = references[name]
    target = ref.classes[kind]
    result = ours(mobilenet, name, "iscam", target, layer=LAYER, samples=SAMPLES)
    check(result.raw, ref_iscam(ref, target), f"iscam {name} {kind}")


@pytest.mark.parametrize("kind", CLASS_KINDS)
@pytest.mark.parametrize("name", TWO_OBJECT_PHOTOS)
def test_faster_scorecam_follows_tf_keras_vis(mobilenet, references, name, kind):
    ref = references[name]
    target = ref.classes[kind]
    result = ours(mobilenet, name, "scorecam", target, layer=LAYER, top_channels=FASTER)
    check(result.raw, ref_faster_scorecam(ref, target), f"scorecam faster {name} {kind}")


REFERENCED = {"sscam", "iscam"}
