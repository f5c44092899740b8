"""Arithmetic shared by methods."""

from __future__ import annotations

import torch


def weighted_sum(weights: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
    """Σ_k weights[k] · activations[k]: a (C,) vector and (C, h, w) maps give one (h, w) map."""
    return torch.einsum("k,khw->hw", weights, activations)


def first_principal_component(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The (h, w) projection of the position × channel matrix on its first principal direction, and that direction.

    The matrix is centred per channel. SVD leaves the direction's sign arbitrary, so it is chosen to make the
    projection correlate positively with the channels' mean map.
    """
    channels, height, width = maps.shape
    matrix = maps.reshape(channels, height * width).T.double()
    centred = matrix - matrix.mean(dim=0, keepdim=True)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    direction = vh[0]
    projection = centred @ direction
    reference = matrix.mean(dim=1)
    agreement = (projection - projection.mean()) @ (reference - reference.mean())
    if agreement < 0:
        direction, projection = -direction, -projection
    return projection.reshape(height, width).to(maps.dtype), direction.to(maps.dtype)
