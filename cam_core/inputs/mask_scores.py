"""Score matrices of masked and ablated inputs: (masks × classes) logits, computed once and reused for every class."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import SpectralClustering
from torch import nn

from cam_core.errors import CamError
from cam_core.inputs.channel_clusters import channel_rows, check_group_count, cluster_channels
from cam_core.inputs.masking import (
    BASELINES,
    INTEGRATIONS,
    SCALINGS,
    baseline_input,
    mask_noise,
    mask_scales,
    masked_inputs,
    normalized_masks,
)
from cam_core.models.specs import Head
from cam_core.passes.inference import Progress, autocast, batch_parts, batch_workers, pass_chunk, run_in_order
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

    samples: how many times each mask is scored (kept inside only): with noise, each time with fresh Gaussian noise
    of that standard deviation added to the upsampled mask (SS-CAM; drawn from seed); with integration "linear" or
    "cumulative", each time scaled by the next factor of masking.mask_scales (IS-CAM). top_variance: the fraction of
    the masks scored, those whose maps vary most over the positions (Faster Score-CAM); the others are not run.
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
    samples: int = 1
    noise: float = 0.0
    integration: str = "none"
    top_variance: float = 1.0

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
        if self.integration not in INTEGRATIONS:
            raise CamError(f"integration must be one of {', '.join(INTEGRATIONS)}, not {self.integration!r}")
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or self.samples < 1:
            raise CamError(f"samples must be a whole number of at least 1, not {self.samples!r}")
        if self.samples > 1 and self.keep != "inside":
            raise CamError("several samples of each mask are scored with the input kept inside the mask only")
        if not self.noise >= 0:
            raise CamError(f"noise must be a standard deviation of at least 0, not {self.noise!r}")
        if not 0 < self.top_variance <= 1:
            raise CamError(f"top_variance must be a fraction above 0 and at most 1, not {self.top_variance!r}")


@dataclass(frozen=True)
class MaskScores:
    """The network's logits for each masked input (for keep="both": the M inside masks, then the M outside ones; for
    several samples: row s·M + k is sample s of mask k), for the baseline and for the unmasked input, with the maps
    the masks came from. skipped: the masks known to give the baseline (constant maps, no noise), never run;
    selected: the masks scored (None: all of them), the others not run and weighing nothing."""

    maps: torch.Tensor
    labels: torch.Tensor | None
    logits: torch.Tensor
    baseline_logits: torch.Tensor
    skipped: torch.Tensor
    seconds: float
    note: str = ""
    input_logits: torch.Tensor | None = None
    samples: int = 1
    selected: torch.Tensor | None = None

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
        tensors += [] if self.selected is None else [self.selected]
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
    """Run the masked inputs of spec through model, batched, largest maps first (every sample of a mask together).

    Constant maps are not run: their mask is empty, so their input is the baseline (or, kept outside the mask, the
    unmasked input), whose logits are known (unless noise fills the mask). Masks left out by spec.top_variance are
    not run either. partial(scores) is called after each batch with the masks not yet run still at those known
    logits, so a caller can show a map that sharpens as batches arrive. precision "bfloat16" runs the passes in
    bfloat16 autocast (about twice as fast on CPUs with AVX-512 BF16; logits within about 1 %). labels, when given,
    are the channels' groups already computed for spec.
    """
    started = time.perf_counter()
    labels, note = (labels, "") if labels is not None else group_labels(activations, spec)
    maps = group_maps(activations, labels, spec.k, spec.denoise)
    count, size = len(maps), model_input.shape[-1]
    flat = maps.flatten(1)
    constant = (flat.amax(dim=1) - flat.amin(dim=1)) <= 1e-12 * torch.clamp(flat.abs().amax(dim=1), min=1.0)
    skipped = constant & (spec.noise == 0)
    selected = most_varied(maps, spec.top_variance)
    base = baseline_input(model_input, spec.baseline)
    mass = maps.clamp(min=0).flatten(1).sum(dim=1)
    order = [int(i) for i in torch.argsort(mass, descending=True)
             if not skipped[i] and (selected is None or selected[i])]
    todo = [(sample, k) for k in order for sample in range(spec.samples)]
    known = [base] if spec.keep == "inside" else [base, model_input]
    with PASSES.slot(), torch.inference_mode(), autocast(precision):
        found = model(torch.cat(known).contiguous(memory_format=torch.channels_last)).float()
    baseline_logits, input_logits = found[0], (found[1] if len(found) > 1 else None)
    fill = {"inside": [baseline_logits], "outside": [input_logits], "both": [baseline_logits, input_logits]}
    logits = torch.cat([row.repeat(spec.samples * count, 1) for row in fill[spec.keep]])

    def run(chunk: tuple[slice, bool]) -> tuple[torch.Tensor, torch.Tensor]:
        part = chunk[0]
        samples = torch.tensor([sample for sample, _ in todo[part]], dtype=torch.long)
        chosen = torch.tensor([k for _, k in todo[part]], dtype=torch.long)
        masks = sampled_masks(maps, spec, samples, chosen, size)
        kept = {"inside": [masks], "outside": [1.0 - masks], "both": [masks, 1.0 - masks]}[spec.keep]
        rows = torch.cat([samples * count + chosen + offset * count for offset in range(len(kept))])
        with PASSES.slot(), torch.inference_mode(), autocast(precision):
            batch = masked_inputs(model_input, base, torch.cat(kept)).contiguous(memory_format=torch.channels_last)
            return rows, model(batch).float()

    def scores(now: torch.Tensor) -> MaskScores:
        return MaskScores(maps, labels, now, baseline_logits, skipped, time.perf_counter() - started, note,
                          input_logits, spec.samples, selected)

    done = 0

    def record(chunk: tuple[slice, bool], found: tuple[torch.Tensor, torch.Tensor]) -> None:
        nonlocal done
        rows, batch_logits = found
        logits[rows] = batch_logits
        done += len(rows) // len(fill[spec.keep])
        if not chunk[1]:
            return
        if progress is not None:
            progress(done, len(todo))
        if partial is not None and done < len(todo):
            partial(scores(logits.clone()))

    per_batch = max(1, batch_size // len(fill[spec.keep]))
    parts = batch_parts(len(todo), per_batch, max(1, pass_chunk(model) // len(fill[spec.keep])))
    run_in_order(parts, run, record, batch_workers())
    return scores(logits)


def sampled_masks(maps: torch.Tensor, spec: MaskSpec, samples: torch.Tensor, chosen: torch.Tensor, size: int
                  ) -> torch.Tensor:
    """The (n, 1, size, size) masks of sample samples[i] of map chosen[i]: the map's mask scaled by that sample's
    factor (spec.integration), plus that sample's Gaussian noise (spec.noise, drawn from spec.seed)."""
    masks, _ = normalized_masks(maps[chosen], size, spec.align_corners, spec.scaling)
    masks = masks * mask_scales(spec.integration, spec.samples)[samples][:, None, None, None]
    if spec.noise > 0:
        masks = masks + torch.stack([mask_noise(spec.seed, int(sample), int(k), size, spec.noise)
                                     for sample, k in zip(samples, chosen, strict=True)])
    return masks


