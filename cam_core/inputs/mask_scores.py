"""Score matrices of masked and ablated inputs: (masks × classes) logits, computed once and reused for every class."""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import SpectralClustering
from torch import nn

from cam_core.errors import CamError
from cam_core.inputs.channel_clusters import channel_rows, check_group_count, cluster_channels
from cam_core.inputs.masking import BASELINES, SCALINGS, baseline_input, masked_inputs, normalized_masks
from cam_core.passes.inference import Progress, chunks
from cam_core.sharing.slots import PASSES

GROUPINGS = ("channels", "kmeans", "contiguous", "spectral")
KEEPS = ("inside", "outside", "both")


@dataclass(frozen=True)
class MaskSpec:
    """Which masks: every channel, or groups of channels (k of them, by k-means, contiguous split or spectral
    clustering on cosine affinity), and the baseline that masked-out pixels take.

    target: when set, each channel is first weighted by that class's mean gradient (Group-CAM's class-specific
    groups), so the masks belong to one class. denoise: when set, each group's map is passed through a ReLU and its
    values at or below this percentile are zeroed (Group-CAM's de-noising). scaling: how a map becomes a mask,
    "minmax" after upsampling (Score-CAM) or "percentile" before it (Poly-CAM's authors: (A − p0.1) / p99.9, clipped
    to [0, 1]). keep: the input is kept "inside" the mask, "outside" it (1 − mask, a deletion), or "both" (the
    scores of the inside masks, then those of the outside ones).
    """

    layer: str
    grouping: str = "channels"
    k: int = 0
    rows: str = "raw"
    seed: int = 0
    baseline: str = "zero"
    align_corners: bool = False
    target: int | None = None
    denoise: float | None = None
    scaling: str = "minmax"
    keep: str = "inside"

    def __post_init__(self) -> None:
        if self.grouping not in GROUPINGS:
            raise CamError(f"grouping must be one of {', '.join(GROUPINGS)}, not {self.grouping!r}")
        if self.baseline not in BASELINES:
            raise CamError(f"baseline must be one of {', '.join(BASELINES)}, not {self.baseline!r}")
        if self.scaling not in SCALINGS:
            raise CamError(f"scaling must be one of {', '.join(SCALINGS)}, not {self.scaling!r}")
        if self.keep not in KEEPS:
            raise CamError(f"keep must be one of {', '.join(KEEPS)}, not {self.keep!r}")
        if self.denoise is not None and not 0 <= self.denoise < 100:
            raise CamError(f"denoise must be a percentile from 0 to below 100, not {self.denoise!r}")


@dataclass(frozen=True)
class MaskScores:
    """The network's logits for each masked input (for keep="both": the M inside masks, then the M outside ones),
    for the baseline and for the unmasked input, with the maps the masks came from."""

    maps: torch.Tensor
    labels: torch.Tensor | None
    logits: torch.Tensor
    baseline_logits: torch.Tensor
    skipped: torch.Tensor
    seconds: float
    note: str = ""
    input_logits: torch.Tensor | None = None

    @property
    def probabilities(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=1)

    @property
    def baseline_probabilities(self) -> torch.Tensor:
        return torch.softmax(self.baseline_logits, dim=0)

    @property
    def input_probabilities(self) -> torch.Tensor:
        return torch.softmax(self.input_logits, dim=0)

    @property
    def nbytes(self) -> int:
        tensors = [self.maps, self.logits, self.baseline_logits, self.skipped]
        tensors += [] if self.input_logits is None else [self.input_logits]
        tensors += [] if self.labels is None else [self.labels]
        return sum(t.numel() * t.element_size() for t in tensors)


@dataclass(frozen=True)
class AblationScores:
    """Logits with each channel of the layer set to zero (row k: channel k ablated), and the untouched logits."""

    logits: torch.Tensor
    original: torch.Tensor
    head_only: bool
    seconds: float

    @property
    def nbytes(self) -> int:
        return (self.logits.numel() + self.original.numel()) * 4


