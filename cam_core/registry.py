"""The method table: id → pure function + the card that explains it. Methods register themselves here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import torch

if TYPE_CHECKING:
    from .scores import AblationScores, MaskScores, MaskSpec

from .errors import CamError

COSTS = ("instant", "fast", "slow")


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
    """What a method is, what it needs, what it costs, and how it explains itself."""

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
    signed: bool = True
    mask_spec: Callable[[str, dict], MaskSpec] | None = field(default=None, repr=False, compare=False)

    @property
    def needs_gradients(self) -> bool:
        return "gradients" in self.needs


@dataclass(frozen=True)
class CamInputs:
    """The cached tensors a method may read: one image, one layer, one target class."""

    activations: torch.Tensor
    target: int
    gradients: torch.Tensor | None = None
    class_weights: torch.Tensor | None = None
    mask_scores: MaskScores | None = None
    ablation: AblationScores | None = None


@dataclass(frozen=True)
class MethodOutput:
    """A method's result at the layer's resolution: the signed map and, where it has them, channel weights."""

    raw: torch.Tensor
    weights: torch.Tensor | None = None
    note: str = ""


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
