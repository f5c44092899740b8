"""The method table: id → the card that explains a method, its pure function and its lesson, registered in one call.

Everything the pages, the CLI, the README and the tests list about methods is read from here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Hashable

import numpy as np
import torch

from cam_core.errors import CamError
from cam_core.inputs.channel_clusters import check_group_count

if TYPE_CHECKING:
    from cam_core.inputs.concepts import Concepts, ConceptSpec
    from cam_core.inputs.gradient_terms import FullGradients, SecondOrder
    from cam_core.inputs.input_perturbations import InputScores, PerturbationSpec
    from cam_core.inputs.mask_scores import AblationScores, MaskScores, MaskSpec
    from cam_core.inputs.perturbed import PathSpec
    from cam_core.inputs.position_scores import PositionScores, PositionSpec

COSTS = ("instant", "fast", "slow")
NEEDS = frozenset({
    "gradients", "class_weights", "mask_scores", "ablation_scores", "path", "layer_stack", "guided_gradients",
    "attention", "attention_gradients",  # every block's attention probabilities; their gradients for the class
    "full_gradients", "compared_gradients", "second_order",  # FullGrad, Finer-CAM, ShapleyCAM
    "position_scores", "concepts",  # Recipro-CAM's masked positions; DFF's concepts (both through the head)
    "input_scores",  # RISE, occlusion, LIME: the logits of perturbed model inputs
    "kernel_component",  # KPCA-CAM: the first kernel-PCA component of the activations (it reads no class)
})
REQUIREMENTS = frozenset({"attention"})  # what a model must have for a method (MethodCard.requires)
RESOLUTIONS = ("layer", "finest layer", "input")
READERS = ("method", "input", "both")


@dataclass(frozen=True)
class Param:
    """A method parameter, with what the dashboard needs to make a widget for it. read_by: "method" when the
    method's function reads it, "input" when it only shapes a cached input (masks, noisy copies: the function never
    sees it), "both" when it does both. up_to_channels: at most the layer's channel count (a number of groups)."""

    name: str
    default: float | int | str | bool
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    read_by: str = "method"
    up_to_channels: bool = False


    def check(self, owner: str, value: object) -> None:
        """A CamError naming the valid values when value is not one for this parameter."""
        if self.choices:
            if value not in self.choices:
                raise CamError(f"{owner}: {self.name} must be one of {', '.join(self.choices)}, not {value!r}")
        elif isinstance(self.default, bool):
            if not isinstance(value, (bool, np.bool_)):
                raise CamError(f"{owner}: {self.name} must be true or false, not {value!r}")
        elif isinstance(self.default, str):
            if not isinstance(value, str):
                raise CamError(f"{owner}: {self.name} must be text, not {value!r}")
        elif isinstance(self.default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise CamError(f"{owner}: {self.name} must be a number, not {value!r}")
            if isinstance(self.default, int) and int(value) != value:
                raise CamError(f"{owner}: {self.name} must be a whole number, not {value!r}")
            low = -np.inf if self.minimum is None else self.minimum
            high = np.inf if self.maximum is None else self.maximum
            if not low <= value <= high:
                raise CamError(f"{owner}: {self.name} must be between {self.minimum} and {self.maximum}, not {value}")


@dataclass(frozen=True)
class Peer:
    """A peer library's implementation of a method: library ("pytorch-grad-cam", "torchcam"), its class name, and
    the parameters of ours that make our map the peer's definition."""

    library: str
    name: str
    params: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class MethodCard:
    """What a method is, what it needs, what it costs, and how it explains itself.

    definition: the published definition, in one line; differs: how and why our default differs from it, in one
    line ("" when it does not); reference: what tests/references re-implements to check it ("paper", "authors'
    code", "hand-computed tensors"); peers: the peer implementations it is checked against; ranking: what its
    channel weights rank channels by on the Channels page ("" when its weights do not rank channels);
    logit_shift_invariant: whether its definition reads only gradients or probabilities, so that adding a constant
    to every logit leaves the map as it is; alike: why its maps of two classes can be nearly the same map, where
    what it reads does not say ("" to let cam_core.views.specificity tell from its needs); in_default_grid: whether
    Compare's default grid shows it (the grid a class opens first: instant and fast methods, but not all of them);
    requires: what the model must have for the method (of REQUIREMENTS; "attention": a vision transformer's
    attention of every token to every other, see Explainer.unmet)."""

    id: str
    name: str
    family: str
    needs: frozenset[str]
    cost: str
    summary: str
    explanation: str
    formula: str
    paper: str
    strengths: tuple[str, ...] = ()
    weaknesses: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    definition: str = ""
    differs: str = ""
    reference: str = ""
    peers: tuple[Peer, ...] = ()
    ranking: str = ""
    class_specific: bool = True
    logit_shift_invariant: bool = True
    alike: str = ""
    in_default_grid: bool = True
    signed: bool = True
    multi_layer: bool = False
    pyramid_by_default: bool = False
    resolution: str = "layer"
    requires: frozenset[str] = frozenset()
    mask_spec: Callable[[str, dict, int], MaskSpec] | None = field(default=None, repr=False, compare=False)
    path_spec: Callable[[str, dict], PathSpec] | None = field(default=None, repr=False, compare=False)
    input_spec: Callable[[dict], PerturbationSpec] | None = field(default=None, repr=False, compare=False)
    position_spec: Callable[[str, dict], PositionSpec] | None = field(default=None, repr=False, compare=False)
    concept_spec: Callable[[str, dict], ConceptSpec] | None = field(default=None, repr=False, compare=False)
    # the classes a map of target is compared with, from the (classes,) logits, target and the parameters
    compared_classes: Callable[[torch.Tensor, int, dict], tuple[int, ...]] | None = field(
        default=None, repr=False, compare=False)

    @property
    def needs_gradients(self) -> bool:
        return "gradients" in self.needs

    @property
    def reads_every_block(self) -> bool:
        """Whether the method reads every block's attention, so that no layer is chosen for it."""
        return "attention" in self.needs

    def resolve_params(self, given: dict[str, object]) -> dict:
        """Every parameter of the method, the given ones checked and the others at their defaults; a CamError
        naming the valid values for a bad one."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            valid = ", ".join(known) or "none"
            raise CamError(f"method {self.id} has no parameter {', '.join(unknown)}; its parameters: {valid}")
        for name, value in given.items():
            known[name].check(self.id, value)
        return {name: given.get(name, p.default) for name, p in known.items()}

    def passes_per_class(self, given: dict[str, object] | None = None) -> bool:
        """Whether each new class costs the method model passes of its own at these parameters (Group-CAM's masks
        come from the class's gradients); every other method's passes, if any, serve every class."""
        if "mask_scores" not in self.needs or self.mask_spec is None:
            return False
        params = self.resolve_params({k: v for k, v in (given or {}).items() if k not in ("layer", "layers")})
        return self.mask_spec("layer", params, 0) != self.mask_spec("layer", params, 1)

    def check_channels(self, params: dict, channels: int, layer: str) -> None:
        """A CamError when a number of groups among params exceeds the layer's channels."""
        for p in self.params:
            if p.up_to_channels:
                check_group_count(params[p.name], channels, p.minimum or 1, f"{self.id}: {p.name}", f" of {layer}")

    def method_params(self, params: dict) -> dict:
        """The parameters of params that the method's function reads."""
        read = {p.name for p in self.params if p.read_by in ("method", "both")}
        return {name: value for name, value in params.items() if name in read}


@dataclass(frozen=True)
class LayerInputs:
    """One layer's (C, h, w) activations, the target class's gradient there and the layer's masked-input scores,
    where the method reads them (multi-layer methods)."""

    layer: str
    activations: torch.Tensor
    gradients: torch.Tensor | None = None
    mask_scores: MaskScores | None = None


@dataclass(frozen=True)
class PathInputs:
    """Activations and target-class gradients at one layer for a batch of altered inputs, (n, C, h, w) each:
    noisy copies of the image, or the points of a path from a baseline to the image. baseline holds the (C, h, w)
    activations of the path's start, where there is one."""

    activations: torch.Tensor
    gradients: torch.Tensor
    baseline: torch.Tensor | None = None


@dataclass(frozen=True)
class AttentionInputs:
    """Every block's attention probabilities of one image, first block to last, (heads, tokens, tokens) each (a row
    per query token, summing to 1), and the target class's gradients with respect to them where the method reads
    them; prefix: how many class/distillation tokens come before the patch tokens; grid: the patch grid (h, w)."""

    probabilities: tuple[torch.Tensor, ...]
    prefix: int
    grid: tuple[int, int]
    gradients: tuple[torch.Tensor, ...] | None = None


@dataclass(frozen=True)
class CamInputs:
    """The cached tensors a method may read: one image, one layer (or a stack of layers), one target class; logits
    are the image's (classes,) logits."""

    activations: torch.Tensor
    target: int
    logits: torch.Tensor | None = None
    gradients: torch.Tensor | None = None
    class_weights: torch.Tensor | None = None
    mask_scores: MaskScores | None = None
    ablation: AblationScores | None = None
    path: PathInputs | None = None
    stack: tuple[LayerInputs, ...] = ()
    input_gradients: torch.Tensor | None = None
    guided_activations: int = 0
    input_scores: InputScores | None = None  # RISE, occlusion, LIME: the perturbed inputs' logits
    full_gradients: FullGradients | None = None  # FullGrad: input and bias gradients of the target
    compared: tuple[int, ...] = ()  # Finer-CAM: the classes compared with the target
    compared_gradients: torch.Tensor | None = None  # their (n, C, h, w) gradients at the layer
    second_order: SecondOrder | None = None  # ShapleyCAM: a class score's gradient and Hessian product
    attention: AttentionInputs | None = None
    position_scores: PositionScores | None = None
    concepts: Concepts | None = None
    kernel_component: torch.Tensor | None = None  # KPCA-CAM: the (h·w,) first kernel-PCA component, as returned
    kept: Callable[[Hashable, Callable[[], Any]], Any] = field(default=lambda key, compute: compute())
    # kept(key, compute): compute()'s result, kept per image under key (the method's id and every setting it
    # depends on) for what reads no class; outside an Analysis it computes every time


@dataclass(frozen=True)
class MethodOutput:
    """A method's result: the signed (h, w) map (at the layer's resolution, or the finest layer's, or the input's),
    channel weights where it has them, and an (3, H, W) signed RGB gradient image for the input-gradient methods."""

    raw: torch.Tensor
    weights: torch.Tensor | None = None
    note: str = ""
    rgb: torch.Tensor | None = None


MethodFn = Callable[..., MethodOutput]
LessonFn = Callable[[Any], list]  # a cam_core.lessons.steps.Source → its list of Steps (lessons sit above the registry)


@dataclass(frozen=True)
class Method:
    """A registered method: its card, its function of cached tensors, and its lesson (None: the generic lesson)."""

    card: MethodCard
    compute: MethodFn = field(repr=False)
    lesson: LessonFn | None = field(default=None, repr=False)

    def apply(self, inputs: CamInputs, **params: object) -> MethodOutput:
        """The method's output from prepared inputs; params are checked and defaulted, and only those the function
        reads reach it."""
        return self.compute(inputs, **self.card.method_params(self.card.resolve_params(params)))


_METHODS: dict[str, Method] = {}


def register(card: MethodCard, compute: MethodFn, lesson: LessonFn | None = None) -> None:
    """Add a method to the table under card.id: its card, its function and its lesson."""
    if card.cost not in COSTS:
        raise ValueError(f"{card.id}: cost must be one of {COSTS}")
    if not card.needs <= NEEDS:
        raise ValueError(f"{card.id}: unknown needs {sorted(card.needs - NEEDS)}")
    if not card.requires <= REQUIREMENTS:
        raise ValueError(f"{card.id}: unknown requirements {sorted(card.requires - REQUIREMENTS)}")
    if card.resolution not in RESOLUTIONS:
        raise ValueError(f"{card.id}: resolution must be one of {RESOLUTIONS}")
    for param in card.params:
        if param.read_by not in READERS:
            raise ValueError(f"{card.id}: {param.name}.read_by must be one of {READERS}")
    if card.id in _METHODS:
        raise ValueError(f"method id {card.id!r} registered twice")
    _METHODS[card.id] = Method(card, compute, lesson)


def methods() -> list[MethodCard]:
    """Every method's card, in registration order."""
    return [method.card for method in _METHODS.values()]


def get_method(method_id: str) -> Method:
    """The method called method_id, or a CamError listing the valid ids."""
    if method_id not in _METHODS:
        raise CamError(f"unknown method {method_id!r}; valid: {', '.join(_METHODS)}")
    return _METHODS[method_id]


def settings_key(value: object) -> Hashable:
    """A method's keyword arguments (or any value among them) in a hashable form that equal settings share: dicts as
    sorted pairs, lists as tuples."""
    if isinstance(value, (list, tuple)):
        return tuple(settings_key(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((k, settings_key(v)) for k, v in value.items()))
    return value


def default_grid() -> list[MethodCard]:
    """The methods Compare's grid opens with: the instant and fast ones whose card puts them there."""
    return [card for card in methods() if card.cost in ("instant", "fast") and card.in_default_grid]
