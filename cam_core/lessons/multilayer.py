"""Lessons of the multi-layer methods: Layer-CAM, Zoom-CAM and Poly-CAM, each layer's map and how they combine."""

from __future__ import annotations

import numpy as np
import torch

from cam_core.inputs.masking import normalized_masks
from cam_core.lessons.gradient import mean_gradient_step
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
    num,
    shape,
    signed,
    top,
    weight_bars,
    weighted_sum_step,
)
from cam_core.methods.common import finest_size, min_max, upsample
from cam_core.methods.gradient import gradient_map
from cam_core.methods.multilayer import (
    PCAM_KEEP,
    layercam_fusion,
    layercam_scale,
    pcam_layer_map,
    pcam_refine,
    pcam_weights,
    polycam_base,
    polycam_masks,
    positive_gradient_map,
    refine_signed,
    zoomcam_fusion,
)
from cam_core.registry import LayerInputs


def stack(source: Source) -> list[LayerInputs]:
    """Each layer's activations and gradients, shallow to deep."""
    return [LayerInputs(name, source.activations(name), source.gradients(name)) for name in source.layers]


def flat(maps: list[torch.Tensor]) -> np.ndarray:
    """Several maps as one vector (a step's value)."""
    return np.concatenate([array(m).ravel() for m in maps])


def layer_maps_step(layers: list[LayerInputs], maps: list[torch.Tensor], formula: str, how: str) -> Step:
    """Every layer's own map."""
    pairs = list(zip(layers, maps, strict=True))
    sizes = ", ".join(f"{item.layer} {shape(m)}" for item, m in pairs)
    return Step("layer maps", "Each layer's map",
                f"The same arithmetic, {formula}, at every layer: {sizes}. Deep layers know which object, shallow "
                "layers where its edges are (and also light up on texture).", how,
                (Heatmaps(tuple((f"{item.layer} ({shape(m)})", array(m)) for item, m in pairs), True),),
                flat(maps))


def fusion_step(layers: list[LayerInputs], maps: list[torch.Tensor], scale, raw: torch.Tensor, words: str,
                how: str) -> Step:
    """Each layer's positive part scaled and upsampled to the finest layer, and the fused map."""
    size = finest_size(maps)
    scaled = [upsample(scale(min_max(m.clamp(min=0))), size) for m in maps]
    wins = torch.bincount(torch.stack(scaled).argmax(dim=0).flatten(), minlength=len(maps)).float() / raw.numel()
    winners = ", ".join(f"{item.layer} {float(share):.0%}" for item, share in zip(layers, wins, strict=True))
    return Step("fusion", "The fusion of the layers",
                f"{words} The strongest layer at each of the {size[0]}×{size[1]} positions: {winners}. Evidence "
                "against the class is fused the same way on its own and subtracted.", how,
                (Heatmaps((*((f"{item.layer}, scaled", array(m)) for item, m in zip(layers, scaled, strict=True)),
                           ("fused", array(raw))), True),), array(raw))


def layercam(source: Source) -> Story:
    layers = stack(source)
    deepest = layers[-1]
    positive = deepest.gradients.clamp(min=0)
    channels = top((positive * deepest.activations).sum(dim=(1, 2)), SHOWN_CHANNELS)
    maps = [positive_gradient_map(item.gradients, item.activations) for item in layers]
    weights = Step(
        "weights", "Position-wise weights: the positive gradient",
        "Layer-CAM keeps the gradient at each position instead of averaging it, and drops its negative part: "
        f"ReLU(g) weighs the activation at its own position. At {deepest.layer}, "
        f"{float((positive > 0).float().mean()):.0%} of the gradients are positive. Nothing is averaged, so this works "
        "at shallow, fine layers too.",
        "the positive gradient at each position, no averaging",
        (Heatmaps(channel_tiles(positive, channels, "ReLU(g), channel")),), array(positive),
    )
    steps = [activations_step(source, channels, "the ones whose positive-gradient-weighted activation adds the most"),
             gradients_step(source, channels), weights]
    if len(maps) == 1:
        raw = maps[0]
        steps.append(Step("channel sum", "The sum over channels",
                          f"Σₖ ReLU(gₖ) ⊙ Aₖ: one {shape(raw)} map from {num(raw.min())} to {num(raw.max())}.",
                          "the positively weighted activations added over the channels",
                          (Heatmaps((("Σ ReLU(g) ⊙ A", array(raw)),), True),), array(raw)))
        return steps, raw
    fusion, gamma = source.params["fusion"], float(source.params["gamma"])
    raw = layercam_fusion(maps, fusion, gamma)
    words = (f"Each layer's positive part is scaled to [0, 1], squashed by tanh({num(gamma)}·) so that the weaker "
             "shallow maps still count, upsampled to the finest layer and the maximum kept." if fusion == "max" else
             "Each layer's positive part is scaled to [0, 1], upsampled to the finest layer and the layers averaged.")
    return [*steps, layer_maps_step(layers, maps, "Σₖ ReLU(gₖ) ⊙ Aₖ", "Layer-CAM's map at every layer"),
            fusion_step(layers, maps, layercam_scale(fusion, gamma), raw, words,
                        f"{fusion} of the tanh-scaled maps" if fusion == "max" else "mean of the scaled maps")], raw


