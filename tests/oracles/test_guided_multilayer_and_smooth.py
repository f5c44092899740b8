"""Parity of guided backpropagation, Guided Grad-CAM, multi-layer Layer-CAM and Smooth Grad-CAM++ with the peers
(pytorch-grad-cam 1.5.7, torchcam 0.5.0), wherever the definitions match, on real photos.

As in test_pytorch_grad_cam_one_layer.py, every peer gets exactly our model input ``an.input`` (a clone: some peers set
``requires_grad`` on it), the same layers and class, and its own deep copy of the model with trainable parameters;
the shared model is never handed out.

Guided backpropagation (``GuidedBackpropReLUModel``). The peer swaps ``nn.ReLU`` modules only, so it is compared on
torchvision's resnet18 with random weights (``torch.manual_seed(0)``, plain ``nn.ReLU(inplace=True)``). Its rule
(pass the gradient where the forward input and the incoming gradient are both positive) is ours, so ``res.rgb``
(3, H, W) must equal its (H, W, 3) output up to float rounding: measured max |difference| 0.0 (bit-identical). The
plain input gradient is nowhere near it (Pearson 0.01–0.23), so the check discriminates. Guided Grad-CAM is
compared with the peer's README recipe, the guided gradient × ``GradCAM``'s 224×224 map: measured relative max
|difference| ≤ 7e-7. On mobilenet_v2 (ReLU6) the peer guides nothing and returns the plain input gradient; ours
guides ReLU6 too: that case is only documented, not compared. The shared model is left as it was.

Layer-CAM over several layers, three stacks per model: "pyramid", models.yaml's default (post-activation layers,
56×56 to 7×7); "non-negative", a 14×14 layer ending in a ReLU6 + the default layer; "signed", the layers the brief
names (mobilenet_v2 features.13 + features.18, efficientnet_lite0 blocks.4 + bn2), whose shallow layer is a linear
bottleneck with signed activations, so its Layer-CAM map Σ_k ReLU(∂y/∂A)·A is negative in places.
- torchcam ``LayerCAM`` computes each layer's ReLU(Σ_k ReLU(∂y/∂A)·A) at the layer's own resolution, min-max
  normalises it ((m - min) / (max + 1e-8)); ``LayerCAM.fuse_cams`` applies tanh(2·m), upsamples bilinearly
  (align_corners=False) to the largest map (the finest layer: 56×56 or 14×14) and takes the maximum. That is our
  fusion="max", gamma=2.0 at the same resolution, for the evidence for the class, P. Ours (``fuse_signed``, by
  design and pinned in tests/formulas/test_multilayer_path_and_guided_formulas.py) also fuses the layers' negative
  parts the same way, N, and returns raw = P - N. Asserted, with N built by torchcam's own ``_normalize`` and
  ``fuse_cams`` on its signed per-layer maps (``_relu=False``, not normalised; those equal our single-layer maps):
  raw == P - N (atol 1e-5; measured ≤ 1.8e-7). On the pyramid and non-negative stacks N is 0, so our positive map
  is exactly torchcam's (the paper's); on the signed stacks N reaches tanh(2) = 0.964 and our positive map
  ReLU(P - N) is 0.73–0.95 (max |difference|) away from torchcam's P, which is asserted (> 0.1) as a documented
  difference of definition.
- pytorch-grad-cam ``LayerCAM`` with several target layers takes each layer's ReLU map, min-max scales it, resizes it
  to 224×224 (cv2 bilinear), averages the layers and min-max scales the mean. Ours (fusion="mean") averages the
  scaled maps at the finest layer's resolution and upsamples after, so the comparison is a Pearson at 224×224 of
  our saliency (resized to 224) with the peer's map: measured 0.9997–0.9999 on the pyramids, 0.9981–0.9997 on the
  non-negative stacks (asserted ≥ 0.98), and 0.747–0.979 on the signed stacks, where our P - N differs from the
  peer's mean of the positive parts (asserted ≥ 0.70, a measured bound, not parity).

Smooth Grad-CAM++ (torchcam ``SmoothGradCAMpp``) with samples=4, sigma=0.1, seed=0, at each model's default layer
and at an inner layer (mobilenet_v2 features.17, efficientnet_lite0 blocks.6). torchcam gets our input and, through
a patched ``_distrib.sample``, call by call the noise we drew: ``path_inputs(an.input, spec) - an.input`` with the
spec of the card's ``path_spec`` (our sigma is a fraction of the input's value range, so that noise has standard
deviation sigma × range; torchcam's ``std`` is absolute and is set to that product). ``an.input + noise`` is checked to
give our noisy rows bit for bit. Then:
1. torchcam's per-sample layer gradients (its ``hook_g`` after each backward) equal ours (``an.path(spec, c)``).
   We run the noisy copies as one batch and torchcam one per pass, so activations differ by float rounding
   (~1e-6); measured relative L2 difference ≤ 1.4e-7, except mobilenet_v2 features.17 on coffee where that rounding
   flips a ReLU6 clamp of features.18: one of the 49 positions of one sample moves (all its channels, by up to 1.4%
   of the largest entry; L2 2.4e-3). Asserted per sample: L2 ≤ 5e-3, at most one position beyond rtol 1e-4, and
   (inner layers) each of ours is ≥ 0.1 (measured ≥ 0.29) away in L2 from torchcam's other samples, so a wrong
   noise row or order fails. At the default layers (global average pool → linear head) the gradient does not
   depend on the input at all, so all samples' gradients are identical (asserted): there our Smooth Grad-CAM++ is
   exactly Grad-CAM++ (measured max |difference| 0.0), and only the inner layers test the noise.
2. torchcam deviates from the paper, read from its ``_compute_smoothgrad_weights``: α's denominator uses the
   channel scalar Σ_ab(A_ab·D3_ab) instead of Σ_ab A_ab · D3_ij, the ReLU(gradient) in the weights is the last noisy
   sample's gradient, not the average D1, its eps is 1e-8 (ours 1e-7), and its map weights the last noisy sample's
   activations (its activation hook stays on during the noisy passes), not the clean image's. (At the default
   layers the gradient is constant, so only the eps and the noisy activations remain.) So the maps differ: measured
   Pearson of our positive map with torchcam's, at layer resolution: default layers 0.754–0.981, inner layers
   0.692–0.962. Asserted lower bounds 0.72 and 0.65.
3. That variant, written here, reproduces torchcam's map from torchcam's own captured tensors (measured max
   |difference| 0.0, asserted 1e-6: the transcription is exact) and from our cached tensors (clean activations,
   per-sample gradients and noisy activations of ``an.path``): measured ≤ 9e-7 at the default layers and ≤ 1.2e-3
   at the inner ones (the batch rounding of 1.), asserted 1e-5 and 5e-3. The maps differ by the definition only.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pytorch_grad_cam import GradCAM, GuidedBackpropReLUModel
from pytorch_grad_cam import LayerCAM as PgcLayerCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from skimage import data
from torch import nn
from torchcam.methods import LayerCAM as TorchcamLayerCAM
from torchcam.methods import SmoothGradCAMpp

from cam_core import Explainer
from cam_core.inputs.perturbed import path_inputs
from cam_core.passes.guided_copy import GuidedActivation
from cam_core.registry import get_method
from tests.conftest import pearson
from tests.oracles.conftest import trainable_copy

IMAGES = ("chelsea", "coffee")
OTHER_CLASS = {"chelsea": 282, "coffee": 968}  # tiger cat, cup
# The random resnet18 ranks class 238 first on both photos; its Grad-CAM of class 968 on coffee is negative
# everywhere (a blank gate), so its second class is 282 on both.
RANDOM_OTHER_CLASS = {"chelsea": 282, "coffee": 282}
CLASSES = ("top1", "other")

# Layer-CAM stacks, shallow to deep. "signed": the brief's layers, a linear bottleneck (signed activations) below the
# last layer; "non-negative": a layer of the same 14×14 resolution that ends in a ReLU6; "pyramid": models.yaml's
# default stack of the multi-layer methods (post-activation layers, one per resolution, read at run time).
LAYER_SETS = {
    ("mobilenet_v2", "signed"): ("features.13", "features.18"),
    ("mobilenet_v2", "non-negative"): ("features.13.conv.1", "features.18"),
    ("efficientnet_lite0", "signed"): ("blocks.4", "bn2"),
    ("efficientnet_lite0", "non-negative"): ("blocks.4.2.bn2", "bn2"),
}
LAYER_KINDS = ("pyramid", "non-negative", "signed")
GAMMA = 2.0  # torchcam's LayerCAM._scale_cams default
PEARSON_THRESHOLD = 0.98
SIGNED_MEAN_BOUND = 0.70  # measured minimum 0.747 (mobilenet_v2 chelsea 285): the definitions differ there

# Smooth Grad-CAM++: (default layer, inner layer whose gradient depends on the input).
SMOOTH_LAYERS = {"mobilenet_v2": ("features.18", "features.17"), "efficientnet_lite0": ("bn2", "blocks.6")}
SMOOTH = {"samples": 4, "sigma": 0.1, "seed": 0}
TORCHCAM_EPS = 1e-8
SMOOTH_PEARSON_BOUND = {"default": 0.72, "inner": 0.65}  # measured minima 0.754 and 0.692
SMOOTH_VARIANT_ATOL = {"default": 1e-5, "inner": 5e-3}  # measured maxima 9e-7 and 1.2e-3


@cache
def photo(name: str) -> np.ndarray:
    return getattr(data, name)()


def class_for(an, image: str, which: str, others: dict[str, int] = OTHER_CLASS) -> int:
    top1 = an.target(None)
    if which == "top1":
        return top1
    other = others[image]
    assert other != top1, f"class {other} is the top-1 class of {image}; pick another 'other' class"
    return other


def plain_input_gradient(model: nn.Module, model_input: torch.Tensor, target: int) -> np.ndarray:
    """The (3, H, W) ordinary gradient of target's logit at the input."""
    leaf = model_input.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(leaf)[0, target], leaf)
    return grad[0].numpy()


