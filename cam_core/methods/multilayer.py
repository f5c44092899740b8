"""Multi-layer methods: maps from several depths combined, for detail the last layer's coarse grid cannot give."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from cam_core.inputs.mask_scores import MaskScores, MaskSpec
from cam_core.inputs.masking import normalized_masks
from cam_core.lessons.steps import (
    SHOWN_CHANNELS,
    Heatmaps,
    Source,
    Step,
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
from cam_core.methods.common import (
    KEEPS_POSITIVE_GRADIENT,
    finest_size,
    fuse_signed,
    gradcam_weights,
    upsample,
    weighted_sum,
)
from cam_core.methods.gradient import POOLING_HEAD, gradient_map, mean_gradient_step
from cam_core.registry import CamInputs, LayerInputs, MethodCard, MethodOutput, Param, Peer, register
from cam_core.scaling import min_max


def layer_stack(inputs: CamInputs) -> tuple[LayerInputs, ...]:
    """The layers of a multi-layer call, shallow to deep; the single layer when none were stacked."""
    return inputs.stack or (LayerInputs("", inputs.activations, inputs.gradients),)


LAYERCAM = MethodCard(
    alike=KEEPS_POSITIVE_GRADIENT,
    id="layercam",
    name="Layer-CAM",
    family="Multi-layer",
    needs=frozenset({"gradients", "layer_stack"}),
    cost="fast",
    summary="Positive gradients used as position-wise weights, so shallow layers give fine maps; several "
    "layers can be fused.",
    explanation=(
        "Layer-CAM keeps only the positive gradient at each position and uses it as that position's weight for "
        "the activation. Because nothing is averaged over the channel, it stays meaningful at shallow, "
        "high-resolution layers where Grad-CAM's averages wash out. Given several layers, each layer's map is "
        "scaled to [0, 1], squashed with tanh(γ·) so that the weaker shallow maps still count, upsampled to the "
        "finest layer and fused by taking the maximum (or, as pytorch-grad-cam does, the mean). Where a layer's "
        "activations can be negative (before a ReLU, or a transformer's norm) its map has evidence against the "
        "class too; that part is scaled and fused on its own and subtracted, so it does not cancel the "
        "evidence for."
    ),
    formula=r"L^c_l = \mathrm{ReLU}\Big(\sum_k \mathrm{ReLU}\big(\tfrac{\partial y^c}{\partial A^k_l}\big)"
    r" \odot A^k_l\Big) \qquad "
    r"L^c = \max_l\ \mathrm{up}\big(\tanh(\gamma\,\hat L^c_l)\big)",
    paper="Jiang et al., LayerCAM: Exploring Hierarchical Class Activation Maps for Localization, IEEE TIP 2021",
    definition="Jiang et al., IEEE TIP 2021, eq. 5–6: ReLU(Σₖ ReLU(∂yᶜ/∂Aᵏ) ⊙ Aᵏ); layers fused by max after tanh(γ·)",
    reference="paper",
    peers=(Peer("pytorch-grad-cam", "LayerCAM"), Peer("torchcam", "LayerCAM")),
    strengths=("Works at shallow layers", "Sharper object boundaries when layers are fused"),
    weaknesses=("Shallow layers also light up on edges and texture", "No per-channel weights", POOLING_HEAD),
    params=(
        Param(
            "fusion",
            "max",
            "how the layers' maps are fused: max after tanh scaling (the paper) or the "
            "mean of the scaled maps (pytorch-grad-cam)",
            choices=("max", "mean"),
        ),
        Param("gamma", 2.0, "tanh scaling of each layer's map before a max fusion", minimum=0.1, maximum=10.0),
    ),
    multi_layer=True,
)


def layercam(inputs: CamInputs, fusion: str, gamma: float) -> MethodOutput:
    """Positive gradients × activations, position by position; layers fused by max of tanh-scaled maps or mean."""
    maps = [positive_gradient_map(item.gradients, item.activations) for item in layer_stack(inputs)]
    return MethodOutput(maps[0] if len(maps) == 1 else layercam_fusion(maps, fusion, gamma))


def positive_gradient_map(gradients: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
    """Σ_k ReLU(gradient_k) ⊙ activation_k: one layer's Layer-CAM map, before its ReLU."""
    return (gradients.clamp(min=0) * activations).sum(dim=0)


