"""Gradients at the input: guided backpropagation, and Guided Grad-CAM which gates it with Grad-CAM's map."""

from __future__ import annotations

import torch

from cam_core.methods.common import min_max, upsample, weighted_sum
from cam_core.methods.gradient import gradcam_weights
from cam_core.registry import CamInputs, MethodCard, MethodOutput, register


def _unguided_note(inputs: CamInputs) -> str:
    if inputs.guided_activations:
        return ""
    return "this model has no activation modules to guide, so the map is the plain input gradient"


@register(
    MethodCard(
        id="guidedbackprop",
        name="Guided Backpropagation",
        family="Input gradients",
        needs=frozenset({"guided_gradients"}),
        cost="fast",
        summary="The class score's gradient at the pixels, with every ReLU passing back only positive gradients.",
        explanation=(
            "Guided backpropagation asks which pixels, made brighter, would raise the class score, like a plain "
            "input gradient. On the way back through each ReLU it lets a gradient through only where the forward "
            "input was positive (what the ReLU's derivative does anyway) and where the gradient itself is positive "
            "(what a deconvolution network does). Smooth activations (GELU, SiLU, Hardswish) have a negative "
            "derivative below zero, so what they pass back is clamped at zero too: every activation passes back only "
            "positive gradients. The result is a sharp, full-resolution picture of edges and textures. It is not "
            "class-specific in practice: the maps of the dog and the pickup in darknet's dog.jpg correlate at "
            "0.999, which is why Guided Grad-CAM gates it with a class map. Shown as an RGB image of the gradient; "
            "its magnitude is the map."
        ),
        formula=r"R^{(l)} = \mathbb{1}\big[f^{(l)} > 0\big]\ \odot\ \mathbb{1}\big[R^{(l+1)} > 0\big]\ \odot\ "
        r"R^{(l+1)} \qquad G = \frac{\partial^{\mathrm{guided}} y^c}{\partial x} \qquad "
        r"L^c_{ij} = \max_{\mathrm{rgb}} |G_{ij}|",
        paper="Springenberg et al., Striving for Simplicity: The All Convolutional Net, ICLR workshop 2015",
        strengths=("Pixel-sharp detail", "One backward pass per class"),
        weaknesses=("Barely class-discriminative", "Known to pass sanity checks poorly: it reconstructs the image"),
        class_specific=False,
        signed=False,
        resolution="input",
    )
)
def guidedbackprop(inputs: CamInputs) -> MethodOutput:
    """The guided input gradient, its largest absolute colour component as the map."""
    gradient = inputs.input_gradients
    return MethodOutput(gradient_magnitude(gradient), note=_unguided_note(inputs), rgb=gradient)


@register(
    MethodCard(
        id="guidedgradcam",
        name="Guided Grad-CAM",
        family="Input gradients",
        needs=frozenset({"guided_gradients", "gradients"}),
        cost="fast",
        summary="Guided backpropagation multiplied by the upsampled Grad-CAM map: sharp and class-specific.",
        explanation=(
            "Grad-CAM knows which object but only on a coarse grid; guided backpropagation is pixel-sharp but "
            "hardly cares about the class. Guided Grad-CAM multiplies the two, pixel by pixel: Grad-CAM's map, "
            "upsampled to the input and scaled to [0, 1], gates the guided gradient, so the fine detail is kept only "
            "on the object of the class."
        ),
        formula=r"L^c_{\mathrm{Guided}} = \frac{\partial^{\mathrm{guided}} y^c}{\partial x}\ \odot\ "
        r"\mathrm{up}\Big(\mathrm{ReLU}\big(\sum_k \alpha^c_k A^k\big)\Big)",
        paper="Selvaraju et al., Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization, "
        "ICCV 2017",
        strengths=("Sharp and class-discriminative", "Two cheap backward passes per class"),
        weaknesses=("Inherits guided backpropagation's weak sanity checks", "Coarse gate at the last layer"),
        signed=False,
        resolution="input",
    )
)
def guidedgradcam(inputs: CamInputs) -> MethodOutput:
    """Guided input gradient × Grad-CAM's positive map, upsampled to the input and scaled to [0, 1]."""
    weights = gradcam_weights(inputs.gradients)
    gated = inputs.input_gradients * gradcam_gate(weighted_sum(weights, inputs.activations),
                                                  inputs.input_gradients.shape[1:])
    return MethodOutput(gradient_magnitude(gated), weights, _unguided_note(inputs), rgb=gated)


def gradcam_gate(raw: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Grad-CAM's map as a gate: its positive part upsampled to the input's (H, W) and scaled to [0, 1]."""
    return min_max(upsample(raw.clamp(min=0), size))


def gradient_magnitude(rgb: torch.Tensor) -> torch.Tensor:
    """A (3, H, W) input gradient's map: its largest absolute colour component at each pixel."""
    return rgb.abs().amax(dim=0)
