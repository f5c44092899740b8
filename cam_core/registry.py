"""The method table: id → pure function + the card that explains it. Methods register themselves here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import torch

if TYPE_CHECKING:
    from cam_core.inputs.mask_scores import AblationScores, MaskScores, MaskSpec
    from cam_core.inputs.perturbed import PathSpec

from cam_core.errors import CamError

COSTS = ("instant", "fast", "slow")
NEEDS = frozenset(
    {"gradients", "class_weights", "mask_scores", "ablation_scores", "path", "layer_stack", "guided_gradients"}
)
RESOLUTIONS = ("layer", "finest layer", "input")


@dataclass(frozen=True)
class Param:
    """A method parameter, with what the dashboard needs to make a widget for it."""

    name: str
    default: float | int | str | bool
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class MethodCard:
    """What a method is, what it needs, what it costs, and how it explains itself. logit_shift_invariant: whether
    its definition reads only gradients or probabilities, so that adding a constant to every logit leaves the map
    as it is."""

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
    class_specific: bool = True
    logit_shift_invariant: bool = True
    signed: bool = True
    multi_layer: bool = False
    pyramid_by_default: bool = False
    resolution: str = "layer"
    mask_spec: Callable[[str, dict, int], MaskSpec] | None = field(default=None, repr=False, compare=False)
    path_spec: Callable[[str, dict], PathSpec] | None = field(default=None, repr=False, compare=False)

    @property
    def needs_gradients(self) -> bool:
        return "gradients" in self.needs


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
class CamInputs:
    """The cached tensors a method may read: one image, one layer (or a stack of layers), one target class."""

    activations: torch.Tensor
    target: int
    gradients: torch.Tensor | None = None
    class_weights: torch.Tensor | None = None
    mask_scores: MaskScores | None = None
    ablation: AblationScores | None = None
    path: PathInputs | None = None
    stack: tuple[LayerInputs, ...] = ()
    input_gradients: torch.Tensor | None = None
    guided_activations: int = 0


@dataclass(frozen=True)
class MethodOutput:
    """A method's result: the signed (h, w) map (at the layer's resolution, or the finest layer's, or the input's),
    channel weights where it has them, and an (3, H, W) signed RGB gradient image for the input-gradient methods."""

    raw: torch.Tensor
    weights: torch.Tensor | None = None
    note: str = ""
    rgb: torch.Tensor | None = None


MethodFn = Callable[..., MethodOutput]


@dataclass(frozen=True)
class Method:
    card: MethodCard
    fn: MethodFn = field(repr=False)


_METHODS: dict[str, Method] = {}


def register(card: MethodCard) -> Callable[[MethodFn], MethodFn]:
    """Add the decorated function to the method table under card.id."""
    if card.cost not in COSTS:
        raise ValueError(f"{card.id}: cost must be one of {COSTS}")
    if not card.needs <= NEEDS:
        raise ValueError(f"{card.id}: unknown needs {sorted(card.needs - NEEDS)}")
    if card.resolution not in RESOLUTIONS:
        raise ValueError(f"{card.id}: resolution must be one of {RESOLUTIONS}")

    def add(fn: MethodFn) -> MethodFn:
        if card.id in _METHODS:
            raise ValueError(f"method id {card.id!r} registered twice")
        _METHODS[card.id] = Method(card, fn)
        return fn

    return add


def methods() -> list[MethodCard]:
    """Every method's card, in registration order."""
    return [method.card for method in _METHODS.values()]


def get_method(method_id: str) -> Method:
    """The method called method_id, or a CamError listing the valid ids."""
    if method_id not in _METHODS:
        raise CamError(f"unknown method {method_id!r}; valid: {', '.join(_METHODS)}")
    return _METHODS[method_id]