def zoomcam(source: Source) -> Story:
    layers = stack(source)
    deepest = layers[-1]
    product = deepest.gradients * deepest.activations
    channels = top(product.sum(dim=(1, 2)), SHOWN_CHANNELS)
    maps = [gradient_map(item.gradients, item.activations) for item in layers]
    raw = zoomcam_fusion(maps)
    multiply = Step("product", "Gradient × activation at every position",
                    "Zoom-CAM keeps the full gradient × activation at each position, as HiRes-CAM does, instead of "
                    f"averaging the gradient per channel. At {deepest.layer} it runs from {num(product.min())} to "
                    f"{num(product.max())}.", "the gradient times the activation at each position",
                    (Heatmaps(channel_tiles(product, channels), signed(product)),), array(product))
    return [activations_step(source, channels, "the ones whose gradient × activation adds the most"),
            gradients_step(source, channels), multiply,
            layer_maps_step(layers, maps, "Σₖ gₖ ⊙ Aₖ", "gradient × activation summed at every layer"),
            fusion_step(layers, maps, lambda m: m, raw, "Each layer's positive part is scaled to [0, 1], upsampled "
                        "to the finest layer and the maximum kept.", "the maximum of the scaled maps")], raw


def gradpolycam(source: Source) -> Story:
    layers = stack(source)
    deepest = layers[-1]
    coarse, weights = polycam_base(deepest, source.params["base"])
    masks = polycam_masks(layers[:-1], source.params["masks"], coarse)
    raw = refine_signed(coarse, masks)
    if weights is not None:
        channels = top(weights * deepest.activations.sum(dim=(1, 2)), SHOWN_CHANNELS)
        start = [mean_gradient_step(weights, shape(coarse)), weighted_sum_step(weights, deepest.activations, coarse)]
    else:
        positive = deepest.gradients.clamp(min=0)
        channels = top((positive * deepest.activations).sum(dim=(1, 2)), SHOWN_CHANNELS)
        start = [Step("channel sum", "The coarse map: Layer-CAM's", f"Σₖ ReLU(gₖ) ⊙ Aₖ at {deepest.layer}, one "
                      f"{shape(coarse)} map.", "Layer-CAM's map at the deepest layer",
                      (Heatmaps((("coarse map", array(coarse)),), True),), array(coarse))]
    kind = ("its Layer-CAM map, ReLU(Σₖ ReLU(gₖ) ⊙ Aₖ), which is about the class" if source.params["masks"] ==
            "layercam" else "its activations' positive part summed over channels (class-agnostic, bright at the "
            "border)")
    mask_step = Step("layer maps", "The finer layers' masks",
                     f"Each finer layer gives a mask: {kind}. From coarse to fine: "
                     f"{', '.join(shape(m) for m in masks) or 'none (no layer is finer than the deepest one)'}.",
                     f"the finer layers' {'Layer-CAM maps' if source.params['masks'] == 'layercam' else 'activations'}",
                     (Heatmaps(tuple((shape(m), array(m)) for m in masks)),) if masks else (), flat(masks or [coarse]))
    steps_so_far = [refine_signed(coarse, masks[:i]) for i in range(1, len(masks) + 1)]
    refining = Step("refine", "Refining coarse to fine",
                    "At each finer layer the map is upsampled and multiplied by the mask divided by its average "
                    "within each cell of the coarser grid: each cell keeps its evidence and only moves it towards the "
                    + (f"pixels the finer layer points at. The map grows from {shape(coarse)} to {shape(raw)}." if masks
                       else f"pixels the finer layer points at. With no finer layer the map stays {shape(raw)}."),
                    "the coarse map redistributed within each cell by the finer masks",
                    (Heatmaps((("start", array(coarse)), *((f"refined at {shape(m)}", array(m)) for m in steps_so_far)),
                              True),), array(raw))
    return [activations_step(source, channels, "the ones that add the most to the coarse map", deepest.layer),
            gradients_step(source, channels, deepest.layer), *start, mask_step, refining], raw


