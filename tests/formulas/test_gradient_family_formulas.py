"""The arithmetic of FullGrad, Finer-CAM and ShapleyCAM on small tensors worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch
from timm.layers import BatchNormAct2d

from cam_core import CamError
from cam_core.inputs.gradient_terms import BiasGradient, FullGradients, class_score, rest_score
from cam_core.methods.gradient_more import finer_gradient, finer_references, fullgrad_parts, psi, shapley_weights
from cam_core.passes.biases import bias_pass, layer_bias
from cam_core.registry import CamInputs, get_method


def test_psi_scales_magnitudes_over_the_layer_or_channel_by_channel():
    term = torch.tensor([[[1.0, -3.0]], [[-2.0, 5.0]]])  # 2 channels of 1×2; magnitudes 1 3 / 2 5
    # over the layer: (|t| - 1) / 4 → 0, 0.5 / 0.25, 1; summed over channels: 0.25, 1.5
    torch.testing.assert_close(psi(term, "layer"), torch.tensor([[0.25, 1.5]]))
    # channel by channel: 0, 1 / 0, 1
    torch.testing.assert_close(psi(term, "channel"), torch.tensor([[0.0, 2.0]]))


def test_fullgrad_adds_the_input_part_and_each_layers_upsampled_bias_part():
    image = torch.ones(3, 2, 2)
    input_gradient = torch.zeros(3, 2, 2)
    input_gradient[0, 0, 0] = 2.0  # |∇x ⊙ x| is 2 at one pixel of one colour: scaled to 1 there, 0 elsewhere
    layer = BiasGradient("conv", torch.tensor([-2.0]), torch.tensor([[[1.0], [3.0]]]))  # 2×1: terms -2, -6
    full = FullGradients(image, input_gradient, (layer,))
    parts = fullgrad_parts(full, "layer", align_corners=True)
    torch.testing.assert_close(parts[0], torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    torch.testing.assert_close(parts[1], torch.tensor([[0.0, 0.0], [1.0, 1.0]]))  # rows 0 and 1, stretched sideways
    inputs = CamInputs(activations=torch.zeros(1, 1, 1), target=0, full_gradients=full)
    output = get_method("fullgrad").apply(inputs)
    torch.testing.assert_close(output.raw, torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    assert output.rgb is None, "FullGrad's map is its saliency, drawn as a map, not a gradient picture"


def test_finer_references_are_the_nearest_logits_or_the_listed_classes():
    logits = torch.tensor([5.0, 4.0, 6.0, 0.0, 4.0])
    params = {"compare": "", "references": 3}
    assert finer_references(logits, 0, params) == (1, 2, 4)  # |Δ| 1, 1, 1 (ties: lower index first), then 5
    assert finer_references(logits, 3, {**params, "references": 10}) == (1, 4, 0, 2)  # capped at the other classes
    assert finer_references(logits, 0, {**params, "compare": " 3, 1"}) == (3, 1)
    for text, message in (("2, x", "not one"), ("9", "out of range"), ("0", "the target class"),
                          ("1, 1", "twice")):
        with pytest.raises(CamError, match=message):
            finer_references(logits, 0, {**params, "compare": text})


def test_finer_gradient_of_the_mean_difference():
    target = torch.full((1, 1, 2), 3.0)
    compared = torch.stack([torch.full((1, 1, 2), 1.0), torch.full((1, 1, 2), 2.0)])
    got = finer_gradient(target, compared, torch.tensor(0.0), torch.tensor([0.0, 0.0]), 0.5, "mean")
    torch.testing.assert_close(got, torch.full((1, 1, 2), 3.0 - 0.5 * 1.5))


def test_finer_gradient_with_probabilities_is_the_full_derivative_of_the_weighted_objective():
    """Two compared classes with logits 0 and log 3 (shares 1/4, 3/4), target logit 2, α = 1: margins 2 and 2 − log 3.
    The closed form g_c − α Σ wᵢ gᵢ + Σ wᵢ(mᵢ − m̄) gᵢ equals autograd's derivative of Σ wᵢ mᵢ on a linear map of A."""
    torch.manual_seed(0)
    readout = torch.randn(3, 2, 1, 2, dtype=torch.float64)  # class logits y = Σ readout · A
    base = torch.tensor([2.0, 0.0, math.log(3.0)], dtype=torch.float64)
    acts = torch.zeros(2, 1, 2, dtype=torch.float64, requires_grad=True)
    logits = base + (readout * acts).sum(dim=(1, 2, 3))
    shares = torch.softmax(logits[1:], dim=0)
    objective = (shares * (logits[0] - logits[1:])).sum()
    (expected,) = torch.autograd.grad(objective, acts)
    torch.testing.assert_close(shares.detach(), torch.tensor([0.25, 0.75], dtype=torch.float64))
    got = finer_gradient(readout[0], readout[1:], base[0], base[1:], 1.0, "probability")
    torch.testing.assert_close(got, expected)
    margins = 2.0 - base[1:]
    mean = 0.25 * margins[0] + 0.75 * margins[1]
    by_hand = (readout[0] - 0.25 * readout[1] - 0.75 * readout[2] + 0.25 * (margins[0] - mean) * readout[1]
               + 0.75 * (margins[1] - mean) * readout[2])
    torch.testing.assert_close(got, by_hand)