def group_labels(activations: torch.Tensor, spec: MaskSpec) -> tuple[torch.Tensor | None, str]:
    """Each channel's group under spec (None for one mask a channel), and a note when a fallback was taken."""
    channels = activations.shape[0]
    if spec.grouping == "channels":
        return None, ""
    check_group_count(spec.k, channels, name="the number of groups", where=f" of {spec.layer}")
    if spec.grouping == "contiguous":
        return torch.arange(channels) // -(-channels // spec.k), ""
    if spec.grouping == "kmeans":
        return torch.from_numpy(cluster_channels(activations, spec.k, spec.rows, spec.seed).labels), ""
    return _spectral_labels(activations, spec)


def _spectral_labels(activations: torch.Tensor, spec: MaskSpec) -> tuple[torch.Tensor, str]:
    """Spectral clustering on cosine affinity; channels that are all zero have no direction and join group 0.
    Where the affinity graph of the others falls apart, spectral clustering is not defined: k-means on L2-normalised
    rows (the same cosine geometry) is used instead, and the note says so."""
    rows = channel_rows(activations, "l2")
    alive = np.linalg.norm(rows, axis=1) > 0
    affinity = np.clip(rows[alive] @ rows[alive].T, 0.0, 1.0)
    parts, _ = connected_components(affinity > 1e-12, directed=False)
    if parts > 1 or alive.sum() < spec.k:
        labels = cluster_channels(activations, spec.k, "l2", spec.seed).labels
        why = f"{parts} disconnected parts" if parts > 1 else "fewer active channels than groups"
        return torch.from_numpy(labels), (
            f"spectral clustering needs a connected affinity graph, but the channels' cosine graph has {why}; "
            "fell back to k-means on L2-normalised maps"
        )
    labels = np.zeros(len(rows), dtype=np.int64)
    labels[alive] = SpectralClustering(
        n_clusters=spec.k, affinity="precomputed", random_state=spec.seed, assign_labels="kmeans"
    ).fit_predict(affinity)
    return torch.from_numpy(labels), ""


def group_maps(activations: torch.Tensor, labels: torch.Tensor | None, k: int, denoise: float | None = None
               ) -> torch.Tensor:
    """The (M, h, w) maps the masks come from: every channel, or each group's summed channels; de-noised (ReLU,
    values at or below the denoise percentile of their map zeroed) when denoise is set."""
    maps = activations
    if labels is not None:
        maps = torch.zeros((k, *activations.shape[1:]), dtype=activations.dtype).index_add_(0, labels, activations)
    if denoise is None:
        return maps
    maps = maps.clamp(min=0)
    floors = torch.quantile(maps.flatten(1).double(), denoise / 100.0, dim=1).to(maps.dtype)
    return torch.where(maps > floors[:, None, None], maps, torch.zeros_like(maps))


