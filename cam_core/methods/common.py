"""Arithmetic shared by methods."""

from __future__ import annotations

import torch


def weighted_sum(weights: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
    """Σ_k weights[k] · activations[k]: a (C,) vector and (C, h, w) maps give one (h, w) map."""
    return torch.einsum("k,khw->hw", weights, activations)


def first_principal_component(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The (h, w) projection of the position × channel matrix on its first principal direction, and that direction.

    The matrix is centred per channel. Its first right singular vector comes from the eigendecomposition of the
    smaller of its two Gram matrices (much faster than a full SVD for 49 positions × 1280 channels). A singular vector's
    sign is arbitrary, so it is chosen to make the projection correlate positively with the channels' mean map.
    """
    channels, height, width = maps.shape
    matrix = maps.reshape(channels, height * width).T.double()
    centred = matrix - matrix.mean(dim=0, keepdim=True)
    if centred.shape[0] < centred.shape[1]:
        _, vectors = torch.linalg.eigh(centred @ centred.T)
        direction = centred.T @ vectors[:, -1]
        norm = direction.norm()
        direction = direction / norm if norm > 0 else torch.zeros_like(direction)
    else:
        _, vectors = torch.linalg.eigh(centred.T @ centred)
        direction = vectors[:, -1]
    projection = centred @ direction
    reference = matrix.mean(dim=1)
    agreement = (projection - projection.mean()) @ (reference - reference.mean())
    if agreement < 0:
        direction, projection = -direction, -projection
    return projection.reshape(height, width).to(maps.dtype), direction.to(maps.dtype)
