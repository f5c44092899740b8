"""What a lesson is made of: steps with a stage, a heading, a text with this image's numbers, and small typed data
to draw; and the steps most methods share (activations, gradients, weights, weighted sum, ReLU, upsampling, overlay).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

import numpy as np
import torch

from cam_core.registry import MethodCard, MethodOutput
from cam_core.render.saliency import evidence_range, saliency_map
from cam_core.scaling import is_blank

if TYPE_CHECKING:
    from cam_core.engine.analysis import Analysis
    from cam_core.passes.inference import Progress

STAGES = {
    "activations": "the activations",
    "gradients": "the gradients",
    "weights": "the channel weights",
    "product": "gradient × activation",
    "baseline": "the change from the baseline",
    "weighted sum": "the weighted sum",
    "channel sum": "the sum over channels",
    "matrix": "the positions × channels matrix",
    "singular values": "the singular values",
    "component": "the first principal component",
    "sign fix": "the sign fix",
    "masks": "the masks",
    "masked inputs": "the masked inputs",
    "noise": "the noisy masks",
    "integration": "the faded-in masks",
    "clusters": "the channel groups",
    "scores": "the scores",
    "softmax": "the softmax",
    "layer maps": "each layer's map",
    "fusion": "the fusion of the layers",
    "refine": "the refinement",
    "gate": "the gate",
    "input gradients": "the input gradients",
    "bias gradients": "the bias gradients",
    "comparison": "the compared classes",
    "difference": "the gradient of the difference",
    "hessian": "the Hessian-vector product",
    "superpixels": "the superpixels",
    "sample weights": "the sample weights",
    "regression": "the weighted regression",
    "map": "the map",
    "relu": "the ReLU",
    "upsample": "the upsampling",
    "overlay": "the overlay",
    "threshold": "the k-sigma threshold",
    "kernel": "the kernel matrix",
    "concepts": "the concepts",
    "attention": "the attention probabilities",
    "attention gradients": "the gradients at the attention",
    "rollout": "the rollout through the blocks",
    "relevance": "the relevance through the blocks",
    "class row": "the class token's row",
}
SHOWN_CHANNELS = 4
SHOWN_BARS = 12
FOCUS = "the ones that add the most to the map (largest |weight × total activation|)"


@dataclass(frozen=True)
class Heatmaps:
    """Titled 2-D arrays side by side; signed ones on a scale centred at 0."""

    tiles: tuple[tuple[str, np.ndarray], ...]
    signed: bool = False


@dataclass(frozen=True)
class Bars:
    """One bar per key (a channel, group, …), with an optional reference level such as a baseline score."""

    title: str
    key_name: str
    keys: tuple[int, ...]
    value_name: str
    values: np.ndarray
    reference: float | None = None
    reference_name: str = ""


@dataclass(frozen=True)
class Line:
    """Values against their index, such as a scree plot of singular values."""

    title: str
    x_name: str
    y_name: str
    values: np.ndarray


@dataclass(frozen=True)
class Montage:
    """Titled (H, W, 3) uint8 pictures."""

    pictures: tuple[tuple[str, np.ndarray], ...]


@dataclass(frozen=True)
class Overlay:
    """A [0, 1] map at the image's size, to be shown over the image; low and high: the real values (the map after
    the ReLU, in the method's units) that 0 and 1 stand for."""

    title: str
    saliency: np.ndarray
    low: float = 0.0
    high: float = 1.0


Chart = Union[Heatmaps, Bars, Line, Montage, Overlay]


@dataclass(frozen=True)
class Step:
    """One step of a method: stage (from STAGES), heading, text with this image's numbers, how this method does the
    stage (one phrase, for comparisons), charts, and value: the step's full result, for telling two lessons apart."""

    stage: str
    heading: str
    text: str
    how: str
    charts: tuple[Chart, ...] = ()
    value: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"unknown stage {self.stage!r}; add it to STAGES")


