"""FullGrad, Finer-CAM and ShapleyCAM against their papers and the authors' code, re-implemented here in plain torch
on a reference copy of the network (never cam_core's method functions): the three two-object photos × the top class,
the second object and the negative logit; Pearson r ≥ 0.99 between our raw map and the reference's."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import TWO_OBJECT_PHOTOS
from tests.references.conftest import CLASS_KINDS, activations_and_gradients, check, forward, ours

REFERENCES = 3  # Finer-CAM's default: the three classes with the nearest logits
ALPHA = 1.0


def no_inplace(ref) -> torch.nn.Module:
    """The reference copy with every in-place activation made out-of-place (the same function), so that each
    layer's output stays what the layer gave."""

    def compute():
        for module in ref.model.modules():
            if hasattr(module, "inplace"):
                module.inplace = False
        return ref.model

    return ref.remember("no inplace", compute)


def ref_fullgrad(ref, target):
    """Srinivas & Fleuret 2019 as the authors' code (idiap/fullgrad-saliency) computes it: the bias of a batch norm is
    β − μγ/√(σ²+ε); each term's absolute value is shifted to 0 and divided by (its max + 1e-6) over the whole tensor,
    summed over channels; the layers' maps are bilinearly upsampled with aligned corners and all are added."""
    model = no_inplace(ref)
    norms = [(name, m) for name, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert not any(isinstance(m, torch.nn.Conv2d) and m.bias is not None for m in model.modules())
    x = ref.input.clone().requires_grad_(True)
    logits, caught = forward(model, x, tuple(name for name, _ in norms))
    outputs = [caught[name] for name, _ in norms]
    grads = torch.autograd.grad(logits[0, target], [x, *outputs])

    def post(t):
        t = t.abs()
        t = t - t.flatten().min()
        return t / (t.flatten().max() + 1e-6)

    size = x.shape[-2:]
    total = post(grads[0][0] * x[0].detach()).sum(0)
    for (_, norm), grad in zip(norms, grads[1:], strict=True):
        bias = norm.bias - norm.running_mean * norm.weight / torch.sqrt(norm.running_var + norm.eps)
        term = post(grad[0] * bias.detach()[:, None, None])
        # summed over the channels before upsampling, which is linear (the authors upsample each channel first)
        total = total + F.interpolate(term.sum(0)[None, None], size=size, mode="bilinear", align_corners=True)[0, 0]
    return total


def ref_finercam(ref, target, layer):
    """Zhang et al. 2025 as the authors' code (Imageomics/Finer-CAM) defines its target: the classes of ranks 1-3 by
    |y − y_c|, T = Σᵢ pᵢ(y_c − α yᵢ) / Σᵢ pᵢ differentiated by autograd (the probabilities too), Grad-CAM of T."""
    x = ref.input.clone().requires_grad_(True)
    logits, caught = forward(ref.model, x, (layer,))
    values = logits[0].detach()
    distance = (values - values[target]).abs()
    distance[target] = float("inf")
    compared = torch.argsort(distance, stable=True)[:REFERENCES]
    probabilities = torch.softmax(logits[0], dim=0)[compared]
    objective = (probabilities * (logits[0, target] - ALPHA * logits[0, compared])).sum() / probabilities.sum()
    (grad,) = torch.autograd.grad(objective, caught[layer])
    acts = caught[layer][0].detach()
    return (grad[0].mean(dim=(1, 2))[:, None, None] * acts).sum(0)


def ref_shapleycam(ref, target, layer):
    """Cai 2025: u = y_c + log softmax(y)_c (ReST); w = mean over positions of ∂u/∂A − ½ (∂²u/∂A²)·A; Σ w A."""
    x = ref.input.clone().requires_grad_(True)
    logits, caught = forward(ref.model, x, (layer,))
    acts = caught[layer]
    score = logits[0, target] + torch.log_softmax(logits[0], dim=0)[target]
    (grad,) = torch.autograd.grad(score, acts, create_graph=True)
    (hvp,) = torch.autograd.grad(grad, acts, grad_outputs=acts.detach())
    weights = (grad[0] - 0.5 * hvp[0]).detach().mean(dim=(1, 2))
    return (weights[:, None, None] * acts[0].detach()).sum(0)


@pytest.mark.parametrize("kind", CLASS_KINDS)
@pytest.mark.parametrize("name", TWO_OBJECT_PHOTOS)
def test_fullgrad_follows_the_authors_code(mobilenet, references, name, kind):
    ref = references[name]
    target = ref.classes[kind]
    check(ours(mobilenet, name, "fullgrad", target).raw, ref_fullgrad(ref, target), f"fullgrad {name} {kind}")


@pytest.mark.parametrize("kind", CLASS_KINDS)
@pytest.mark.parametrize("name", TWO_OBJECT_PHOTOS)
@pytest.mark.parametrize("method", ("finercam", "shapleycam"))
def test_layer_methods_follow_their_papers(mobilenet, references, method, name, kind):
    ref = references[name]
    target = ref.classes[kind]
    reference = {"finercam": ref_finercam, "shapleycam": ref_shapleycam}[method]
    result = ours(mobilenet, name, method, target)
    check(result.raw, reference(ref, target, mobilenet.default_layer), f"{method} {name} {kind}")


def test_shapleycam_on_the_logit_is_gradcam_behind_a_linear_head(mobilenet, references):
    """The paper's remark made concrete: the logit's Hessian vanishes where only pooling and a linear layer follow,
    so the second-order term is zero and the map is Grad-CAM's."""
    ref = references["dog.jpg"]
    target = ref.classes["top"]
    acts, grads = activations_and_gradients(ref, mobilenet.default_layer, target)
    result = ours(mobilenet, "dog.jpg", "shapleycam", target, score="logit")
    check(result.raw, (grads.mean(dim=(1, 2))[:, None, None] * acts).sum(0), "shapleycam logit dog.jpg top")


REFERENCED = {"fullgrad", "finercam", "shapleycam"}
