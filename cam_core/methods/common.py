"""Arithmetic shared by methods."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.decomposition import KernelPCA

from cam_core.scaling import min_max

KEEPS_POSITIVE_GRADIENT = ("its weights keep the channels of positive gradient, and at this layer the gradient is "
                           "nearly the same for every class")


def weighted_sum(weights: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
    """Σ_k weights[k] · activations[k]: a (C,) vector and (C, h, w) maps give one (h, w) map."""
    return torch.einsum("k,khw->hw", weights, activations)


def gradcam_weights(gradients: torch.Tensor) -> torch.Tensor:
    """Grad-CAM's (C,) channel weights: each channel's gradient averaged over its positions."""
    return gradients.mean(dim=(1, 2))


def position_matrix(maps: torch.Tensor) -> torch.Tensor:
    """The (h·w, C) float64 matrix of (C, h, w) maps: one row per position, one column per channel."""
    return maps.reshape(maps.shape[0], -1).T.double()


def principal_component(centred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The projection of a position × channel matrix on its first right singular vector, and that vector, with the
    sign the decomposition happens to return.

    The direction comes from the eigendecomposition of the smaller of the matrix's two Gram matrices (much faster
    than a full SVD for 49 positions × 1280 channels).
    """
    if centred.shape[0] < centred.shape[1]:
        _, vectors = torch.linalg.eigh(centred @ centred.T)
        direction = centred.T @ vectors[:, -1]
        norm = direction.norm()
        direction = direction / norm if norm > 0 else torch.zeros_like(direction)
    else:
        _, vectors = torch.linalg.eigh(centred.T @ centred)
        direction = vectors[:, -1]
    return centred @ direction, direction


def centred_matrix(matrix: torch.Tensor, centre: bool) -> torch.Tensor:
    """The position × channel matrix with each channel's mean subtracted (centre), or as it is."""
    return matrix - matrix.mean(dim=0, keepdim=True) if centre else matrix


def kernel_component(maps: torch.Tensor, kernel: str) -> torch.Tensor:
    """The (h·w,) projections of the positions on the first kernel-PCA component of the channel-centred positions ×
    channels matrix of (C, h, w) maps, with the sign scikit-learn returns (zero where the matrix has no variance)."""
    centred = centred_matrix(position_matrix(maps), True)
    if not torch.any(centred):
        return torch.zeros(centred.shape[0], dtype=torch.float64)
    found = KernelPCA(n_components=1, kernel=kernel, random_state=0).fit_transform(centred.numpy())
    return torch.from_numpy(np.ascontiguousarray(found[:, 0], dtype=np.float64))


def sign_agreement(projection: torch.Tensor, matrix: torch.Tensor) -> float:
    """How the projection co-varies with the mean of the channels, position by position (its sign is what counts)."""
    reference = matrix.mean(dim=1)
    return float((projection - projection.mean()) @ (reference - reference.mean()))


def first_principal_component(maps: torch.Tensor, centre: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The (h, w) projection of the position × channel matrix on its first right singular vector, and that vector.

    With centre, each channel's mean is subtracted first (a principal component proper). A singular vector's sign
    is arbitrary, so it is chosen to make the projection correlate positively with the channels' mean map.
    """
    _, height, width = maps.shape
    matrix = position_matrix(maps)
    projection, direction = principal_component(centred_matrix(matrix, centre))
    if sign_agreement(projection, matrix) < 0:
        direction, projection = -direction, -projection
    return projection.reshape(height, width).to(maps.dtype), direction.to(maps.dtype)


def upsample(values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """An (h, w) map bilinearly resized to size (cell-centred, as the maps are shown)."""
    if tuple(values.shape) == tuple(size):
        return values
    return F.interpolate(values[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]


def finest_size(maps: list[torch.Tensor]) -> tuple[int, int]:
    """The largest height and width among the maps."""
    return max(m.shape[0] for m in maps), max(m.shape[1] for m in maps)


def fuse_signed(maps: list[torch.Tensor], scale: Callable[[torch.Tensor], torch.Tensor], mode: str) -> torch.Tensor:
    """Maps of several layers fused at the finest resolution, the evidence for and against separately: each layer's
    positive part is min-max scaled, passed through scale, upsampled and combined by max or mean; the negative parts
    alike; the result is their difference (so the negative map of a fused method is the fused negative evidence)."""
    size = finest_size(maps)

    def fuse(parts: list[torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack([upsample(scale(min_max(part)), size) for part in parts])
        return stacked.amax(dim=0) if mode == "max" else stacked.mean(dim=0)

    return fuse([m.clamp(min=0) for m in maps]) - fuse([(-m).clamp(min=0) for m in maps])
