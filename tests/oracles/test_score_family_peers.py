"""SS-CAM and IS-CAM against torchcam 0.5.0's SSCAM and ISCAM as oracles, on the three two-object photos × three
classes (top, second object, negative logit), with our parameters set to the peers' definitions (the cards' peers).

Definitions checked against the installed source of torchcam 0.5.0 (torchcam/methods/activation.py):
- both weight a channel by a softmax over the channels of the class's logits averaged over the samples (ours:
  weights="logit softmax"; subtracting the unmasked input's logit, as torchcam does, is a constant under the
  softmax), scale masks min-max at the layer's resolution before upsampling (ours after: the masks differ by a few
  hundredths at the cells' edges), and keep the input where the mask is (our zero baseline).
- SSCAM adds N(0, σ²) noise at the input's resolution to each channel's upsampled mask, a fresh draw per sample and
  channel (σ = 2 as ours; torchcam draws 35 samples by default, ours 10: both run 2 here). Its noise comes from
  torch's global generator, ours from our seed, so the peer is handed our noise: its `_distrib.sample` returns our
  seeded noise of sample i on its i-th call, which makes the two maps the same definition on the same draws.
- ISCAM scales sample i's mask by 1/N + 2/N + … + i/N (ours: integration="cumulative"; our default, the paper's
  i/N, is checked in tests/references/test_score_family_papers.py).
Maps are compared at the layer's resolution after the ReLU (torchcam's maps are rectified and min-max scaled)."""

from __future__ import annotations

import pytest
import torch
from torchcam.methods import ISCAM, SSCAM

from cam_core.inputs.masking import mask_noise
from tests.conftest import TWO_OBJECT_PHOTOS, pearson, photo_classes, two_object_photo
from tests.oracles.conftest import trainable_copy

LAYER = "features.6"  # 32 channels at 28×28: the peers rerun every masked pass for every class
SAMPLES = 2
SIGMA = 2.0
SEED = 0
R_MIN = 0.99
KINDS = ("top", "second", "negative")


class OurNoise:
    """Stands in for torchcam's noise distribution: on its i-th call, sample i's noise of every channel, as
    cam_core.inputs.masking.mask_noise draws it from our seed."""

    def __init__(self) -> None:
        self.calls = 0

    def sample(self, shape: torch.Size) -> torch.Tensor:
        _, channels, size, _ = shape
        noise = torch.cat([mask_noise(SEED, self.calls, k, size, SIGMA) for k in range(channels)])[None]
        self.calls += 1
        return noise


@pytest.fixture(scope="module")
def peer_model(mobilenet) -> torch.nn.Module:
    return trainable_copy(mobilenet.model.module)


def peer_map(peer_model, model_input: torch.Tensor, kind: type, target: int) -> torch.Tensor:
    options = {"std": SIGMA} if kind is SSCAM else {}
    with kind(peer_model, target_layer=LAYER, batch_size=32, num_samples=SAMPLES, **options) as extractor:
        if kind is SSCAM:
            extractor._distrib = OurNoise()
        with torch.no_grad():
            peer_model(model_input)
        return extractor(class_idx=target)[0][0]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", TWO_OBJECT_PHOTOS)
@pytest.mark.parametrize("method, peer, params", [
    ("sscam", SSCAM, {"noise": SIGMA, "seed": SEED}),
    ("iscam", ISCAM, {"integration": "cumulative"}),
])
def test_matches_torchcam_on_the_same_definition(mobilenet, peer_model, record_property, method, peer, params, name,
                                                 kind):
    analysis = mobilenet.analyze(two_object_photo(name))
    target = photo_classes(analysis, name)[kind]
    ours = analysis.cam(method, target=target, layer=LAYER, samples=SAMPLES, weights="logit softmax", **params)
    theirs = peer_map(peer_model, analysis.input.detach().clone(), peer, target)
    r = pearson(torch.from_numpy(ours.raw).clamp(min=0).numpy(), theirs.numpy(), f"{method} {name} {kind}")
    record_property("pearson", round(r, 5))
    assert r >= R_MIN, f"{method} {name} {kind}: Pearson r with torchcam's {peer.__name__} is {r:.4f} < {R_MIN}"
