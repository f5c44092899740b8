"""Lessons of CAM and the Grad-CAM family: channel weights from the classifier or from gradients."""

from __future__ import annotations

import torch

from cam_core.inputs.perturbed import path_inputs
from cam_core.lessons.steps import (
    SHOWN_CHANNELS,
    Heatmaps,
    Source,
    Step,
    Story,
    activations_step,
    array,
    channel_tiles,
    gradients_step,
    input_pictures,
    num,
    signed,
    top,
    weight_bars,
    weighted_sum_step,
    weights_text,
)
from cam_core.methods.common import weighted_sum
from cam_core.methods.gradient import (
    exponential_powers,
    gradcam_weights,
    gradcampp_alpha,
    gradcampp_weights,
    gradient_map,
    gradient_powers,
    path_weights,
    xgradcam_weights,
)

FOCUS = "the ones that add the most to the map (largest |weight × total activation|)"


def focus(weights: torch.Tensor, activations: torch.Tensor) -> list[int]:
    """The channels whose weighted activations add the most to the map."""
    return top(weights * activations.sum(dim=(1, 2)), SHOWN_CHANNELS)


def weights_step(weights: torch.Tensor, heading: str, explain: str, how: str, *charts: Heatmaps) -> Step:
    """A step whose result is one weight per channel, shown as bars (then any charts of how they arise)."""
    return Step("weights", heading, f"{explain} {weights_text(weights)}", how,
                (weight_bars(weights, "weight"), *charts), array(weights))


def channel_weighting(source: Source, weights: torch.Tensor, weights_of: Step, gradients: bool = True) -> Story:
    """activations → (gradients) → weights → weighted sum, for methods that weight whole channels."""
    acts = source.activations()
    channels = focus(weights, acts)
    raw = weighted_sum(weights, acts)
    steps = [activations_step(source, channels, FOCUS)]
    steps += [gradients_step(source, channels)] if gradients else []
    return [*steps, weights_of, weighted_sum_step(weights, acts, raw)], raw


def mean_gradient_step(weights: torch.Tensor, positions: str) -> Step:
    return weights_step(
        weights, "The channel weights: the mean gradient",
        f"Grad-CAM averages each channel's gradient over its {positions} positions: how much the score rises when "
        "the whole channel grows a little.",
        f"the mean of each channel's gradient over its {positions} positions",
    )


def cam(source: Source) -> Story:
    weights = source.analysis.explainer.class_weights(source.layer)[source.target]
    step = weights_step(
        weights, "The classifier's weights",
        f"CAM needs no gradient: the linear layer after the global average pooling already holds one weight per "
        f"channel for “{source.label}”; the class score is these weights times the channels' means, plus a bias.",
        "the linear classifier's own weights for the class",
    )
    return channel_weighting(source, weights, step, gradients=False)


def gradcam(source: Source) -> Story:
    grads = source.gradients()
    weights = gradcam_weights(grads)
    return channel_weighting(source, weights, mean_gradient_step(weights, "×".join(map(str, grads.shape[1:]))))


def gradcampp(source: Source) -> Story:
    acts, grads = source.activations(), source.gradients()
    first, second, third = exponential_powers(grads)
    alpha = gradcampp_alpha(acts, second, third)
    normalise = bool(source.params["normalise_alpha"])
    weights = gradcampp_weights(acts, first, second, third, normalise)
    best = int(torch.argmax(weights))
    step = weights_step(
        weights, "The channel weights: α-weighted positive gradients",
        "Grad-CAM++ gives each position its own coefficient α = g² / (2g² + ΣA·g³), where ΣA is the channel's total "
        "activation; assuming the score is the exponential of a linear function, the second and third derivatives "
        "are these powers of the gradient g. The weight is Σ α · ReLU(g) over the positions"
        + (", divided by the sum of α where g > 0 (the authors' code), " if normalise else ", ")
        + "so a channel that fires "
        f"in a small spot is not diluted by the rest. Channel {best}: ΣA = {num(acts[best].sum())}, α up to "
        f"{num(alpha[best].max())}.",
        "the positive gradient weighted by α at each position, summed",
        Heatmaps(channel_tiles(alpha, focus(weights, acts), "α, channel")),
    )
    return channel_weighting(source, weights, step)


def xgradcam(source: Source) -> Story:
    weights = xgradcam_weights(source.activations(), source.gradients())
    step = weights_step(
        weights, "The channel weights: activation-weighted gradients",
        "XGrad-CAM averages each channel's gradient with the channel's own activations as weights (Σ A·g / Σ A): "
        "positions where the channel fires count more, which makes the map add up to the score as closely as possible.",
        "the gradient averaged with the activations as weights",
    )
    return channel_weighting(source, weights, step)