# ---------------------------------------------------------------------------------------------------------------
# Guided backpropagation and Guided Grad-CAM: resnet18 with random weights (plain nn.ReLU, which the peer swaps).


@pytest.fixture(scope="module")
def random_resnet() -> Explainer:
    torch.manual_seed(0)
    return Explainer("resnet18", weights="random")


@pytest.fixture(scope="module")
def resnet_peer(random_resnet: Explainer) -> nn.Module:
    return trainable_copy(random_resnet.model.module)


def peer_guided(model: nn.Module, model_input: torch.Tensor, target: int) -> np.ndarray:
    """GuidedBackpropReLUModel's gradient as (3, H, W) (it swaps nn.ReLU in model and swaps plain ReLUs back)."""
    output = GuidedBackpropReLUModel(model, device="cpu")(model_input.clone(), target_category=target)
    return np.ascontiguousarray(output.transpose(2, 0, 1))


def peer_gradcam_224(model: nn.Module, layer: str, model_input: torch.Tensor, target: int) -> np.ndarray:
    cam = GradCAM(model=model, target_layers=[model.get_submodule(layer)])
    try:
        return cam(input_tensor=model_input.clone(), targets=[ClassifierOutputTarget(target)])[0]
    finally:
        cam.activations_and_grads.release()