def layercam_scale(fusion: str, gamma: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """How Layer-CAM squashes each layer's [0, 1]-scaled map before fusing: tanh(γ·) for max, nothing for mean."""
    return (lambda m: torch.tanh(gamma * m)) if fusion == "max" else (lambda m: m)


def layercam_fusion(maps: list[torch.Tensor], fusion: str, gamma: float) -> torch.Tensor:
    """Several layers' Layer-CAM maps fused at the finest resolution (max after tanh scaling, or mean)."""
    return fuse_signed(maps, layercam_scale(fusion, gamma), fusion)


ZOOMCAM = MethodCard(
    id="zoomcam",
    name="Zoom-CAM",
    family="Multi-layer",
    needs=frozenset({"gradients", "layer_stack"}),
    cost="fast",
    summary="Gradient × activation at every position of every layer, the layers' maps fused by maximum.",
    explanation=(
        "Zoom-CAM keeps the full gradient × activation product at each position instead of averaging the "
        "gradient per channel (as HiRes-CAM does at one layer), computes that map at several depths, scales "
        "each to [0, 1], upsamples them to the finest layer and keeps the strongest evidence at each position. "
        "Deep layers say which object, shallow layers where its edges are. Each layer's map passes a ReLU before "
        "it is scaled, as in the authors' fusion, so the map shows evidence for the class only."
    ),
    formula=r"L^c_l = \mathrm{ReLU}\Big(\sum_k \frac{\partial y^c}{\partial A^k_l}\odot A^k_l\Big) \qquad "
    r"L^c = \max_l\ \mathrm{up}\big(\mathrm{minmax}(L^c_l)\big)",
    paper="Shi, Khademi, Li & van Gemert, Zoom-CAM: Generating Fine-grained Pixel Annotations from Image Labels, "
    "ICPR 2020",
    definition="Shi et al., ICPR 2020, the authors' fusion: per layer ReLU(Σₖ g ⊙ A), min-max, upsampled to the "
    "finest layer, max",
    reference="authors' code",
    strengths=("Finer maps than any single deep layer", "One backward per layer and class"),
    weaknesses=("Shallow layers add texture and edges of other objects", "Fusion by max keeps their noise",
                "No map of the evidence against the class: each layer's map is rectified before fusion"),
    signed=False,
    multi_layer=True,
    pyramid_by_default=True,
    resolution="finest layer",
)


def zoomcam(inputs: CamInputs) -> MethodOutput:
    """Per-layer gradient × activation maps, min-max scaled, fused by maximum at the finest resolution."""
    maps = [gradient_map(item.gradients, item.activations) for item in layer_stack(inputs)]
    return MethodOutput(zoomcam_fusion(maps))


def zoomcam_fusion(maps: list[torch.Tensor]) -> torch.Tensor:
    """Zoom-CAM's fusion: each layer's map rectified, min-max scaled, upsampled to the finest layer, the maximum
    kept."""
    size = finest_size(maps)
    return torch.stack([upsample(min_max(m.clamp(min=0)), size) for m in maps]).amax(dim=0)


def local_normalise(values: torch.Tensor, coarse: tuple[int, int], eps: float = 1e-12) -> torch.Tensor:
    """values divided by their mean over the cell of the coarse grid each position falls in (so each cell averages
    1); a cell with no activation spreads evenly (1 everywhere)."""
    cell_means = F.adaptive_avg_pool2d(values[None, None], coarse)
    spread = F.interpolate(cell_means, size=values.shape, mode="nearest")[0, 0]
    return torch.where(spread > eps, values / spread.clamp(min=eps), torch.ones_like(values))


def refine(coarse: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
    """coarse upsampled through each mask in turn (coarse to fine), multiplied by the locally normalised mask."""
    current = coarse
    for mask in masks:
        current = upsample(current, tuple(mask.shape)) * local_normalise(mask, tuple(current.shape))
    return current


GRADPOLYCAM = MethodCard(
    alike=KEEPS_POSITIVE_GRADIENT,
    id="gradpolycam",
    name="Gradient Poly-CAM",
    family="Multi-layer",
    needs=frozenset({"gradients", "layer_stack"}),
    cost="fast",
    summary="Poly-CAM's backward refinement driven by gradients instead of masked inputs (the CAM survey's "
    "variant).",
    explanation=(
        "This is the variant of Poly-CAM the CAM survey's author implements: the paper's refinement with "
        "gradients in place of masked-input scores, so it costs no extra passes. It starts from an ordinary "
        "class map at the deepest layer, which knows what the object is but only on a coarse grid. It then "
        "walks back to shallower, finer layers. At each one it upsamples the current map and multiplies it by "
        "a mask of that layer, normalised within each cell of the coarser grid so that the cell keeps its "
        "average. The class evidence of a coarse cell is thus only redistributed "
        "inside the cell, towards the pixels the finer layer points at: the map gets sharper without borrowing "
        "evidence from elsewhere. The mask is the layer's Layer-CAM map (positive gradient × activation, so it "
        "is about the class, as in the paper), or its activations summed over channels, which are class-agnostic "
        "and, in networks with zero padding, brightest along the image border. Evidence against the class is "
        "refined the same way and subtracted."
    ),
    formula=r"S_L = \mathrm{Grad\text{-}CAM}_L \qquad "
    r"F_l = \mathrm{ReLU}\Big(\sum_k \mathrm{ReLU}\big(\tfrac{\partial y^c}{\partial A^k_l}\big)\odot A^k_l\Big)"
    r" \qquad S_l = \mathrm{up}(S_{l+1}) \odot \frac{F_l}{\mathrm{up}\big(\mathrm{avgpool}_{S_{l+1}}(F_l)\big)}"
    r"\qquad (\text{or } F_l = \sum_k \mathrm{ReLU}(A^k_l))",
    paper="The CAM survey of the reference notes, after Englebert, Cornu & De Vleeschouwer, Poly-CAM: High "
    "resolution class activation map for convolutional neural networks, 2022 (the paper's method is Poly-CAM)",
    definition="the CAM survey's gradient variant of Poly-CAM: the deepest Grad-CAM map refined by the finer layers' "
    "Layer-CAM maps",
    reference="hand-computed tensors",
    strengths=("High-resolution maps that stay class-specific", "No extra passes beyond the layers' gradients"),
    weaknesses=(
        "Needs layers of increasing resolution",
        "Inherits the deepest map's mistakes",
        "Speckled: shallow layers' gradients are noisy",
    ),
    params=(
        Param(
            "base",
            "gradcam",
            "the deepest layer's map: Grad-CAM, or Layer-CAM's positive-gradient map",
            choices=("gradcam", "layercam"),
        ),
        Param(
            "masks",
            "layercam",
            "what refines the map at each finer layer: its Layer-CAM map (positive gradient × activation, "
            "class-specific), or its activations summed over channels (class-agnostic, bright at the border)",
            choices=("layercam", "activations"),
        ),
    ),
    multi_layer=True,
    pyramid_by_default=True,
    resolution="finest layer",
)


def gradpolycam(inputs: CamInputs, base: str, masks: str) -> MethodOutput:
    """Deepest map refined coarse to fine by locally normalised activation masks; evidence for and against alike."""
    stack = layer_stack(inputs)
    coarse, weights = polycam_base(stack[-1], base)
    layer_masks = polycam_masks(stack[:-1], masks, coarse)
    note = "" if layer_masks else "no layer is finer than the deepest one, so there is nothing to refine"
    return MethodOutput(refine_signed(coarse, layer_masks), weights, note)


def polycam_base(deepest: LayerInputs, base: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gradient Poly-CAM's starting map at the deepest layer (Grad-CAM's, with its channel weights, or Layer-CAM's)."""
    if base == "gradcam":
        weights = gradcam_weights(deepest.gradients)
        return weighted_sum(weights, deepest.activations), weights
    return positive_gradient_map(deepest.gradients, deepest.activations), None


def polycam_masks(finer: Sequence[LayerInputs], masks: str, coarse: torch.Tensor) -> list[torch.Tensor]:
    """Gradient Poly-CAM's refining masks of the layers finer than the coarse map, coarse to fine: each layer's
    Layer-CAM map after its ReLU, or its activations' positive part summed over channels."""
    ordered = sorted(finer, key=lambda item: item.activations.shape[1] * item.activations.shape[2])
    if masks == "activations":
        found = [item.activations.clamp(min=0).sum(dim=0) for item in ordered]
    else:
        found = [positive_gradient_map(item.gradients, item.activations).clamp(min=0) for item in ordered]
    return [mask for mask in found if mask.numel() > coarse.numel()]


def refine_signed(coarse: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
    """The evidence for and against the class in coarse, each refined through the masks; their difference."""
    return refine(coarse.clamp(min=0), masks) - refine((-coarse).clamp(min=0), masks)


PCAM_VARIANTS = ("PCAM±", "PCAM+", "PCAM−")
PCAM_KEEP = {"PCAM±": "both", "PCAM+": "inside", "PCAM−": "outside"}


POLYCAM = MethodCard(
    id="polycam",
    name="Poly-CAM",
    family="Multi-layer",
    needs=frozenset({"mask_scores", "layer_stack"}),
    cost="slow",
    summary="Score-CAM-like maps at every layer of the pyramid, the deepest refined by the finer ones through a "
    "local normalisation.",
    explanation=(
        "Poly-CAM computes a perturbation map at each layer of the pyramid, from the deepest (which knows the "
        "class, on a coarse grid) to the finest. Each channel, scaled to [0, 1] by its robust range and "
        "upsampled, masks the image. PCAM+ weights the channel by the class probability of the image kept inside "
        "the mask (as Score-CAM does); PCAM− by how much the probability falls when the mask's region is cut out; "
        "PCAM± by both together. Going from coarse to fine, each layer's map is divided by its own bilinear "
        "down- and upsampled copy at the coarser grid, so every coarse cell keeps its evidence and the finer "
        "layer only says where inside the cell it lies; that ratio multiplies the upsampled coarser map. No "
        "gradients: it costs one pass per channel of every layer (two for PCAM±), and the passes serve every "
        "class."
    ),
    formula=r"w^{c}_{k,l} = \mathrm{ReLU}\big(p^c(X\circ H^k_l) + p^c(X) - p^c(X\circ(1-H^k_l))\big)\ "
    r"(\pm) \qquad S_l = \mathrm{ReLU}\Big(\sum_k w^c_{k,l} A^k_l\Big) \qquad "
    r"P_L = S_L,\ P_l = \mathrm{ReLU}\Big(\frac{S_l}{\mathrm{up}(\mathrm{down}_{l+1}(S_l))}\odot"
    r"\mathrm{up}(P_{l+1})\Big)",
    paper="Englebert, Cornu & De Vleeschouwer, Poly-CAM: High resolution class activation map for "
    "convolutional neural networks, 2022 (authors' code aenglebert/polycam)",
    definition="Englebert, Cornu & De Vleeschouwer 2022 and the authors' code: PCAM± (PCAM+: p(X∘H); PCAM−: ReLU(p(X) "
    "− p(X∘(1−H)))) at every pyramid layer, masks scaled by (A − p0.1)/p99.9; refined coarse to fine by a bilinear "
    "local normalisation",
    reference="authors' code",
    strengths=("High-resolution maps that stay class-specific", "No gradients", "Every class from the same passes"),
    weaknesses=("One pass per channel of every layer (two for PCAM±): the slowest method here",
                "Needs layers of increasing resolution", "Inherits the deepest map's mistakes"),
    params=(
        Param("variant", "PCAM±", "PCAM± (both scores, the paper's main method), PCAM+ (the probability of the "
              "image kept inside the mask) or PCAM− (the fall of the probability when it is cut out)",
              choices=PCAM_VARIANTS),
    ),
    multi_layer=True,
    pyramid_by_default=True,
    resolution="finest layer",
    mask_spec=lambda layer, params, target: MaskSpec(
        layer, "channels", scaling="percentile", keep=PCAM_KEEP[params["variant"]]
    ),
)


def polycam(inputs: CamInputs, variant: str) -> MethodOutput:
    """Perturbation maps at every layer, refined coarse to fine through local normalisation."""
    stack = sorted(layer_stack(inputs), key=lambda item: item.activations.shape[1] * item.activations.shape[2])
    maps = [pcam_layer_map(item, inputs.target, variant) for item in stack]
    note = "" if len(maps) > 1 else "one layer only, so there is nothing to refine"
    return MethodOutput(pcam_refine(maps), note=note)


def pcam_weights(scores: MaskScores, target: int, variant: str) -> torch.Tensor:
    """Poly-CAM's channel weights at one layer: p(X∘H) (+), ReLU(p(X) − p(X∘(1−H))) (−), or ReLU of their sum (±)."""
    probabilities = scores.probabilities[:, target]
    if variant == "PCAM+":
        return probabilities
    full = scores.input_probabilities[target]
    if variant == "PCAM−":
        return (full - probabilities).clamp(min=0)
    inside, outside = probabilities.chunk(2)
    return (inside + full - outside).clamp(min=0)


def pcam_layer_map(item: LayerInputs, target: int, variant: str) -> torch.Tensor:
    """One layer's Poly-CAM map: ReLU(Σ_k w_k A^k)."""
    weights = pcam_weights(item.mask_scores, target, variant)
    return weighted_sum(weights.to(item.activations.dtype), item.activations).clamp(min=0)


def pcam_refine(maps: list[torch.Tensor], eps: float = 1e-12) -> torch.Tensor:
    """Poly-CAM's backward refinement of layer maps ordered coarse to fine: each finer map divided by its bilinear
    down-and-up-sampled copy at the current grid, times the current map upsampled bilinearly, rectified."""
    current = maps[0]
    for finer in maps[1:]:
        coarse = F.interpolate(finer[None, None], size=tuple(current.shape), mode="bilinear")
        spread = F.interpolate(coarse, size=tuple(finer.shape), mode="bilinear")[0, 0]
        current = (finer / spread.clamp(min=eps) * upsample(current, tuple(finer.shape))).clamp(min=0)
    return current


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


def layercam_lesson(source: Source) -> list[Step]:
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
    raw = source.raw
    if len(maps) == 1:
        steps.append(Step("channel sum", "The sum over channels",
                          f"Σₖ ReLU(gₖ) ⊙ Aₖ: one {shape(raw)} map from {num(raw.min())} to {num(raw.max())}.",
                          "the positively weighted activations added over the channels",
                          (Heatmaps((("Σ ReLU(g) ⊙ A", array(raw)),), True),), array(raw)))
        return steps
    fusion, gamma = source.params["fusion"], float(source.params["gamma"])
    words = (f"Each layer's positive part is scaled to [0, 1], squashed by tanh({num(gamma)}·) so that the weaker "
             "shallow maps still count, upsampled to the finest layer and the maximum kept." if fusion == "max" else
             "Each layer's positive part is scaled to [0, 1], upsampled to the finest layer and the layers averaged.")
    return [*steps, layer_maps_step(layers, maps, "Σₖ ReLU(gₖ) ⊙ Aₖ", "Layer-CAM's map at every layer"),
            fusion_step(layers, maps, layercam_scale(fusion, gamma), raw, words,
                        f"{fusion} of the tanh-scaled maps" if fusion == "max" else "mean of the scaled maps")]


def zoomcam_lesson(source: Source) -> list[Step]:
    layers = stack(source)
    deepest = layers[-1]
    product = deepest.gradients * deepest.activations
    channels = top(product.sum(dim=(1, 2)), SHOWN_CHANNELS)
    maps = [gradient_map(item.gradients, item.activations) for item in layers]
    raw = source.raw
    multiply = Step("product", "Gradient × activation at every position",
                    "Zoom-CAM keeps the full gradient × activation at each position, as HiRes-CAM does, instead of "
                    f"averaging the gradient per channel. At {deepest.layer} it runs from {num(product.min())} to "
                    f"{num(product.max())}.", "the gradient times the activation at each position",
                    (Heatmaps(channel_tiles(product, channels), signed(product)),), array(product))
    return [activations_step(source, channels, "the ones whose gradient × activation adds the most"),
            gradients_step(source, channels), multiply,
            layer_maps_step(layers, maps, "Σₖ gₖ ⊙ Aₖ", "gradient × activation summed at every layer"),
            fusion_step(layers, maps, lambda m: m, raw, "Each layer's positive part is scaled to [0, 1], upsampled "
                        "to the finest layer and the maximum kept.", "the maximum of the scaled maps")]


def gradpolycam_lesson(source: Source) -> list[Step]:
    layers = stack(source)
    deepest = layers[-1]
    coarse, weights = polycam_base(deepest, source.params["base"])
    masks = polycam_masks(layers[:-1], source.params["masks"], coarse)
    raw = source.raw
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
            gradients_step(source, channels, deepest.layer), *start, mask_step, refining]


PCAM_WEIGHTS = {
    "PCAM+": "the probability of “{label}” on the image kept inside the mask, p(X∘H)",
    "PCAM−": "how far the probability of “{label}” falls when the mask's region is cut out, ReLU(p(X) − p(X∘(1−H)))",
    "PCAM±": "both together, ReLU(p(X∘H) + p(X) − p(X∘(1−H))): what the region gives when kept and what it takes "
    "when cut out",
}


def polycam_lesson(source: Source) -> list[Step]:
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
    raw = source.raw
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
    return steps


register(LAYERCAM, layercam, layercam_lesson)
register(ZOOMCAM, zoomcam, zoomcam_lesson)
register(GRADPOLYCAM, gradpolycam, gradpolycam_lesson)
register(POLYCAM, polycam, polycam_lesson)