@dataclass(frozen=True)
class Lesson:
    """A method's card and its steps on one image, class and layer; raw is the signed map the steps arrive at and
    saliency the [0, 1] map at the image's size (both equal the method's own result)."""

    card: MethodCard
    target: int
    label: str
    layers: tuple[str, ...]
    params: dict
    steps: tuple[Step, ...]
    raw: np.ndarray
    saliency: np.ndarray
    note: str = ""


@dataclass(frozen=True)
class Source:
    """What a lesson reads: the Analysis (through its public, cached accessors), the method, the class, the layers
    (shallow to deep; the last is the layer of single-layer methods), the full parameters, and the method's own
    output, which the lesson explains and never recomputes."""

    analysis: Analysis
    card: MethodCard
    target: int
    layers: tuple[str, ...]
    params: dict
    output: MethodOutput
    progress: Progress | None = None

    @property
    def raw(self) -> torch.Tensor:
        """The method's signed map: where the lesson's steps arrive."""
        return self.output.raw

    @property
    def weights(self) -> torch.Tensor | None:
        """The method's weights (one per channel, group or mask), where it has them."""
        return self.output.weights

    @property
    def layer(self) -> str:
        return self.layers[-1]

    @property
    def label(self) -> str:
        return self.analysis.explainer.labels[self.target]

    def activations(self, layer: str | None = None) -> torch.Tensor:
        return self.analysis.activations(layer or self.layer)

    def gradients(self, layer: str | None = None) -> torch.Tensor:
        return self.analysis.gradients(self.target, layer or self.layer)


def num(value: float) -> str:
    """A number as a student reads it: three significant digits."""
    return f"{float(value):.3g}"


def shape(values: torch.Tensor) -> str:
    return "×".join(str(n) for n in values.shape)


def top(scores: torch.Tensor, count: int) -> list[int]:
    """Indices of the count largest |scores|, largest first (ties: lower index first)."""
    magnitude = scores.detach().abs().double()
    order = sorted(range(magnitude.numel()), key=lambda i: (-float(magnitude[i]), i))
    return order[: min(count, magnitude.numel())]


def array(values: torch.Tensor) -> np.ndarray:
    return values.detach().float().numpy()


def signed(values: torch.Tensor) -> bool:
    return bool(values.min() < 0)


def span(values: torch.Tensor) -> str:
    """A map's range in words."""
    low, high = values.min(), values.max()
    if bool(is_blank(low, high)):
        return f"{num(low)} everywhere"
    return f"{num(low)} … {num(high)}"


def channel_tiles(values: torch.Tensor, channels: list[int], what: str = "channel") -> tuple:
    """(title with the range, map) of each of the channels."""
    return tuple((f"{what} {k}: {span(values[k])}", array(values[k])) for k in channels)


def relu6_text(source: Source, acts: torch.Tensor) -> str:
    """One sentence on the cap at 6, where the model's ReLU6 caps these activations."""
    capped = any(isinstance(m, torch.nn.ReLU6) for m in source.analysis.explainer.model.module.modules())
    if not capped or float(acts.max()) != 6.0:
        return ""
    share = float((acts == 6.0).float().mean())
    return (f" That is the cap: {source.analysis.explainer.name}'s ReLU6 clips every activation at 6 (min(max(x, 0), "
            f"6)); {share:.1%} of these values sit there.")


def activations_step(source: Source, channels: list[int], why: str, layer: str | None = None) -> Step:
    """The layer's activation tensor, a few channels of it shown."""
    layer = layer or source.layer
    acts = source.activations(layer)
    count, height, width = acts.shape
    peak = int(torch.argmax(acts.flatten(1).amax(dim=1)))
    zeros = float((acts == 0).float().mean())
    others = [name for name in source.layers if name != layer]
    more = ""
    if others:
        sizes = ", ".join(f"{name} ({shape(source.activations(name))})" for name in others)
        more = f" The method also reads {sizes}."
    text = (
        f"The image goes through the network once; at **{layer}** it is {count} channels of {height}×{width} "
        f"positions ({acts.numel():,} numbers, {zeros:.0%} of them zero). The strongest activation, "
        f"{num(acts.max())}, is in channel {peak}.{relu6_text(source, acts)} Shown: channels "
        f"{', '.join(map(str, channels))}, {why}.{more}"
    )
    return Step("activations", "The activations", text, f"the {count} channels of {height}×{width} at {layer}",
                (Heatmaps(channel_tiles(acts, channels), signed(acts)),), array(acts))


