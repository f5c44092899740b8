"""Deep Feature Factorization's inputs: the layer's non-negative activations factorised by NMF into k concepts (each a
spatial map and a channel vector), and each concept's logits when its vector fills the layer."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning

from cam_core.errors import CamError

SHIFTS = {
    "clip": "negative activations set to 0 (the paper factorises ReLU outputs, which have none)",
    "channel minimum": "each channel's minimum subtracted, and added back to the concepts' vectors (pytorch-grad-cam)",
}
SCALES = {
    "peak": "each concept's map scaled to a peak of 1, its vector by the same factor: the vector is then the "
    "concept's features where it is strongest",
    "as factorised": "map and vector as NMF returns them (the split of scale between the two is arbitrary; "
    "pytorch-grad-cam)",
}
MAX_CONCEPTS = 16
NMF_ITERATIONS = 200


@dataclass(frozen=True)
class ConceptSpec:
    """Which factorisation: k concepts of layer, NMF's random start from seed, how negative activations are
    shifted (SHIFTS) and how the scale is split between map and vector (SCALES)."""

    layer: str
    k: int = 5
    seed: int = 0
    shift: str = "clip"
    scale: str = "peak"

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or not 1 <= self.k <= MAX_CONCEPTS:
            raise CamError(f"the number of concepts must be a whole number from 1 to {MAX_CONCEPTS}, not {self.k!r}")
        if self.shift not in SHIFTS:
            raise CamError(f"shift must be one of {', '.join(SHIFTS)}, not {self.shift!r}")
        if self.scale not in SCALES:
            raise CamError(f"scale must be one of {', '.join(SCALES)}, not {self.scale!r}")


@dataclass(frozen=True)
class Concepts:
    """k concepts of one layer: (k, h, w) maps, (k, C) channel vectors, (k, classes) logits with each vector at
    every position of the layer, whether only the head ran for them, NMF's relative reconstruction error, and a
    note where something was changed to make NMF defined."""

    spec: ConceptSpec
    maps: torch.Tensor
    vectors: torch.Tensor
    logits: torch.Tensor
    head_only: bool
    error: float
    note: str = ""

    @property
    def probabilities(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=1)

    def top_classes(self, concept: int, count: int = 3) -> list[tuple[int, float]]:
        """The count classes concept scores highest for, as (class, probability)."""
        probabilities, classes = torch.topk(self.probabilities[concept], count)
        return [(int(c), float(p)) for p, c in zip(probabilities, classes, strict=True)]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.maps, self.vectors, self.logits))


def factorise(activations: torch.Tensor, spec: ConceptSpec) -> tuple[torch.Tensor, torch.Tensor, float, str]:
    """The (k, h, w) maps and (k, C) vectors of NMF on the channels × positions matrix of (C, h, w) activations
    (A ≈ W H: W's columns are the vectors, H's rows the maps), its relative error ‖A − WH‖ / ‖A‖, and a note."""
    channels, height, width = activations.shape
    matrix = activations.reshape(channels, -1).float().numpy().astype(np.float32)
    note = ""
    if spec.shift == "channel minimum":
        offset = matrix.min(axis=1)
    else:
        offset = np.zeros(channels, dtype=np.float32)
        if (matrix < 0).any():
            note = (f"{(matrix < 0).mean():.0%} of the activations are negative and were set to 0 for NMF (the paper "
                    "factorises ReLU outputs)")
    shifted = np.clip(matrix - offset[:, None], 0.0, None)
    total = float(np.linalg.norm(shifted))
    if total == 0.0:
        zero = torch.zeros(spec.k, height, width)
        return zero, torch.from_numpy(np.repeat(offset[None], spec.k, axis=0)), 0.0, (
            "the activations are constant, so there is nothing to factorise: every concept is empty")
    model = NMF(n_components=spec.k, init="random", random_state=spec.seed, max_iter=NMF_ITERATIONS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vectors = model.fit_transform(shifted)
    maps = model.components_
    error = float(np.linalg.norm(shifted - vectors @ maps)) / total
    if spec.scale == "peak":
        peaks = maps.max(axis=1)
        factor = np.where(peaks > 0, peaks, 1.0)
        maps, vectors = maps / factor[:, None], vectors * factor[None, :]
    vectors = vectors.T + offset[None, :]
    return (torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32)).reshape(spec.k, height, width),
            torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)), error, note)


def concept_maps(vectors: torch.Tensor, part: slice, height: int, width: int) -> torch.Tensor:
    """(n, C, h, w): each concept vector of part at every position of the layer."""
    return vectors[part, :, None, None].expand(-1, -1, height, width).contiguous()
