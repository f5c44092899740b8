"""Parity with pytorch-grad-cam (grad-cam==1.5.7) as an oracle, on the embedded models and real photos.

The peer gets exactly what our model saw (``an.input``), the same target layer and ``ClassifierOutputTarget(c)``.
Maps are compared at the layer's resolution (7×7), after ReLU: the peer's ``BaseCAM.compute_cam_per_layer`` resizes
to ``self.get_target_width_height(input_tensor)``, so overriding that on the instance with the layer's (w, h) makes
its output the 7×7 post-ReLU min-max map (``cv2.resize`` to the same size is a copy; the min-max scaling does not
change a Pearson correlation).

Definitions checked against the installed source of 1.5.7:
- gradcam, xgradcam, hirescam, layercam: the same formulas as ours (xgradcam: the same eps 1e-7).
- gradcampp: the same closed form (Eq. 19 of the paper, α zeroed where the gradient is 0, ReLU of the gradient),
  but the peer's eps in α's denominator is 1e-6 and ours 1e-7. At the last layer the gradients are ~1e-3, so g² is
  of the order of eps and the channel weights differ slightly; measured Pearson stays ≥ 0.999, well inside 0.98.
- eigencam, eigengradcam: the peer's ``get_2d_projection`` centres each channel and projects on the first right
  singular vector, as we do, but leaves SVD's sign arbitrary; ours is deliberately flipped to correlate positively
  with the channels' mean map. Hence |Pearson| between the signed maps, plus a separate check of our sign rule.

The peer needs the target layer's output to require grad (its gradient hook is skipped otherwise and
``loss.backward()`` raises "element 0 of tensors does not require grad"): our shared model has
``requires_grad=False`` parameters, so the peer gets its own deep copy with trainable parameters.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import pytorch_grad_cam
import torch
import torch.nn.functional as F
from PIL import Image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from skimage import data

from cam_core import Explainer, methods
from tests.conftest import pearson

# From the cards: every single-layer method whose card names a pytorch-grad-cam peer computed from one pass and its
# gradients (the masked-input and guided peers have their own files), with our parameters that make it the peer's.
CARDS = {card.id: card for card in methods()
         if card.needs <= {"gradients", "layer_stack"} and not card.pyramid_by_default and card.resolution == "layer"}
PEER_CARDS = {method: peer for method, card in CARDS.items() for peer in card.peers
              if peer.library == "pytorch-grad-cam"}
PEERS = {method: getattr(pytorch_grad_cam, peer.name) for method, peer in PEER_CARDS.items()}
PEER_DEFINITION = {method: dict(peer.params) for method, peer in PEER_CARDS.items() if peer.params}
EIGEN = tuple(method for method in PEERS if "Eigen" in PEERS[method].__name__)
GRADIENT_METHODS = tuple(m for m in PEERS if CARDS[m].needs_gradients)

DOG = Path("/usr/share/darknet/data/dog.jpg")

# The second class per photo: a plausible runner-up or a class that is clearly absent.
OTHER_CLASS = {"chelsea": 282, "coffee": 968, "dog": 717}  # tiger cat, cup, pickup
CLASSES = ("top1", "other")

THRESHOLD = 0.98


@lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    if name == "chelsea":
        return data.chelsea()
    if name == "coffee":
        return data.coffee()
    if name == "dog":
        return np.asarray(Image.open(DOG).convert("RGB"))
    raise KeyError(name)


def analysis_of(explainer: Explainer, image: str):
    if image == "dog" and not DOG.exists():
        pytest.skip("Debian package darknet (dog.jpg) is not installed")
    return explainer.analyze(photo(image))


def class_for(an, image: str, which: str) -> int:
    top1 = an.target(None)
    if which == "top1":
        return top1
    other = OTHER_CLASS[image]
    assert other != top1, f"class {other} is the top-1 class of {image}; pick another 'other' class"
    return other


def run_peer(
    method: str,
    model: torch.nn.Module,
    layer_name: str,
    model_input: torch.Tensor,
    target: int,
    size: tuple[int, int] | None,
) -> dict[str, np.ndarray]:
    """The peer's map for target (resized to size=(w, h), or to the input's size when None), with the signed map
    its get_cam_image returned before ReLU and the activations and gradients it captured."""
    cam = PEERS[method](model=model, target_layers=[model.get_submodule(layer_name)])
    captured: dict[str, np.ndarray] = {}
    try:
        if size is not None:
            cam.get_target_width_height = lambda _input: size
        original = cam.get_cam_image

        def spy(*args, **kwargs):
            signed = original(*args, **kwargs)
            captured["signed"] = np.array(signed[0], dtype=np.float64)
            return signed

        cam.get_cam_image = spy
        output = cam(input_tensor=model_input.clone(), targets=[ClassifierOutputTarget(target)])
        captured["map"] = np.array(output[0], dtype=np.float64)
        captured["activations"] = cam.activations_and_grads.activations[0][0].numpy().copy()
        if cam.activations_and_grads.gradients:
            captured["gradients"] = cam.activations_and_grads.gradients[0][0].numpy().copy()
    finally:
        cam.activations_and_grads.release()
    return captured


def assert_same_inputs(an, peer: dict[str, np.ndarray], target: int, method: str, what: str) -> None:
    """The peer captured the same activations (and gradients) at the layer as our Analysis."""
    ours = an.activations().numpy()
    assert peer["activations"].shape == ours.shape, f"{what}: peer activations {peer['activations'].shape}"
    np.testing.assert_allclose(
        peer["activations"], ours, rtol=1e-4, atol=1e-5 * float(np.abs(ours).max()),
        err_msg=f"{what}: the peer saw different activations at the target layer",
    )
    if method in GRADIENT_METHODS:
        grads = an.gradients(target).numpy()
        assert "gradients" in peer, f"{what}: the peer recorded no gradient"
        np.testing.assert_allclose(
            peer["gradients"], grads, rtol=1e-4, atol=1e-5 * float(np.abs(grads).max()),
            err_msg=f"{what}: the peer's gradient of class {target} differs from ours",
        )


@pytest.mark.parametrize("method", tuple(PEERS))
@pytest.mark.parametrize("which", CLASSES)
@pytest.mark.parametrize("image", ("chelsea", "coffee", "dog"))
def test_layer_map_matches_pytorch_grad_cam(explainer, peer_model, image, which, method):
    an = analysis_of(explainer, image)
    target = class_for(an, image, which)
    res = an.cam(method, target=target, **PEER_DEFINITION.get(method, {}))
    height, width = res.raw.shape
    what = f"{explainer.name} {image} class {target} {method}"

    peer = run_peer(method, peer_model, explainer.default_layer, an.input, target, size=(width, height))
    assert peer["map"].shape == (height, width), f"{what}: peer map is {peer['map'].shape}, not the layer's size"
    assert_same_inputs(an, peer, target, method, what)

    if method in EIGEN:
        # Signed projections, sign-agnostic: the peer's SVD sign is arbitrary.
        r = pearson(res.raw, peer["signed"], what + " (signed projection)")
        assert abs(r) >= THRESHOLD, f"{what}: |Pearson| with the peer's get_2d_projection is {abs(r):.4f} < {THRESHOLD}"
        # Our sign rule (first_principal_component): positive correlation with the mean of the channels that are
        # decomposed — the activations for Eigen-CAM, gradient × activation for EigenGrad-CAM. For EigenGrad-CAM
        # this is not the activations' mean: on dog.jpg, class 717 (pickup), the map correlates at about -0.98 with
        # activations.mean(0) and positively with (gradient × activation).mean(0).
        decomposed = an.activations() if method == "eigencam" else an.gradients(target) * an.activations()
        mean_map = decomposed.mean(dim=0).numpy()
        s = pearson(res.raw, mean_map, what + " (sign rule)")
        assert s > 0, f"{what}: our signed map correlates negatively with the channels' mean map (Pearson {s:.4f})"
    else:
        r = pearson(np.maximum(res.raw, 0), peer["map"], what)
        assert r >= THRESHOLD, f"{what}: Pearson with pytorch-grad-cam's 7×7 map is {r:.4f} < {THRESHOLD}"


@pytest.mark.parametrize("which", CLASSES)
def test_gradcam_saliency_matches_pytorch_grad_cam_at_224(explainer, peer_model, which):
    an = analysis_of(explainer, "chelsea")
    target = class_for(an, "chelsea", which)
    res = an.cam("gradcam", target=target)
    what = f"{explainer.name} chelsea class {target} gradcam saliency"

    peer = run_peer("gradcam", peer_model, explainer.default_layer, an.input, target, size=None)
    side = an.input.shape[-2:]
    assert peer["map"].shape == tuple(side), f"{what}: the peer's default map is {peer['map'].shape}"
    ours = F.interpolate(
        torch.from_numpy(res.saliency)[None, None], size=tuple(side), mode="bilinear", align_corners=False
    )[0, 0].numpy()
    r = pearson(ours, peer["map"], what)
    assert r >= THRESHOLD, f"{what}: Pearson with pytorch-grad-cam's 224×224 map is {r:.4f} < {THRESHOLD}"


def test_shared_model_left_untouched(explainer, peer_model):
    """The peer ran on its own copy: the shared model still has frozen parameters and no hooks left behind."""
    module = explainer.model.module
    assert peer_model is not module
    trainable = [name for name, p in module.named_parameters() if p.requires_grad]
    assert not trainable, f"{explainer.name}: shared parameters now require grad: {trainable[:5]}"
    hooked = [name for name, m in module.named_modules() if m._forward_hooks or m._backward_hooks]
    assert not hooked, f"{explainer.name}: hooks left on the shared model at {hooked[:5]}"