@pytest.mark.parametrize("which", CLASSES)
@pytest.mark.parametrize("image", IMAGES)
def test_guided_backprop_matches_pytorch_grad_cam(random_resnet, resnet_peer, image, which):
    an = random_resnet.analyze(photo(image))
    target = class_for(an, image, which, RANDOM_OTHER_CLASS)
    what = f"resnet18 (random) {image} class {target} guidedbackprop"
    res = an.cam("guidedbackprop", target=target)
    theirs = peer_guided(resnet_peer, an.input, target)

    assert res.rgb is not None and res.rgb.shape == theirs.shape == (3, *an.input.shape[-2:]), what
    scale = float(np.abs(theirs).max())
    assert scale > 0, f"{what}: the peer's guided gradient is zero"
    np.testing.assert_allclose(res.rgb, theirs, rtol=1e-5, atol=1e-6 * scale, err_msg=what)
    # The check discriminates: the ordinary input gradient is far from the guided one.
    plain = plain_input_gradient(resnet_peer, an.input, target)
    assert np.abs(plain - theirs).max() > 0.1 * scale, f"{what}: guided and plain gradients coincide"


@pytest.mark.parametrize("which", CLASSES)
@pytest.mark.parametrize("image", IMAGES)
def test_guided_gradcam_matches_pytorch_grad_cam_recipe(random_resnet, resnet_peer, image, which):
    """The peer's README: guided gradient × GradCAM's 224×224 map (min-max scaled after the resize, as our gate)."""
    an = random_resnet.analyze(photo(image))
    target = class_for(an, image, which, RANDOM_OTHER_CLASS)
    what = f"resnet18 (random) {image} class {target} guidedgradcam"
    res = an.cam("guidedgradcam", target=target)
    theirs = peer_guided(resnet_peer, an.input, target) * peer_gradcam_224(
        resnet_peer, random_resnet.default_layer, an.input, target
    )[None]
    assert res.rgb is not None and res.rgb.shape == theirs.shape, what
    scale = float(np.abs(theirs).max())
    assert scale > 0, f"{what}: the peer's Guided Grad-CAM is zero"
    np.testing.assert_allclose(res.rgb, theirs, rtol=1e-4, atol=1e-5 * scale, err_msg=what)


