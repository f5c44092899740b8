"""Lessons of guided backpropagation and Guided Grad-CAM: gradients at the pixels."""

from __future__ import annotations

import numpy as np
import torch

from cam_core.lessons.gradient import FOCUS, focus, mean_gradient_step
from cam_core.lessons.steps import (
    Heatmaps,
    Montage,
    Source,
    Step,
    Story,
    activations_step,
    array,
    gradients_step,
    num,
    shape,
    weighted_sum_step,
)
from cam_core.methods.common import weighted_sum
from cam_core.methods.gradient import gradcam_weights
from cam_core.methods.guided import gradcam_gate, gradient_magnitude
from cam_core.render.pictures import gradient_picture


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


def guidedbackprop(source: Source) -> Story:
    rgb = source.analysis.guided_gradients(source.target)
    raw = gradient_magnitude(rgb)
    return [input_gradient_step(source, rgb), magnitude_step(raw)], raw


def guidedgradcam(source: Source) -> Story:
    acts, grads = source.activations(), source.gradients()
    weights = gradcam_weights(grads)
    channels = focus(weights, acts)
    coarse = weighted_sum(weights, acts)
    rgb = source.analysis.guided_gradients(source.target)
    gate = gradcam_gate(coarse, rgb.shape[1:])
    gated = rgb * gate
    raw = gradient_magnitude(gated)
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
        magnitude_step(raw),
    ], raw
