"""Cached gradient quantities beyond one class's gradient at one layer: FullGrad's input and bias gradients, and
ShapleyCAM's gradient and Hessian-vector product of a class score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from cam_core.errors import CamError


def _bytes(*tensors: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


@dataclass(frozen=True)
class BiasGradient:
    """One biased layer: its name, its (C,) bias and the (C, h, w) gradient of the class score at its output."""

    layer: str
    bias: torch.Tensor
    gradient: torch.Tensor


@dataclass(frozen=True)
class FullGradients:
    """What FullGrad reads for one class: the (3, H, W) model input, the class score's gradient there, and every
    biased layer's bias gradient, in the order the layers ran."""

    input: torch.Tensor
    input_gradient: torch.Tensor
    layers: tuple[BiasGradient, ...]

    @property
    def nbytes(self) -> int:
        return _bytes(self.input_gradient, *(item.gradient for item in self.layers))


def logit_score(logits: torch.Tensor, target: int) -> torch.Tensor:
    """The class's logit, from (1, classes) logits."""
    return logits[0, target]


def rest_score(logits: torch.Tensor, target: int) -> torch.Tensor:
    """Cai's Residual Softmax Target-class score: the logit plus the log-probability, y_c + log softmax(y)_c (the
    logit minus the cross-entropy of the class)."""
    return logits[0, target] + torch.log_softmax(logits[0], dim=0)[target]


SCORES: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {"ReST": rest_score, "logit": logit_score}


def class_score(name: str) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """The score function called name, or a CamError naming the valid ones."""
    if name not in SCORES:
        raise CamError(f"score must be one of {', '.join(SCORES)}, not {name!r}")
    return SCORES[name]


@dataclass(frozen=True)
class SecondOrder:
    """For one class score at one layer: its (C, h, w) gradient g and the Hessian-vector product H·A, the gradient
    of g · A with A held fixed (A: the layer's activations)."""

    score: str
    gradients: torch.Tensor
    hessian_product: torch.Tensor

    @property
    def nbytes(self) -> int:
        return _bytes(self.gradients, self.hessian_product)