def test_shared_resnet_untouched_by_guided_passes(random_resnet, resnet_peer):
    """After a guided map and a peer run, the shared model still has its in-place nn.ReLU modules, frozen
    parameters, no hooks and the same logits; the guiding lives in a private copy."""
    an = random_resnet.analyze(photo("chelsea"))
    an.cam("guidedbackprop", target=OTHER_CLASS["chelsea"])
    peer_guided(resnet_peer, an.input, OTHER_CLASS["chelsea"])

    module = random_resnet.model.module
    relus = [m for m in module.modules() if type(m) is nn.ReLU]
    assert len(relus) == 9 and all(m.inplace for m in relus), "resnet18's shared ReLUs were replaced or changed"
    assert not any(isinstance(m, GuidedActivation) for m in module.modules()), "guided wrappers in the shared model"
    assert not [n for n, p in module.named_parameters() if p.requires_grad], "shared parameters now require grad"
    assert not [n for n, m in module.named_modules() if m._forward_hooks or m._backward_hooks], "hooks left behind"
    guided = random_resnet.guided_model()
    assert guided.module is not module and guided.guided == 9
    with torch.no_grad():
        logits = module(an.input)[0]
    torch.testing.assert_close(logits, an.logits, rtol=1e-5, atol=1e-5)


def test_peer_does_not_guide_relu6_on_mobilenet_v2(mobilenet):
    """Why the guided comparison runs on resnet18: GuidedBackpropReLUModel swaps nn.ReLU only, so on mobilenet_v2
    (ReLU6) its output is the plain input gradient, while ours guides the ReLU6 modules."""
    explainer = mobilenet
    an = explainer.analyze(photo("chelsea"))
    target = an.target(None)
    peer_model = trainable_copy(explainer.model.module)
    theirs = peer_guided(peer_model, an.input, target)
    plain = plain_input_gradient(peer_model, an.input, target)
    scale = float(np.abs(plain).max())
    np.testing.assert_allclose(theirs, plain, rtol=1e-4, atol=1e-6 * scale)
    ours = an.cam("guidedbackprop", target=target).rgb
    assert pearson(ours, theirs, "mobilenet_v2 guided vs the peer's unguided gradient") < 0.9


# ---------------------------------------------------------------------------------------------------------------
# Layer-CAM over several layers: torchcam (max of tanh-scaled maps) and pytorch-grad-cam (mean).