def score_masks(
    model: nn.Module, model_input: torch.Tensor, activations: torch.Tensor, spec: MaskSpec, batch_size: int,
    progress: Progress | None = None, partial: Callable[[MaskScores], None] | None = None,
    precision: str = "float32", labels: torch.Tensor | None = None,
) -> MaskScores:
    """Run the masked inputs of spec through model, batched, largest maps first.

    Constant maps are not run: their mask is empty, so their input is the baseline (or, kept outside the mask, the
    unmasked input), whose logits are known. partial(scores) is called after each batch with the masks not yet run
    still at those known logits, so a caller can show a map that sharpens as batches arrive. precision "bfloat16"
    runs the passes in bfloat16 autocast (about twice as fast on CPUs with AVX-512 BF16; logits within about 1 %).
    labels, when given, are the channels' groups already computed for spec.
    """
    started = time.perf_counter()
    labels, note = (labels, "") if labels is not None else group_labels(activations, spec)
    maps = group_maps(activations, labels, spec.k, spec.denoise)
    size = model_input.shape[-1]
    flat = maps.flatten(1)
    constant = (flat.amax(dim=1) - flat.amin(dim=1)) <= 1e-12 * torch.clamp(flat.abs().amax(dim=1), min=1.0)
    base = baseline_input(model_input, spec.baseline)
    mass = maps.clamp(min=0).flatten(1).sum(dim=1)
    todo = [int(i) for i in torch.argsort(mass, descending=True) if not constant[i]]
    known = [base] if spec.keep == "inside" else [base, model_input]
    with PASSES.slot(), torch.inference_mode(), _autocast(precision):
        found = model(torch.cat(known).contiguous(memory_format=torch.channels_last)).float()
    baseline_logits, input_logits = found[0], (found[1] if len(found) > 1 else None)
    fill = {"inside": [baseline_logits], "outside": [input_logits], "both": [baseline_logits, input_logits]}
    logits = torch.cat([row.repeat(len(maps), 1) for row in fill[spec.keep]])

    def run(part: slice) -> tuple[torch.Tensor, torch.Tensor]:
        chosen = torch.tensor(todo[part], dtype=torch.long)
        masks, _ = normalized_masks(maps[chosen], size, spec.align_corners, spec.scaling)
        kept = {"inside": [masks], "outside": [1.0 - masks], "both": [masks, 1.0 - masks]}[spec.keep]
        rows = torch.cat([chosen + offset * len(maps) for offset in range(len(kept))])
        with PASSES.slot(), torch.inference_mode(), _autocast(precision):
            batch = masked_inputs(model_input, base, torch.cat(kept)).contiguous(memory_format=torch.channels_last)
            return rows, model(batch).float()

    def scores(now: torch.Tensor) -> MaskScores:
        return MaskScores(maps, labels, now, baseline_logits, constant, time.perf_counter() - started, note,
                          input_logits)

    done, workers = 0, _workers()
    parts = iter(chunks(len(todo), max(1, batch_size // len(fill[spec.keep]))))
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        running = deque(pool.submit(run, part) for part in itertools.islice(parts, workers))
        while running:
            rows, batch_logits = running.popleft().result()
            logits[rows] = batch_logits
            done += len(rows) // len(fill[spec.keep])
            if progress is not None:
                progress(done, len(todo))
            if partial is not None and done < len(todo):
                partial(scores(logits.clone()))
            running.extend(pool.submit(run, part) for part in itertools.islice(parts, 1))
    finally:
        # A batch is handed to the pool only once the callbacks of the one before have returned, so a caller that
        # gives up there (an exception above) leaves at most the batches already running, and runs no more.
        pool.shutdown(wait=True, cancel_futures=True)
    return scores(logits)


def default_precision() -> str:
    """float32, so that a map is the same on every CPU; $CAM_PRECISION=bfloat16 trades that for speed where the CPU
    has AVX-512 BF16 or AMX (about twice as fast there, logits within about 1 %, and results that then depend on the
    CPU and on how batches are split)."""
    return os.environ.get("CAM_PRECISION") or "float32"


def _workers() -> int:
    """Batches run side by side when torch is limited to fewer threads than there are cores (the dashboard runs
    torch single-threaded so that many small operations do not spin against each other)."""
    return max(1, min(4, (os.cpu_count() or 1) // max(1, torch.get_num_threads())))


def _autocast(precision: str):
    if precision == "float32":
        return contextlib.nullcontext()
    if precision == "bfloat16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    raise CamError(f"precision must be float32 or bfloat16, not {precision!r}")


def ablate_through_head(
    head: nn.Module, activations: torch.Tensor, batch_size: int, progress: Progress | None = None
) -> torch.Tensor:
    """(C, classes) logits of the head with each channel of activations zeroed in turn (batched)."""
    channels = activations.shape[0]
    outputs = []
    with torch.inference_mode():
        for start in range(0, channels, batch_size):
            stop = min(start + batch_size, channels)
            batch = activations[None].repeat(stop - start, 1, 1, 1)
            batch[torch.arange(stop - start), torch.arange(start, stop)] = 0.0
            with PASSES.slot():
                outputs.append(head(batch).float())
            if progress is not None:
                progress(stop, channels)
    return torch.cat(outputs)