PCAM_WEIGHTS = {
    "PCAM+": "the probability of “{label}” on the image kept inside the mask, p(X∘H)",
    "PCAM−": "how far the probability of “{label}” falls when the mask's region is cut out, ReLU(p(X) − p(X∘(1−H)))",
    "PCAM±": "both together, ReLU(p(X∘H) + p(X) − p(X∘(1−H))): what the region gives when kept and what it takes "
    "when cut out",
}


def polycam(source: Source) -> Story:
    variant = source.params["variant"]
    ordered = sorted(source.layers, key=lambda name: source.activations(name)[0].numel())
    layers = []
    for name in ordered:
        scores = source.analysis.mask_scores(source.card.mask_spec(name, source.params, source.target),
                                             progress=source.progress)
        layers.append(LayerInputs(name, source.activations(name), mask_scores=scores))
    deepest = layers[0]
    weights = pcam_weights(deepest.mask_scores, source.target, variant)
    maps = [pcam_layer_map(item, source.target, variant) for item in layers]
    raw = pcam_refine(maps)
    channels = top(weights * deepest.activations.clamp(min=0).sum(dim=(1, 2)), SHOWN_CHANNELS)
    size = source.analysis.input.shape[-1]
    masks, _ = normalized_masks(deepest.activations[channels], size, scaling="percentile")
    passes = sum(item.activations.shape[0] for item in layers) * (2 if PCAM_KEEP[variant] == "both" else 1)
    best = int(torch.argmax(weights))
    steps = [
        activations_step(source, channels, "the ones that add the most to its map", deepest.layer),
        Step("masks", "Each channel of every layer becomes a mask",
             "Each channel is shifted by its 0.1th percentile, divided by its 99.9th, clipped to [0, 1] and upsampled "
             f"to the {size}×{size} input. {'It keeps the image inside the mask' if variant == 'PCAM+' else ''}"
             f"{'It cuts the mask out of the image' if variant == 'PCAM−' else ''}"
             f"{'The image is kept inside the mask once and cut out of it once' if variant == 'PCAM±' else ''}: "
             f"{passes} passes over the {len(layers)} layers, shared by every class.",
             "every channel of every layer, scaled and upsampled, as a mask",
             (Heatmaps(tuple((f"mask of channel {k}", array(masks[i, 0])) for i, k in enumerate(channels))),),
             array(masks)),
        Step("scores", "The channel weights",
             f"A channel's weight is {PCAM_WEIGHTS[variant].format(label=source.label)}. At {deepest.layer}, "
             f"channel {best} weighs most, {num(weights[best])}.",
             f"{variant} scores of the masked inputs", (weight_bars(weights, "weight"),), array(weights)),
        Step("layer maps", "Each layer's map",
             "At every layer the weighted sum of its channels, rectified: S = ReLU(Σₖ wₖ Aₖ). From coarse to fine: "
             f"{', '.join(f'{item.layer} ({shape(m)})' for item, m in zip(layers, maps, strict=True))}.",
             "each layer's score-weighted channel sum",
             (Heatmaps(tuple((f"{item.layer} ({shape(m)})", array(m)) for item, m in zip(layers, maps, strict=True))),),
             flat(maps)),
        Step("refine", "Refining coarse to fine",
             "Going to each finer layer, its map is divided by its own bilinear down-and-upsampled copy at the coarser "
             "grid, so that every coarse cell keeps its evidence and the finer layer only says where inside the "
             f"cell it lies; the ratio multiplies the upsampled coarser map. The map grows from {shape(maps[0])} to "
             f"{shape(raw)}.",
             "the coarse map redistributed within each cell by the finer layers' score maps",
             (Heatmaps(tuple((f"after {item.layer}", array(pcam_refine(maps[: i + 1])))
                             for i, item in enumerate(layers))),), array(raw)),
    ]
    return steps, raw
