"""Every method against its paper: each reference below is a small re-implementation of the published equations (or
of the authors' code, where it exists), written in plain torch on a reference copy of the network, never calling
cam_core's method functions. Three real photos × three classes each: the top class, a second object in the photo
and the class with the lowest (negative) logit. Pearson r ≥ 0.99 between our raw map and the reference's, both before
the final ReLU (tests/references/conftest.py)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

from cam_core.inputs.masking import BLUR_SIGMA
from tests.conftest import TWO_OBJECT_PHOTOS
from tests.references.conftest import (
    CLASS_KINDS,
    MEASURED,
    R_MIN,
    Reference,
    activations_and_gradients,
    check,
    minmax,
    ours,
    pearson,
    probabilities_of,
    up,
)

SCORE_LAYER = "features.13"  # 96 channels: the masked-input references run one pass per channel
POLY_LAYERS = ("features.6", "features.10")  # 32 channels at 28×28, 64 at 14×14: Poly-CAM runs two passes per channel
POLY_VARIANTS = {"dog.jpg": ("PCAM±", "PCAM+"), "person.jpg": ("PCAM±", "PCAM−"), "kite.jpg": ("PCAM±",)}


# --- the references, one per paper ----------------------------------------------------------------------------------


def ref_cam(ref, target, layer):
    """Zhou et al. 2016: L = Σ_k w^c_k A^k with the linear classifier's weights."""
    acts, _ = activations_and_gradients(ref, layer, target)
    weight = ref.model.classifier[-1].weight[target].detach()
    return torch.einsum("k,khw->hw", weight, acts)


def ref_gradcam(ref, target, layer):
    """Selvaraju et al. 2017, eq. 1-2: α = spatial mean of ∂y/∂A; L = ReLU(Σ α A)."""
    acts, grads = activations_and_gradients(ref, layer, target)
    return (grads.mean(dim=(1, 2))[:, None, None] * acts).sum(0)


def ref_gradcampp(ref, target, layer):
    """Chattopadhay et al. 2018, eq. 19 with the exponential score, as the authors' code (adityac94/Grad_CAM_plus_plus)
    computes it: α = g² / (2g² + Σ_ab A g³), divided by its sum over the positions where g > 0; w = Σ α ReLU(g)."""
    acts, g = activations_and_gradients(ref, layer, target)
    denominator = 2 * g**2 + acts.sum(dim=(1, 2), keepdim=True) * g**3
    alpha = g**2 / torch.where(denominator != 0, denominator, 1)
    total = torch.where(g > 0, alpha, 0).sum(dim=(1, 2), keepdim=True)
    alpha = alpha / torch.where(total != 0, total, 1)
    return ((alpha * torch.relu(g)).sum(dim=(1, 2))[:, None, None] * acts).sum(0)


def ref_xgradcam(ref, target, layer):
    """Fu et al. 2020, eq. 9: w = Σ_ij (A_ij / Σ_ab A_ab) ∂y/∂A_ij (a channel with no activation has no weight)."""
    acts, grads = activations_and_gradients(ref, layer, target)
    totals = acts.sum(dim=(1, 2), keepdim=True)
    weights = torch.where(totals != 0, acts / torch.where(totals != 0, totals, 1) * grads, 0).sum(dim=(1, 2))
    return (weights[:, None, None] * acts).sum(0)


def ref_hirescam(ref, target, layer):
    """Draelos & Carin 2020: L = ReLU(Σ_k ∂y/∂A^k ⊙ A^k)."""
    acts, grads = activations_and_gradients(ref, layer, target)
    return (grads * acts).sum(0)


def ref_layercam(ref, target, layer):
    """Jiang et al. 2021, eq. 5-6: L = ReLU(Σ_k ReLU(∂y/∂A^k) ⊙ A^k)."""
    acts, grads = activations_and_gradients(ref, layer, target)
    return (torch.relu(grads) * acts).sum(0)


def ref_eigencam(ref, target, layer):
    """Muhammad & Yeasin 2020: the projection of the (positions × channels) activation matrix on its first right
    singular vector (no centring)."""
    acts, _ = activations_and_gradients(ref, layer, target)
    matrix = acts.reshape(acts.shape[0], -1).T.double()
    _, _, vh = torch.linalg.svd(matrix, full_matrices=False)
    return (matrix @ vh[0]).reshape(acts.shape[1:])