def torchcam_layercam(model: nn.Module, layers, model_input: torch.Tensor, target: int, signed: bool = False):
    """torchcam's per-layer Layer-CAM maps, (1, h, w) each: ReLU'd and normalised to [0, 1] as fuse_cams expects
    them, or (signed=True) the raw Σ_k ReLU(gradient)·activation."""
    with TorchcamLayerCAM(model, list(layers)) as extractor:
        if signed:
            extractor._relu = False
        scores = model(model_input.clone())
        cams = extractor(class_idx=target, scores=scores, normalized=not signed)
    return [cam.detach() for cam in cams]


def stack_for(explainer: Explainer, kind: str) -> tuple[str, ...]:
    return tuple(explainer.model.pyramid()) if kind == "pyramid" else LAYER_SETS[explainer.name, kind]


def check_layer_set(maps: list[np.ndarray], kind: str, what: str) -> None:
    """The stack is what its kind says: no negative Layer-CAM value below a non-negative set or the pyramid (whose
    layers models.yaml takes after an activation), some in a signed set."""
    negative = [float(m.min()) < 0 for m in maps]
    if kind == "signed":
        assert any(negative), f"{what}: no layer of the signed set has negative values; the set tests nothing"
    else:
        assert not any(negative), f"{what}: a layer of the {kind} set has negative Layer-CAM values"


@pytest.mark.parametrize("which", CLASSES)
@pytest.mark.parametrize("image", IMAGES)
@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_layercam_fused_max_matches_torchcam(explainer, peer_model, kind, image, which):
    layers = stack_for(explainer, kind)
    an = explainer.analyze(photo(image))
    target = class_for(an, image, which)
    what = f"{explainer.name} {image} class {target} layercam {'+'.join(layers)} fusion=max"

    # The same per-layer maps: torchcam's gradient × activation at each layer is ours.
    signed = torchcam_layercam(peer_model, layers, an.input, target, signed=True)
    for layer, theirs in zip(layers, signed, strict=True):
        single = an.cam("layercam", target=target, layer=layer).raw
        scale = float(np.abs(single).max())
        np.testing.assert_allclose(single, theirs[0].numpy(), rtol=1e-4, atol=1e-5 * scale, err_msg=f"{what} {layer}")
    check_layer_set([s[0].numpy() for s in signed], kind, what)

    res = an.cam("layercam", target=target, layers=list(layers), fusion="max", gamma=GAMMA)
    fused = TorchcamLayerCAM.fuse_cams(torchcam_layercam(peer_model, layers, an.input, target)).numpy()[0]
    finest = max(s.shape[1] for s in signed), max(s.shape[2] for s in signed)
    assert fused.shape == res.raw.shape == finest, f"{what}: torchcam fused at {fused.shape}, ours at {res.raw.shape}"
    # torchcam's normalisation and fusion applied to the layers' negative parts: all zero for a non-negative stack.
    against = TorchcamLayerCAM.fuse_cams([TorchcamLayerCAM._normalize((-s).clamp(min=0)) for s in signed]).numpy()[0]
    if kind == "signed":
        assert float(against.max()) > 0.5, f"{what}: the fused negative evidence is only {float(against.max()):.3g}"
        # Our positive map is ReLU(P - N), not the paper's (and torchcam's) P: measured up to 0.95 apart.
        assert float(np.abs(np.maximum(res.raw, 0) - fused).max()) > 0.1, f"{what}: the negative part changed nothing"
    else:
        assert not against.any(), f"{what}: a non-negative stack has fused negative evidence"
    np.testing.assert_allclose(
        res.raw, fused - against, rtol=0, atol=1e-5,
        err_msg=f"{what}: ours is not torchcam's fused map P minus the same fusion N of the layers' negative parts",
    )


