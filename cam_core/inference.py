"""A fast, private inference copy of a model for the many masked-input passes of Score-CAM and its relatives."""

from __future__ import annotations

import copy
from typing import Callable, Iterator

import torch
from torch import nn

Progress = Callable[[int, int], None]


def inference_copy(model: nn.Module, example: torch.Tensor, expected: torch.Tensor) -> nn.Module:
    """A copy of model for batched inference: batch-norm folded into the convolutions where the model traces,
    channels-last memory. The shared model is never touched; the copy must give `expected` (the model's logits for
    example), else a plain copy is used."""
    from torch.fx.experimental.optimization import fuse

    try:
        fast = fuse(copy.deepcopy(model))
    except Exception:  # noqa: BLE001 - models that do not trace symbolically keep their layers
        fast = copy.deepcopy(model)
    fast = fast.eval()
    try:
        fast = fast.to(memory_format=torch.channels_last)
    except RuntimeError:  # buffers that are not 4-D (transformers' position tables) keep their layout
        pass
    for parameter in fast.parameters():
        parameter.requires_grad_(False)
    with torch.inference_mode():
        got = fast(example.contiguous(memory_format=torch.channels_last))
    if not torch.allclose(expected, got, rtol=1e-3, atol=1e-3):
        fast = copy.deepcopy(model).eval()
    return fast


def chunks(count: int, size: int) -> Iterator[slice]:
    """Consecutive slices of at most size covering range(count)."""
    for start in range(0, count, size):
        yield slice(start, min(start + size, count))