def ref_ablationcam(ref, target, layer):
    """Desai & Ramaswamy 2020, eq. 3: w_k = (y^c − y^c_k) / y^c with channel k of A set to zero, y^c_k through the
    network's own head (global average pool, classifier); divided by |y^c|, the one change of ours (so a negative
    logit does not invert the map)."""
    acts, _ = activations_and_gradients(ref, layer, target)
    channels = acts.shape[0]
    ablated = acts[None].repeat(channels, 1, 1, 1)
    ablated[torch.arange(channels), torch.arange(channels)] = 0
    with torch.no_grad():
        scores = ref.model.classifier(ablated.mean(dim=(2, 3)))[:, target]
        original = ref.model.classifier(acts.mean(dim=(1, 2))[None])[0, target]
    weights = (original - scores) / original.abs()
    return (weights[:, None, None] * acts).sum(0)


def channel_masks(acts: torch.Tensor, size) -> tuple[torch.Tensor, torch.Tensor]:
    """Score-CAM's masks: each channel bilinearly upsampled and min-max scaled; and which channels are not
    constant."""
    upsampled = F.interpolate(acts[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    flat = upsampled.flatten(1)
    low, high = flat.min(1).values, flat.max(1).values
    alive = high > low
    masks = (upsampled - low[:, None, None]) / torch.where(alive, high - low, 1)[:, None, None]
    return masks, alive


def ref_scorecam(ref, target, layer):
    """Wang et al. 2020, as the authors' code (haofanwang/Score-CAM) computes it: each non-constant channel,
    upsampled and min-max scaled, multiplies the input; the weight is the masked input's post-softmax probability
    of the class; L = ReLU(Σ_k w_k up(A^k))."""
    acts, _ = activations_and_gradients(ref, layer, target)
    size = ref.input.shape[-2:]

    def scores():
        masks, alive = channel_masks(acts, size)
        return probabilities_of(ref.model, ref.input * masks[alive][:, None]), alive

    probabilities, alive = ref.remember(("score", layer), scores)
    upsampled = F.interpolate(acts[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    return torch.einsum("k,khw->hw", probabilities[:, target], upsampled[alive])


def authors_blur(x: torch.Tensor) -> torch.Tensor:
    """The Group-CAM baseline with our blur's σ (the authors' code blurs with a 51-pixel kernel of σ = 50)."""
    radius = math.ceil(3 * BLUR_SIGMA)
    return gaussian_blur(x, [2 * radius + 1] * 2, [BLUR_SIGMA] * 2)


def ref_groupcam(ref, target, layer, groups=32, theta=70.0):
    """Zhang et al. 2021, as the authors' code (wofmanaf/Group-CAM) computes it: channels weighted by the mean
    gradient, split into contiguous groups (torch.chunk), each group's sum rectified and (first release, paper θ)
    zeroed at or below its θ-th percentile, upsampled, min-max scaled as a mask over a blurred copy; the weight is
    ReLU(p_c(masked) − p_c(blurred)); L = ReLU(Σ_g w_g up(M_g))."""
    acts, grads = activations_and_gradients(ref, layer, target)
    weighted = grads.mean(dim=(1, 2))[:, None, None] * acts
    maps = torch.relu(torch.stack([chunk.sum(0) for chunk in weighted.chunk(groups, dim=0)]))
    if theta > 0:
        floors = torch.from_numpy(np.percentile(maps.flatten(1).numpy(), theta, axis=1)).float()
        maps = torch.where(maps > floors[:, None, None], maps, 0)
    size = ref.input.shape[-2:]
    upsampled = F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    masks, alive = channel_masks(maps, size)
    blurred = authors_blur(ref.input)
    kept = ref.input * masks[alive][:, None] + blurred * (1 - masks[alive][:, None])
    gains = torch.relu(probabilities_of(ref.model, kept)[:, target] - probabilities_of(ref.model, blurred)[0, target])
    return torch.einsum("g,ghw->hw", gains, upsampled[alive])


def ref_zoomcam(ref, target, layers):
    """Shi et al. 2020, the authors' fusion: per layer ReLU(Σ_k ∂y/∂A^k ⊙ A^k), min-max scaled, upsampled to the
    finest layer, the maximum over layers."""
    maps = [torch.relu((g * a).sum(0)) for a, g in (activations_and_gradients(ref, name, target) for name in layers)]
    size = max(m.shape for m in maps)
    return torch.stack([up(minmax(m), size) for m in maps]).amax(0)


def pcam_normalise(acts: torch.Tensor) -> torch.Tensor:
    """The Poly-CAM authors' mask scaling: (A − p0.1) / p99.9 per channel, clipped to [0, 1]."""
    flat = acts.flatten(1).numpy()
    low = torch.from_numpy(np.percentile(flat, 0.1, axis=1)).float()[:, None, None]
    high = torch.from_numpy(np.percentile(flat, 99.9, axis=1)).float()[:, None, None]
    return ((acts - low) / torch.clamp(high, min=1e-12)).clamp(0, 1)


def ref_polycam(ref, target, layers, variant="PCAM±"):
    """Englebert et al. 2022, as the authors' code (aenglebert/polycam) computes it: at every layer, masks from the
    scaled channels upsampled to the input; PCAM+ w = p(X∘H), PCAM− w = ReLU(p(X) − p(X∘(1−H))), PCAM± w =
    ReLU(p(X∘H) + p(X) − p(X∘(1−H))); S_l = ReLU(Σ w A); from the deepest layer down, each finer S_l divided by its
    bilinear down-and-up-sampled copy, times the bilinearly upsampled coarser map, rectified."""
    size = ref.input.shape[-2:]
    with torch.no_grad():
        full = torch.softmax(ref.model(ref.input), dim=1)[0]
    current = None
    for name in reversed(layers):
        acts, _ = activations_and_gradients(ref, name, target)

        def scores(acts=acts):
            masks = F.interpolate(pcam_normalise(acts)[:, None], size=size, mode="bilinear")
            return probabilities_of(ref.model, ref.input * masks), probabilities_of(ref.model, ref.input * (1 - masks))

        inside, outside = ref.remember(("pcam", name), scores)
        weights = {"PCAM+": inside[:, target], "PCAM−": torch.relu(full[target] - outside[:, target]),
                   "PCAM±": torch.relu(inside[:, target] + full[target] - outside[:, target])}[variant]
        layer_map = torch.relu(torch.einsum("k,khw->hw", weights, acts))
        if current is None:
            current = layer_map
            continue
        norm = F.interpolate(F.interpolate(layer_map[None, None], size=current.shape, mode="bilinear"),
                             size=layer_map.shape, mode="bilinear")[0, 0]
        current = torch.relu(layer_map / torch.clamp(norm, min=1e-12) * up(current, layer_map.shape))
    return current


class GuidedReLU6(torch.autograd.Function):
    """Springenberg et al. 2015, eq. for guided backpropagation on a ReLU6: R_in = 1[0 < x < 6] · 1[R_out > 0] ·
    R_out."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(0, 6)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ((x > 0) & (x < 6)) * (grad > 0)


class GuidedModule(torch.nn.Module):
    def forward(self, x):
        return GuidedReLU6.apply(x)


def guided_gradient(ref: Reference, target: int) -> torch.Tensor:
    def compute():
        model = copy.deepcopy(ref.model)
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, torch.nn.ReLU6):
                    setattr(parent, name, GuidedModule())
        return model

    model = ref.remember("guided model", compute)
    leaf = ref.input.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(model(leaf)[0, target], leaf)
    return gradient[0]


def ref_guidedbackprop(ref, target, layer):
    """The guided input gradient (3, H, W)."""
    return guided_gradient(ref, target)


def ref_guidedgradcam(ref, target, layer):
    """Selvaraju et al. 2017, section 3.1: guided backpropagation ⊙ Grad-CAM's map bilinearly upsampled."""
    gate = up(torch.relu(ref_gradcam(ref, target, layer)), ref.input.shape[-2:])
    return guided_gradient(ref, target) * gate[None]


LAYER_METHODS = {
    "cam": ref_cam, "gradcam": ref_gradcam, "gradcampp": ref_gradcampp, "xgradcam": ref_xgradcam,
    "hirescam": ref_hirescam, "layercam": ref_layercam, "ablationcam": ref_ablationcam,
}


@pytest.mark.parametrize("kind", CLASS_KINDS)
@pytest.mark.parametrize("name", TWO_OBJECT_PHOTOS)
@pytest.mark.parametrize("method", tuple(LAYER_METHODS))
def test_layer_methods_follow_their_papers(mobilenet, references, method, name, kind):
    ref = references[name]
    target = ref.classes[kind]
    result = ours(mobilenet, name, method, target)
    check(result.raw, LAYER_METHODS[method](ref, target, mobilenet.default_layer), f"{method} {name} {kind}")


@pytest.mark.parametrize("name", TWO_OBJECT_PHOTOS)
def test_eigencam_follows_its_paper(mobilenet, references, name):
    """Class-agnostic: one map per photo; a singular vector's sign is arbitrary, so |r| is compared."""
    ref = references[name]
    result = ours(mobilenet, name, "eigencam", ref.classes["top"])
    r = pearson(result.raw, ref_eigencam(ref, ref.classes["top"], mobilenet.default_layer).numpy(), name)
    MEASURED.setdefault("eigencam", []).append(abs(r))
    assert abs(r) >= R_MIN, f"eigencam {name}: |r| with the uncentred SVD projection is {abs(r):.4f}"


@pytest.mark.parametrize("kind", CLASS_KINDS)
@pytest.mark.parametrize("name", TWO_OBJECT_PHOTOS)
@pytest.mark.parametrize("method", ("guidedbackprop", "guidedgradcam"))
def test_guided_methods_follow_their_papers(mobilenet, references, method, name, kind):
    ref = references[name]
    target = ref.classes[kind]
    result = ours(mobilenet, name, method, target)
    reference = {"guidedbackprop": ref_guidedbackprop, "guidedgradcam": ref_guidedgradcam}[method]
    check(result.rgb, reference(ref, target, mobilenet.default_layer), f"{method} {name} {kind}")


MASKED = {"scorecam": (ref_scorecam, SCORE_LAYER), "groupcam": (ref_groupcam, None)}


@pytest.mark.parametrize("kind", CLASS_KINDS)
@pytest.mark.parametrize("name", TWO_OBJECT_PHOTOS)
@pytest.mark.parametrize("method", tuple(MASKED))
def test_masked_input_methods_follow_the_authors_code(mobilenet, references, method, name, kind):
    """Compared at the input's resolution, where the authors' code adds up its upsampled maps."""
    ref = references[name]
    target = ref.classes[kind]
    reference, layer = MASKED[method]
    result = ours(mobilenet, name, method, target, layer=layer)
    ours_up = up(torch.from_numpy(result.raw), ref.input.shape[-2:]).numpy()
    check(ours_up, reference(ref, target, layer or mobilenet.default_layer), f"{method} {name} {kind}")


@pytest.mark.parametrize("kind", CLASS_KINDS)
@pytest.mark.parametrize("name", TWO_OBJECT_PHOTOS)
def test_zoomcam_follows_the_authors_fusion(mobilenet, references, name, kind):
    ref = references[name]
    target = ref.classes[kind]
    result = ours(mobilenet, name, "zoomcam", target)
    check(result.raw, ref_zoomcam(ref, target, tuple(mobilenet.model.pyramid())), f"zoomcam {name} {kind}")


@pytest.mark.parametrize("kind", CLASS_KINDS)
@pytest.mark.parametrize("name", TWO_OBJECT_PHOTOS)
def test_polycam_follows_the_authors_code(mobilenet, references, name, kind):
    ref = references[name]
    target = ref.classes[kind]
    for variant in POLY_VARIANTS[name]:
        result = ours(mobilenet, name, "polycam", target, layers=POLY_LAYERS, variant=variant)
        check(result.raw, ref_polycam(ref, target, POLY_LAYERS, variant), f"polycam {variant} {name} {kind}")


REFERENCED = {*LAYER_METHODS, "eigencam", "guidedbackprop", "guidedgradcam", *MASKED, "zoomcam", "polycam"}