@pytest.mark.parametrize("which", CLASSES)
@pytest.mark.parametrize("image", IMAGES)
@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_layercam_mean_matches_pytorch_grad_cam(explainer, peer_model, kind, image, which):
    layers = stack_for(explainer, kind)
    an = explainer.analyze(photo(image))
    target = class_for(an, image, which)
    what = f"{explainer.name} {image} class {target} layercam {'+'.join(layers)} fusion=mean"

    res = an.cam("layercam", target=target, layers=list(layers), fusion="mean")
    cam = PgcLayerCAM(model=peer_model, target_layers=[peer_model.get_submodule(name) for name in layers])
    try:
        theirs = cam(input_tensor=an.input.clone(), targets=[ClassifierOutputTarget(target)])[0]
    finally:
        cam.activations_and_grads.release()
    side = tuple(an.input.shape[-2:])
    assert theirs.shape == side, f"{what}: the peer's map is {theirs.shape}"
    ours = F.interpolate(
        torch.from_numpy(res.saliency)[None, None], size=side, mode="bilinear", align_corners=False
    )[0, 0].numpy()
    r = pearson(ours, theirs, what)
    if kind == "signed":
        # Our positive map is ReLU(P - N); the peer averages the positive parts only (P).
        assert r >= SIGNED_MEAN_BOUND, f"{what}: Pearson with pytorch-grad-cam is {r:.4f} < {SIGNED_MEAN_BOUND}"
    else:
        assert r >= PEARSON_THRESHOLD, (
            f"{what}: Pearson with pytorch-grad-cam's 224×224 multi-layer map is {r:.4f} < {PEARSON_THRESHOLD}"
        )


# ---------------------------------------------------------------------------------------------------------------
# Smooth Grad-CAM++ against torchcam, with torchcam fed our noise.


def run_torchcam_smooth(
    model: nn.Module, layer: str, model_input: torch.Tensor, target: int, noise: torch.Tensor, std: float
) -> dict[str, object]:
    """torchcam's SmoothGradCAMpp map for target, its sample() answered call by call with our noise rows; with the
    clean activations it captured, and per sample the layer gradient and noisy activations after each backward."""
    grads, activations, calls = [], [], []
    with SmoothGradCAMpp(model, layer, num_samples=noise.shape[0], std=std) as extractor:

        def sample(shape):
            calls.append(tuple(shape))
            index = len(calls) - 1
            return noise[index : index + 1].clone()

        extractor._distrib.sample = sample
        backprop = extractor._backprop

        def spy(*args, **kwargs):
            backprop(*args, **kwargs)
            grads.append(extractor.hook_g[0][0].clone())
            activations.append(extractor.hook_a[0][0].clone())

        extractor._backprop = spy
        model(model_input.clone())
        clean = extractor.hook_a[0][0].clone()
        cam = extractor(class_idx=target)[0][0].detach()
    return {
        "map": cam,
        "calls": calls,
        "clean": clean,
        "gradients": torch.stack(grads),
        "activations": torch.stack(activations),
    }


