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


def _positive(gradient: torch.Tensor) -> torch.Tensor:
    return gradient.clamp(min=0)


class GuidedActivation(nn.Module):
    """An activation whose backward pass keeps only the positive part of the incoming gradient.

    For ReLU this is exactly guided backpropagation's rule (gradient passed where the forward input was positive and
    the gradient is positive); for smooth activations (GELU, SiLU) the positive gradient is scaled by the activation's
    own derivative, the same rule written for a non-binary gate.
    """

    def __init__(self, activation: nn.Module):
        super().__init__()
        self.activation = activation
        if hasattr(activation, "inplace"):
            activation.inplace = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.activation(x)
        if y.requires_grad:
            y.register_hook(_positive)
        return y


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