def hirescam(source: Source) -> Story:
    acts, grads = source.activations(), source.gradients()
    product = grads * acts
    channels = top(product.sum(dim=(1, 2)), SHOWN_CHANNELS)
    raw = gradient_map(grads, acts)
    same = torch.allclose(grads, grads.mean(dim=(1, 2), keepdim=True).expand_as(grads))
    text = (
        "HiRes-CAM does not average the gradient over the positions: each activation is multiplied by the gradient at "
        "its own position, so credit stays where the score used it (an average can move it to places the model did "
        "not look at)."
    )
    if same:
        text += (" Here every position of a channel has the same gradient, so averaging first changes nothing: at this "
                 "layer HiRes-CAM's map is exactly Grad-CAM's. Pick a layer further from the head to see them differ.")
    return [
        activations_step(source, channels, "the ones whose gradient × activation adds the most"),
        gradients_step(source, channels),
        Step("product", "Gradient × activation, position by position", text,
             "the gradient times the activation at each position, no averaging",
             (Heatmaps(channel_tiles(product, channels), signed(product)),), array(product)),
        Step("channel sum", "The sum over channels",
             f"Adding the {acts.shape[0]} products gives the map, from {num(raw.min())} to {num(raw.max())}: its sum "
             "is the first-order change of the score.", "the products added over the channels",
             (Heatmaps((("Σ g ⊙ A", array(raw)),), True),), array(raw)),
    ], raw


def smoothgradcampp(source: Source) -> Story:
    acts = source.activations()
    spec = source.card.path_spec(source.layer, source.params)
    grads = source.analysis.path(spec, source.target).gradients
    first, second, third = gradient_powers(grads)
    weights = gradcampp_weights(acts, first, second, third, bool(source.params["normalise_alpha"]))
    channels = focus(weights, acts)
    spread = float(grads.std(dim=0).max() / grads.abs().max().clamp(min=1e-30)) if grads.shape[0] > 1 else 0.0
    copies = path_inputs(source.analysis.input, spec)[:3]
    text = (
        f"The image gets {spec.count} copies with Gaussian noise (σ = {num(spec.sigma)} × the input's range, seed "
        f"{spec.seed}); one batched pass and one backward give the gradient at each copy, and its first, second and "
        f"third powers are averaged over the copies. The copies' gradients differ by up to {spread:.1%} of the largest."
    )
    if spread < 1e-4:
        text += (" They are the same here: at a layer followed only by pooling and a linear head the gradient does not "
                 "depend on the input, so Smooth Grad-CAM++ is Grad-CAM++ (pick an inner layer to see the smoothing).")
    gradients = Step("gradients", f"Gradients over {spec.count} noisy copies", text,
                     "the gradient of the class score at every activation, averaged over noisy copies",
                     (input_pictures(source, copies, [f"noisy copy {i + 1}" for i in range(len(copies))]),
                      Heatmaps(channel_tiles(first, channels, "mean gradient, channel"), signed(first))),
                     array(first))
    step = weights_step(
        weights, "The channel weights: α from the averaged powers",
        "As in Grad-CAM++, with the averaged powers: α = D₂ / (2D₂ + ΣA·D₃) and the weight is Σ α · ReLU(D₁).",
        "the positive gradient weighted by α at each position, summed",
        Heatmaps(channel_tiles(gradcampp_alpha(acts, second, third), channels, "α, channel")),
    )
    raw = weighted_sum(weights, acts)
    return [activations_step(source, channels, FOCUS), gradients, step, weighted_sum_step(weights, acts, raw)], raw


def intgradcam(source: Source) -> Story:
    acts = source.activations()
    spec = source.card.path_spec(source.layer, source.params)
    path = source.analysis.path(spec, source.target)
    weights = path_weights(path.gradients)
    change = acts - path.baseline
    channels = focus(weights, change)
    points = path_inputs(source.analysis.input, spec)
    picked = [0, (spec.count + 1) // 2, spec.count]
    mean = path.gradients.mean(dim=0)
    gradients = Step(
        "gradients", f"Gradients along {spec.count} steps from a blurred copy",
        f"The baseline is the image blurred by {num(spec.sigma)} pixels: its colours without its detail. {spec.count} "
        "evenly spaced points lead from it to the image; one batched pass and one backward give the gradient at "
        "each point. Shown: the baseline, the middle and the image, and the gradient averaged along the path.",
        "the gradient of the class score at every activation, averaged along a path from a blurred copy",
        (input_pictures(source, points[picked], ["baseline", "half way", "the image"]),
         Heatmaps(channel_tiles(mean, channels, "mean gradient, channel"), signed(mean))),
        array(mean),
    )
    step = weights_step(weights, "The channel weights: the path-averaged gradient",
                        "Grad-CAM's weights (mean gradient over the positions), averaged over the points of the path.",
                        "the mean gradient over positions and path points")
    baseline = Step(
        "baseline", "The change from the blurred copy",
        f"The weights multiply how much each channel changed between the blurred copy and the image, A(x) − A(x'), "
        f"not the activations themselves: what the blur already had takes no credit. The change runs from "
        f"{num(change.min())} to {num(change.max())}.",
        "the activations minus those of the blurred copy",
        (Heatmaps(channel_tiles(change, channels), signed(change)),), array(change),
    )
    raw = weighted_sum(weights, change)
    return [activations_step(source, channels, "the ones whose weighted change adds the most to the map"), gradients,
            step, baseline, weighted_sum_step(weights, change, raw, how="Σₖ wₖ · (Aₖ(x) − Aₖ(x'))")], raw