def gradients_step(source: Source, channels: list[int], layer: str | None = None) -> Step:
    """The gradient of the class score at the layer, for the channels shown."""
    layer = layer or source.layer
    grads = source.gradients(layer)
    spread = float(grads.std(dim=(1, 2)).max()) if grads.shape[1] * grads.shape[2] > 1 else 0.0
    flat = spread <= 1e-7 * max(float(grads.abs().max()), 1e-30)
    text = (
        f"One backward pass from the score of “{source.label}” to {layer} gives a gradient for every activation: "
        f"{grads.numel():,} numbers from {num(grads.min())} to {num(grads.max())}, "
        f"{float((grads > 0).float().mean()):.0%} of them positive. A positive gradient means: more of this "
        "activation, more of this class."
    )
    if flat:
        text += (" Here every position of a channel has the same gradient: the head averages the positions before it "
                 "looks at them.")
    return Step("gradients", f"The gradients of “{source.label}”", text,
                "the gradient of the class score at every activation (one backward pass)",
                (Heatmaps(channel_tiles(grads, channels), signed(grads)),), array(grads))


def weight_bars(weights: torch.Tensor, name: str, key_name: str = "channel") -> Bars:
    """The largest weights by magnitude as bars."""
    keys = top(weights, SHOWN_BARS)
    return Bars(f"the {len(keys)} largest of {weights.numel()} {name}s (by size)", key_name, tuple(keys), name,
                array(weights[keys]))


def weights_text(weights: torch.Tensor, key_name: str = "channel") -> str:
    """How many weights there are, of which sign, and the extreme ones."""
    high, low = int(torch.argmax(weights)), int(torch.argmin(weights))
    text = (
        f"{weights.numel()} weights, {int((weights > 0).sum())} positive and {int((weights < 0).sum())} negative. "
        f"The largest is {key_name} {high} with {num(weights[high])}"
    )
    if weights[low] < 0:
        text += f"; the most negative is {key_name} {low} with {num(weights[low])}"
    return text + "."


def weighted_sum_step(weights: torch.Tensor, maps: torch.Tensor, raw: torch.Tensor, what: str = "channel",
                      how: str = "Σₖ wₖ · Aₖ") -> Step:
    """Σ_k w_k · maps_k: the few largest contributions and the sum."""
    contributions = weights.to(maps.dtype)[:, None, None] * maps
    keys = top(contributions.flatten(1).sum(dim=1), SHOWN_CHANNELS - 1)
    tiles = tuple((f"{num(weights[k])} × {what} {k}", array(contributions[k])) for k in keys)
    text = (
        f"Each of the {maps.shape[0]} {what} maps is multiplied by its weight and all are added up: {how}. The sum is "
        f"one {shape(raw)} map from {num(raw.min())} to {num(raw.max())}. Shown: the {len(keys)} largest terms "
        "and the sum."
    )
    return Step("weighted sum", "The weighted sum", text, f"the {what} maps added up with their weights",
                (Heatmaps((*tiles, ("the sum", array(raw))), True),), array(raw))


def relu_step(raw: torch.Tensor) -> Step:
    """The ReLU that keeps the evidence for the class."""
    negative = int((raw < 0).sum())
    kept = raw.clamp(min=0)
    text = (
        f"The ReLU keeps the evidence for the class: {negative} of the map's {raw.numel()} positions are negative "
        "(evidence against) and become 0."
    )
    return Step("relu", "The ReLU", text, "the positive part of the map",
                (Heatmaps((("before", array(raw)), ("after the ReLU", array(kept))), True),), array(kept))


