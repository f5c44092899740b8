"""Gradients at the input: guided backpropagation, and Guided Grad-CAM which gates it with Grad-CAM's map."""

from __future__ import annotations

import numpy as np
import torch

from cam_core.lessons.steps import (
    FOCUS,
    Heatmaps,
    Montage,
    Source,
    Step,
    activations_step,
    array,
    focus,
    gradients_step,
    num,
    shape,
    weighted_sum_step,
)
from cam_core.methods.common import gradcam_weights, upsample, weighted_sum
from cam_core.methods.gradient import mean_gradient_step
from cam_core.registry import CamInputs, MethodCard, MethodOutput, Peer, register
from cam_core.render.pictures import gradient_picture
from cam_core.scaling import min_max


def _unguided_note(inputs: CamInputs) -> str:
    if inputs.guided_activations:
        return ""
    return "this model has no activation modules to guide, so the map is the plain input gradient"


GUIDEDBACKPROP = MethodCard(
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
    definition="Springenberg et al., ICLR-W 2015: gradients through ReLUs only where the input and the gradient are "
    "positive",
    differs="for smooth activations (GELU, SiLU, Hardswish) what passes back is clamped at zero too",
    reference="paper",
    peers=(Peer("pytorch-grad-cam", "GuidedBackpropReLUModel"),),
    strengths=("Pixel-sharp detail", "One backward pass per class"),
    weaknesses=("Barely class-discriminative", "Known to pass sanity checks poorly: it reconstructs the image"),
    class_specific=False,
    signed=False,
    resolution="input",
)


def guidedbackprop(inputs: CamInputs) -> MethodOutput:
    """The guided input gradient, its largest absolute colour component as the map."""
    gradient = inputs.input_gradients
    return MethodOutput(gradient_magnitude(gradient), note=_unguided_note(inputs), rgb=gradient)


GUIDEDGRADCAM = MethodCard(
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
    definition="Selvaraju et al., ICCV 2017, §3.1: guided backpropagation ⊙ upsampled Grad-CAM",
    differs="the gate is min-max scaled",
    reference="paper",
    peers=(Peer("pytorch-grad-cam", "GuidedBackpropReLUModel"),),
    strengths=("Sharp and class-discriminative", "Two cheap backward passes per class"),
    weaknesses=("Inherits guided backpropagation's weak sanity checks", "Coarse gate at the last layer"),
    signed=False,
    resolution="input",
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


def picture(rgb: torch.Tensor) -> np.ndarray:
    return np.asarray(gradient_picture(array(rgb)))


def input_gradient_step(source: Source, rgb: torch.Tensor) -> Step:
    guided = source.analysis.explainer.guided_activations()
    return Step(
        "input gradients", "The guided gradient at the pixels",
        f"One backward pass from the score of “{source.label}” to the {shape(rgb)} input, through a private copy of "
        f"the network whose {guided} activation modules let a gradient back only where it is positive (and the "
        f"forward input was too). It runs from {num(rgb.min())} to {num(rgb.max())}; shown with grey at 0.",
        "guided backpropagation to the pixels",
        (Montage((("guided gradient (grey = 0)", picture(rgb)),)),), array(rgb),
    )


def magnitude_step(raw: torch.Tensor) -> Step:
    return Step("map", "The map: the strongest colour",
                f"At each pixel the largest |gradient| of red, green and blue: a {shape(raw)} map from 0 to "
                f"{num(raw.max())}. It is a magnitude, so there is no evidence against the class and no ReLU.",
                "the largest absolute colour component at each pixel",
                (Heatmaps((("max |G| over r, g, b", array(raw)),)),), array(raw))


def guidedbackprop_lesson(source: Source) -> list[Step]:
    return [input_gradient_step(source, source.output.rgb), magnitude_step(source.raw)]


def guidedgradcam_lesson(source: Source) -> list[Step]:
    acts, grads = source.activations(), source.gradients()
    weights = gradcam_weights(grads)
    channels = focus(weights, acts)
    coarse = weighted_sum(weights, acts)
    rgb = source.analysis.guided_gradients(source.target)
    gate = gradcam_gate(coarse, rgb.shape[1:])
    gated = source.output.rgb
    return [
        activations_step(source, channels, FOCUS),
        gradients_step(source, channels),
        mean_gradient_step(weights, shape(coarse)),
        weighted_sum_step(weights, acts, coarse),
        Step("gate", "Grad-CAM's map as a gate",
             f"Grad-CAM's map, after its ReLU, upsampled to the {shape(gate)} input and scaled to [0, 1]: "
             f"{float((gate > 0.5).float().mean()):.0%} of the pixels are above 0.5.",
             "Grad-CAM's map upsampled to the input and scaled to [0, 1]",
             (Heatmaps((("gate", array(gate)),)),), array(gate)),
        input_gradient_step(source, rgb),
        Step("product", "The guided gradient times the gate",
             "Pixel by pixel, the guided gradient is multiplied by the gate: the sharp detail stays only on the "
             f"object of “{source.label}”.", "the guided gradient gated by Grad-CAM's map",
             (Montage((("gated gradient (grey = 0)", picture(gated)),)),), array(gated)),
        magnitude_step(source.raw),
    ]


register(GUIDEDBACKPROP, guidedbackprop, guidedbackprop_lesson)
register(GUIDEDGRADCAM, guidedgradcam, guidedgradcam_lesson)