def test_shapley_weights_subtract_half_the_hessian_product():
    gradients = torch.tensor([[[1.0, 3.0]], [[0.0, -2.0]]])
    product = torch.tensor([[[2.0, 2.0]], [[4.0, 0.0]]])
    torch.testing.assert_close(shapley_weights(gradients, product), torch.tensor([1.0, -2.0]))


def test_rest_is_the_logit_plus_its_log_probability():
    logits = torch.tensor([[1.0, 2.0, 3.0]])
    expected = 2.0 + 2.0 - math.log(math.exp(1.0) + math.exp(2.0) + math.exp(3.0))
    assert float(rest_score(logits, 1)) == pytest.approx(expected)
    assert float(class_score("logit")(logits, 1)) == 2.0
    with pytest.raises(CamError, match="score must be one of"):
        class_score("probability")


def test_a_batch_norms_bias_is_its_shift_once_its_scale_is_taken_out():
    norm = torch.nn.BatchNorm2d(2).eval()
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([2.0, 0.5]))
        norm.bias.copy_(torch.tensor([1.0, -1.0]))
        norm.running_mean.copy_(torch.tensor([3.0, 4.0]))
        norm.running_var.copy_(torch.tensor([4.0, 1.0]) - norm.eps)
    # β − μγ/σ: 1 − 3·2/2 = −2; −1 − 4·0.5/1 = −3
    torch.testing.assert_close(layer_bias(norm), torch.tensor([-2.0, -3.0]))
    assert layer_bias(torch.nn.Conv2d(1, 2, 1, bias=False)) is None


def test_the_bias_pass_catches_a_fused_batch_norm_before_its_activation():
    """timm's BatchNormAct2d applies its ReLU6 inside: the bias gradient belongs to the normalised tensor, which can
    be negative, not to the activation's output."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, bias=True), BatchNormAct2d(4, act_layer=torch.nn.ReLU6),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
    x = torch.randn(1, 3, 6, 6)
    found = bias_pass(model, x, frozenset())
    assert found.names == ["0", "1"]
    normalised = torch.nn.functional.batch_norm(model[0](x), model[1].running_mean, model[1].running_var,
                                                model[1].weight, model[1].bias, False, 0.0, model[1].eps)
    torch.testing.assert_close(found.outputs[1].detach(), normalised)
    assert bool((found.outputs[1] < 0).any()), "the caught tensor is the one before the ReLU6"
    torch.testing.assert_close(found.logits.detach(), model(x))
