"""The one min-max rule: values scaled to [0, 1], and when a map counts as blank (constant) instead."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

BLANK_TOLERANCE = 1e-12
Values = TypeVar("Values", torch.Tensor, np.ndarray)


def is_blank(low: torch.Tensor | float, high: torch.Tensor | float) -> torch.Tensor:
    """Whether values from low to high are constant: their range is at most 1e-12 of max(1, |high|)."""
    low, high = torch.as_tensor(low), torch.as_tensor(high)
    return (high - low) <= BLANK_TOLERANCE * torch.clamp(high.abs(), min=1.0)


def min_max(values: Values, dims: tuple[int, ...] | None = None) -> Values:
    """values scaled to [0, 1] over all of them, or separately over dims; all zeros where they are blank. Returns
    the type it was given (a tensor or a NumPy array)."""
    given = torch.as_tensor(values)
    if dims is None:
        low, high = given.min(), given.max()
    else:
        low, high = given.amin(dim=dims, keepdim=True), given.amax(dim=dims, keepdim=True)
    blank = is_blank(low, high)
    span = torch.where(blank, torch.ones_like(high), high - low)
    scaled = torch.where(blank, torch.zeros_like(given), (given - low) / span)
    return scaled.numpy() if isinstance(values, np.ndarray) else scaled
