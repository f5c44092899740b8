"""Occlusion and LIME against Captum (captum==0.9.0) as an oracle, on three two-object photos × three classes (the
top class, the second object, the lowest logit), each peer on its own trainable copy of mobilenet_v2.

- Occlusion: Captum's ``Occlusion`` with ``sliding_window_shapes=(3, w, w)``, ``strides=(3, s, s)``,
  ``baselines=0`` on the model's logits is our occlusion with score="logit": windows every s pixels until one
  reaches the border (the last ones cut off there), each pixel the mean drop over the windows covering it. A window
  of 100 with stride 50 includes such cut-off windows.
- LIME: Captum's ``Lime`` fitted by ``SkLearnRidge(alpha=1)`` (scikit-learn's Ridge with the sample weights, as
  ours), on the softmax of the model's output, with ``feature_mask`` our superpixels, ``perturb_func`` a generator
  of our on/off samples (drawn from the seed by lime_plan) and ``similarity_func`` exp(−d²/σ²) of the cosine
  distance to the all-on sample: the same samples, weights and fit, so the coefficients agree.
RISE has no peer among the installed libraries (pytorch-grad-cam, torchcam, captum): its reference is the authors'
code (tests/references/test_perturbation_papers.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum._utils.models.linear_model import SkLearnRidge
from captum.attr import Lime, Occlusion

from cam_core.inputs.input_perturbations import PerturbationSpec, input_picture, lime_plan
from tests.conftest import TWO_OBJECT_PHOTOS, pearson, photo_classes, two_object_photo
from tests.oracles.conftest import trainable_copy

R_MIN = 0.99
KINDS = ("top", "second", "negative")
OCCLUSION = {"window": 100, "stride": 50}
LIME = {"samples": 32, "segments": 16, "seed": 2}
KERNEL_WIDTH = 0.25
MEASURED: dict[str, list[float]] = {}


@pytest.fixture(scope="module", autouse=True)
def report():
    """`python -m pytest tests/oracles/test_perturbation_peers.py -s` prints the lowest r per method."""
    yield
    for method, values in sorted(MEASURED.items()):
        print(f"{method:10s} lowest r {min(values):.6f} over {len(values)} maps")


@pytest.fixture(scope="module")
def peer(mobilenet) -> torch.nn.Module:
    return trainable_copy(mobilenet.model.module)


@pytest.fixture(scope="module")
def photos(mobilenet) -> dict:
    """Each photo's Analysis and its three classes."""
    found = {}
    for name in TWO_OBJECT_PHOTOS:
        analysis = mobilenet.analyze(two_object_photo(name))
        found[name] = (analysis, photo_classes(analysis, name))
    return found


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", TWO_OBJECT_PHOTOS)
def test_occlusion_is_captums_on_the_logits(photos, peer, name, kind):
    analysis, classes = photos[name]
    target = classes[kind]
    ours = analysis.cam("occlusion", target=target, score="logit", **OCCLUSION).raw
    window, stride = OCCLUSION["window"], OCCLUSION["stride"]
    with torch.no_grad():
        theirs = Occlusion(peer).attribute(analysis.input.clone(), target=target, baselines=0.0,
                                           sliding_window_shapes=(3, window, window), strides=(3, stride, stride),
                                           perturbations_per_eval=8)
    theirs = theirs[0].numpy()
    assert np.allclose(theirs[0], theirs[1]) and np.allclose(theirs[0], theirs[2]), "one value per pixel"
    r = pearson(ours, theirs[0], f"occlusion {name} {kind}")
    MEASURED.setdefault("occlusion", []).append(r)
    assert r >= R_MIN, f"occlusion {name} {kind}: r = {r:.4f} with Captum's Occlusion"
    np.testing.assert_allclose(ours, theirs[0], atol=1e-3 * float(np.abs(theirs[0]).max()))


def captum_lime(peer: torch.nn.Module, analysis, target: int) -> np.ndarray:
    """Captum's Lime on our superpixels and our samples, with the cosine kernel and a ridge fit."""
    prep = analysis.explainer.spec.preprocessing
    spec = PerturbationSpec("lime", samples=LIME["samples"], segments=LIME["segments"], seed=LIME["seed"])
    plan = lime_plan(spec, input_picture(analysis.input, prep.mean, prep.std))

    def our_samples(_inputs, **_kwargs):
        for row in plan.samples:
            yield row[None].float()

    def cosine_kernel(_original, _perturbed, interpretable, **_kwargs):
        on = interpretable.sum()
        distance = 1.0 - torch.sqrt(on / interpretable.numel())
        return torch.exp(-distance**2 / KERNEL_WIDTH**2)

    lime = Lime(lambda x: torch.softmax(peer(x), dim=1), interpretable_model=SkLearnRidge(alpha=1.0),
                similarity_func=cosine_kernel, perturb_func=our_samples)
    with torch.no_grad():
        found = lime.attribute(analysis.input.clone(), target=target, baselines=0.0,
                               feature_mask=plan.segments.long()[None, None], n_samples=plan.count,
                               perturbations_per_eval=16)
    return found[0, 0].numpy()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", TWO_OBJECT_PHOTOS)
def test_lime_is_captums_with_our_samples_kernel_and_ridge(photos, peer, name, kind):
    analysis, classes = photos[name]
    target = classes[kind]
    ours = analysis.cam("lime", target=target, kernel_width=KERNEL_WIDTH, alpha=1.0, **LIME).raw
    theirs = captum_lime(peer, analysis, target)
    r = pearson(ours, theirs, f"lime {name} {kind}")
    MEASURED.setdefault("lime", []).append(r)
    assert r >= R_MIN, f"lime {name} {kind}: r = {r:.4f} with Captum's Lime"