def upsample_step(raw: torch.Tensor, saliency: np.ndarray) -> Step:
    """Bilinear upsampling to the image and scaling to [0, 1]."""
    height, width = saliency.shape
    kept = raw.clamp(min=0)
    text = (
        f"The {shape(raw)} map is stretched to the image's {width}×{height} pixels (width × height) by bilinear "
        "interpolation and "
        f"scaled to [0, 1] (its lowest value, {num(kept.min())}, becomes 0 and its highest, {num(kept.max())}, 1), so "
        "that maps of different methods are comparable."
    )
    return Step("upsample", "The upsampling", text, f"bilinear from {shape(raw)} to {width}×{height}, scaled to [0, 1]",
                (Heatmaps((("upsampled and scaled", saliency),)),), saliency)


def where(saliency: np.ndarray) -> str:
    """Where a map peaks, in words (thirds of the image)."""
    row, column = np.unravel_index(int(np.argmax(saliency)), saliency.shape)
    vertical = ("top", "middle", "bottom")[min(2, 3 * row // saliency.shape[0])]
    horizontal = ("left", "centre", "right")[min(2, 3 * column // saliency.shape[1])]
    return "the centre" if (vertical, horizontal) == ("middle", "centre") else f"the {vertical} {horizontal}"


def overlay_step(source: Source, saliency: np.ndarray, low: float = 0.0, high: float = 1.0) -> Step:
    """The map over the image (low, high: the real values its 0 and 1 stand for)."""
    text = (f"The map over the image: it is strongest in {where(saliency)}, where the evidence for “{source.label}” "
            f"is, according to {source.card.name}. {float((saliency > 0.5).mean()):.0%} of the image is above half "
            "the peak.")
    return Step("overlay", "The overlay", text, "the map over the image",
                (Overlay(f"{source.card.name} · {source.label}", saliency, low, high),), saliency)


def tail(source: Source, raw: torch.Tensor) -> tuple[list[Step], np.ndarray]:
    """The steps every method ends with: ReLU (for signed maps), upsampling, overlay; and the saliency."""
    saliency, _ = saliency_map(raw, source.analysis.size)
    low, high = evidence_range(raw, source.analysis.size)
    steps = [relu_step(raw)] if source.card.signed else []
    return [*steps, upsample_step(raw, saliency), overlay_step(source, saliency, low, high)], saliency


def focus(weights: torch.Tensor, activations: torch.Tensor) -> list[int]:
    """The channels whose weighted activations add the most to the map."""
    return top(weights * activations.sum(dim=(1, 2)), SHOWN_CHANNELS)


def weights_step(weights: torch.Tensor, heading: str, explain: str, how: str, *charts: Heatmaps) -> Step:
    """A step whose result is one weight per channel, shown as bars (then any charts of how they arise)."""
    return Step("weights", heading, f"{explain} {weights_text(weights)}", how,
                (weight_bars(weights, "weight"), *charts), array(weights))


def channel_weighting(source: Source, weights_of: Step, gradients: bool = True) -> list[Step]:
    """activations → (gradients) → weights → weighted sum, for methods that weight whole channels (the weights and
    the sum are the method's own)."""
    acts, weights = source.activations(), source.weights
    channels = focus(weights, acts)
    steps = [activations_step(source, channels, FOCUS)]
    steps += [gradients_step(source, channels)] if gradients else []
    return [*steps, weights_of, weighted_sum_step(weights, acts, source.raw)]


def input_pictures(source: Source, inputs: torch.Tensor, titles: list[str]) -> Montage:
    """(n, 3, S, S) model inputs as pictures: the model's normalisation undone."""
    prep = source.analysis.explainer.spec.preprocessing
    mean = torch.tensor(prep.mean, dtype=inputs.dtype).view(1, 3, 1, 1)
    std = torch.tensor(prep.std, dtype=inputs.dtype).view(1, 3, 1, 1)
    pixels = ((inputs.detach() * std + mean).clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return Montage(tuple(zip(titles, pixels, strict=True)))