def most_varied(maps: torch.Tensor, fraction: float) -> torch.Tensor | None:
    """Which of the (M, h, w) maps are the round(fraction · M) (at least 1) whose values vary most over the
    positions (largest standard deviation; ties: lower index first), as tf-keras-vis's Faster Score-CAM keeps its
    max_N; None when fraction keeps every map."""
    count = len(maps)
    kept = max(1, round(fraction * count))
    if kept >= count:
        return None
    spread = maps.flatten(1).double().std(dim=1, unbiased=False)
    chosen = torch.zeros(count, dtype=torch.bool)
    chosen[torch.argsort(-spread, stable=True)[:kept]] = True
    return chosen


def default_precision() -> str:
    """float32, so that a map is the same on every CPU; $CAM_PRECISION=bfloat16 trades that for speed where the CPU
    has AVX-512 BF16 or AMX (about twice as fast there, logits within about 1 %, and results that then depend on the
    CPU and on how batches are split)."""
    return os.environ.get("CAM_PRECISION") or "float32"


def ablate_through_head(
    head: nn.Module, activations: torch.Tensor, batch_size: int, progress: Progress | None = None
) -> torch.Tensor:
    """(C, classes) logits of the head with each channel of activations zeroed in turn (batched; in closed form for
    a global-average-pool → linear head)."""
    channels = activations.shape[0]
    linear = head.linear_classifier() if isinstance(head, Head) else None
    if linear is not None:
        with PASSES.slot(), torch.inference_mode():
            logits = linear_ablations(linear, activations)
        if progress is not None:
            progress(channels, channels)
        return logits
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


def linear_ablations(linear: nn.Linear, activations: torch.Tensor) -> torch.Tensor:
    """(C, classes) logits of global-average-pool → linear with each channel zeroed in turn: zeroing channel k takes
    its pooled value times its column of weights off the logits."""
    pooled = activations.mean(dim=(1, 2))
    return linear(pooled[None]) - pooled[:, None] * linear.weight.T
