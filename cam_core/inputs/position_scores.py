"""Recipro-CAM's inputs: the layer's feature map kept at one position at a time (or its Gaussian-weighted 3×3
neighbourhood), and the network's logits for every such copy, all classes at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from cam_core.errors import CamError
from cam_core.passes.inference import Progress, chunks
from cam_core.sharing.slots import PASSES

# The 3×3 kernel of the authors' code: ¼ at the centre, ⅛ beside it, 1⁄16 at the corners.
GAUSSIAN_KERNEL = torch.tensor([[1 / 16, 1 / 8, 1 / 16], [1 / 8, 1 / 4, 1 / 8], [1 / 16, 1 / 8, 1 / 16]])
SPATIAL_MASKS = {
    "gaussian": "the position's feature vector spread over its 3×3 neighbourhood with Gaussian weights (the paper's "
    "default, arXiv 2209.14074 and its code)",
    "one-hot": "the position's feature vector alone, every other position zero (the authors' CVPR 2024 workshop code)",
}


@dataclass(frozen=True)
class PositionSpec:
    """Which masked copies of a layer's map: one per position, kept with a mask of SPATIAL_MASKS."""

    layer: str
    mask: str = "gaussian"

    def __post_init__(self) -> None:
        if self.mask not in SPATIAL_MASKS:
            raise CamError(f"mask must be one of {', '.join(SPATIAL_MASKS)}, not {self.mask!r}")


@dataclass(frozen=True)
class PositionScores:
    """The logits of the masked copy of each position (row i·w + j: position (i, j)), whether only the head ran
    (else full passes with the layer's output replaced), and how long they took."""

    logits: torch.Tensor
    head_only: bool
    seconds: float

    @property
    def probabilities(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=1)

    @property
    def nbytes(self) -> int:
        return self.logits.numel() * self.logits.element_size()


def spatial_weights(height: int, width: int, positions: slice, mask: str) -> torch.Tensor:
    """(n, h, w) weights of the positions in positions (row-major): 1 at the position (one-hot), or the 3×3
    Gaussian kernel centred there and cut at the map's border (gaussian)."""
    rows = torch.arange(positions.start, positions.stop)
    if mask == "one-hot":
        weights = torch.zeros(len(rows), height, width)
        weights.view(len(rows), -1)[torch.arange(len(rows)), rows] = 1.0
        return weights
    padded = torch.zeros(len(rows), height + 2, width + 2)
    for n, index in enumerate(rows.tolist()):
        i, j = divmod(index, width)
        padded[n, i : i + 3, j : j + 3] = GAUSSIAN_KERNEL
    return padded[:, 1:-1, 1:-1].clone()


def masked_copies(activations: torch.Tensor, positions: slice, mask: str) -> torch.Tensor:
    """(n, C, h, w): for each position (i, j) in positions, the feature vector A[:, i, j] placed at (i, j) (one-hot)
    or spread over its neighbourhood with the kernel's weights (gaussian); zero everywhere else."""
    channels, height, width = activations.shape
    rows = torch.arange(positions.start, positions.stop)
    vectors = activations.reshape(channels, -1)[:, rows].T
    return vectors[:, :, None, None] * spatial_weights(height, width, positions, mask).to(activations.dtype)[:, None]


def through_head(
    head: nn.Module, count: int, maps: Callable[[slice], torch.Tensor], batch_size: int,
    progress: Progress | None = None,
) -> torch.Tensor:
    """(count, classes) logits of the head on maps(part) for consecutive parts of range(count), batched."""
    outputs = []
    with torch.inference_mode():
        for part in chunks(count, batch_size):
            batch = maps(part)
            with PASSES.slot():
                outputs.append(head(batch).float())
            if progress is not None:
                progress(part.stop, count)
    return torch.cat(outputs)
