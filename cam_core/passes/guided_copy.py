"""A private copy of a model for guided backpropagation: every activation module passes only positive gradients."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

GUIDED_ACTIVATIONS = frozenset(
    {
        "ReLU",
        "ReLU6",
        "LeakyReLU",
        "ELU",
        "GELU",
        "GELUTanh",
        "QuickGELU",
        "SiLU",
        "Swish",
        "Hardswish",
        "HardSwish",
        "Mish",
    }
)
# Activations whose derivative is never negative: given a non-negative gradient they pass back a non-negative one.
NON_DECREASING = frozenset({"ReLU", "ReLU6", "LeakyReLU", "ELU"})


class _PositiveGradient(torch.autograd.Function):
    """The identity forward; backward passes only the positive part of the gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, gradient: torch.Tensor) -> torch.Tensor:
        return gradient.clamp(min=0)


def non_decreasing(activation: nn.Module) -> bool:
    """Whether the activation's derivative is never negative (its negative slope or ELU's alpha is not negative)."""
    return (type(activation).__name__ in NON_DECREASING and getattr(activation, "negative_slope", 0) >= 0
            and getattr(activation, "alpha", 1) >= 0)


class GuidedActivation(nn.Module):
    """An activation whose backward pass keeps only the positive part of the incoming gradient, and of what it
    passes back.

    For ReLU this is exactly guided backpropagation's rule (gradient passed where the forward input was positive and
    the gradient is positive). For smooth activations (GELU, SiLU, Hardswish) the positive gradient is scaled by the
    activation's own derivative, which is negative below zero, so what flows back is clamped at zero again: every
    guided activation passes back a non-negative gradient, as a guided ReLU does. (A non-decreasing activation
    passes back a non-negative gradient already, so it needs no second clamp.)
    """

    def __init__(self, activation: nn.Module):
        super().__init__()
        self.activation = activation
        self.clamp_input = not non_decreasing(activation)
        if hasattr(activation, "inplace"):
            activation.inplace = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.requires_grad:
            return self.activation(x)
        inner = _PositiveGradient.apply(x) if self.clamp_input else x
        return _PositiveGradient.apply(self.activation(inner))


@dataclass
class GuidedCopy:
    """The guided copy, the storages of its parameters (not counted as graph memory) and how many activations it
    guides (0 means its gradient is the plain input gradient)."""

    module: nn.Module
    parameter_storages: frozenset[int]
    guided: int


def guided_copy(model: nn.Module) -> GuidedCopy:
    """A deep copy of model with each activation module of GUIDED_ACTIVATIONS wrapped in GuidedActivation."""
    module = copy.deepcopy(model).eval()
    count = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if type(child).__name__ in GUIDED_ACTIVATIONS:
                setattr(parent, name, GuidedActivation(child))
                count += 1
    tensors = [*module.parameters(), *module.buffers()]
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return GuidedCopy(module, frozenset(t.untyped_storage().data_ptr() for t in tensors), count)