def torchcam_smooth_variant(clean: torch.Tensor, gradients: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """torchcam 0.5.0's Smooth Grad-CAM++ map from (C, h, w) clean activations, (n, C, h, w) per-sample gradients
    and the last sample's (C, h, w) activations:
        D_p = (1/n) Σ_s g_s^p,   α = D_2 / (2 D_2 + Σ_ab(A_ab · D_3,ab) + 1e-8),   w = Σ_ij α · ReLU(g_n),
        L = ReLU(Σ_k w_k A_k(x + ε_n)),   normalised (L - min) / (max + 1e-8)."""
    second = torch.zeros_like(clean)
    third = torch.zeros_like(clean)
    for gradient in gradients:  # torchcam's accumulation order
        second.add_(gradient.pow(2))
        third.add_(gradient.pow(3))
    second.div_(gradients.shape[0])
    third.div_(gradients.shape[0])
    alpha = second / (2 * second + (third * clean).flatten(1).sum(-1)[:, None, None] + TORCHCAM_EPS)
    weights = (alpha * torch.relu(gradients[-1])).flatten(1).sum(-1)
    cam = torch.relu(torch.nansum(weights[:, None, None] * last, dim=0))
    cam = cam - cam.amin()
    return cam / (cam.amax() + TORCHCAM_EPS)


@pytest.mark.parametrize("which", CLASSES)
@pytest.mark.parametrize("image", IMAGES)
@pytest.mark.parametrize("depth", ("default", "inner"))
def test_smoothgradcampp_against_torchcam(explainer, peer_model, depth, image, which):
    layer = SMOOTH_LAYERS[explainer.name][0 if depth == "default" else 1]
    an = explainer.analyze(photo(image))
    target = class_for(an, image, which)
    what = f"{explainer.name} {image} class {target} smoothgradcampp at {layer}"
    res = an.cam("smoothgradcampp", target=target, layer=layer, **SMOOTH)

    spec = get_method("smoothgradcampp").card.path_spec(layer, SMOOTH)
    rows = path_inputs(an.input, spec)
    noise = rows - an.input
    span = float(an.input.max() - an.input.min())
    std = SMOOTH["sigma"] * span
    assert abs(float(noise.std()) / std - 1) < 0.01, f"{what}: our noise's std is {float(noise.std()):.4f}, not {std}"
    assert torch.equal(an.input + noise, rows), f"{what}: torchcam's input + noise would not be our noisy rows"
    path = an.path(spec, target)
    peer = run_torchcam_smooth(peer_model, layer, an.input, target, noise, std)
    assert peer["calls"] == [tuple(an.input.shape)] * SMOOTH["samples"], f"{what}: torchcam drew {peer['calls']}"
    torch.testing.assert_close(peer["clean"], an.activations(layer), rtol=1e-4, atol=1e-5)

    # 1. The same per-sample gradients at the layer.
    ours_g, theirs_g = path.gradients, peer["gradients"]
    assert ours_g.shape == theirs_g.shape, f"{what}: gradients {tuple(ours_g.shape)} vs {tuple(theirs_g.shape)}"
    scale = float(ours_g.abs().max())
    for s in range(ours_g.shape[0]):
        relative = float((theirs_g[s] - ours_g[s]).norm() / ours_g[s].norm())
        off = ~torch.isclose(theirs_g[s], ours_g[s], rtol=1e-4, atol=1e-5 * scale)
        positions = int(off.any(dim=0).sum())  # a clamp flipped downstream moves a whole position's gradient
        assert relative <= 5e-3 and positions <= 1, (
            f"{what}: sample {s}: torchcam's gradient differs from ours by {relative:.2e} (relative L2), at "
            f"{positions} of {off[0].numel()} positions beyond rtol 1e-4"
        )
    if depth == "default":
        # Global average pool → linear: the gradient at this layer does not depend on the input.
        assert torch.equal(ours_g, ours_g[:1].expand_as(ours_g)), f"{what}: the gradients differ between samples"
    else:
        for s in range(ours_g.shape[0]):
            for t in range(ours_g.shape[0]):
                if s != t:
                    apart = float((theirs_g[t] - ours_g[s]).norm() / ours_g[s].norm())
                    assert apart >= 0.1, f"{what}: our sample {s} is {apart:.3f} from torchcam's sample {t}"

    # 2. The maps differ by torchcam's definition: a measured lower bound on their agreement.
    theirs = peer["map"].numpy()
    assert theirs.shape == res.raw.shape, f"{what}: torchcam's map is {theirs.shape}"
    r = pearson(np.maximum(res.raw, 0), theirs, what)
    bound = SMOOTH_PEARSON_BOUND[depth]
    assert r >= bound, f"{what}: Pearson with torchcam's SmoothGradCAMpp is {r:.4f} < {bound}"

    # 3. torchcam's variant, written out: from its own tensors, then from ours.
    own = torchcam_smooth_variant(peer["clean"], theirs_g, peer["activations"][-1]).numpy()
    np.testing.assert_allclose(own, theirs, atol=1e-6, err_msg=f"{what}: the variant misses torchcam's own map")
    from_ours = torchcam_smooth_variant(an.activations(layer), ours_g, path.activations[-1]).numpy()
    np.testing.assert_allclose(
        from_ours, theirs, atol=SMOOTH_VARIANT_ATOL[depth],
        err_msg=f"{what}: torchcam's formula on our cached tensors misses torchcam's map",
    )
