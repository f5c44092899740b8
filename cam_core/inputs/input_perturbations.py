"""Perturbations of the model input itself, and the network's logits for each: RISE's random masks, occlusion's
sliding window and LIME's superpixels switched off.

A frozen PerturbationSpec (kind, its parameters, seed, baseline) gives a plan: what regenerates the masks (RISE's
low-resolution grids and shifts, the windows' corners, LIME's superpixels and on/off samples), never the thousands
of full-size masks themselves, which are rebuilt in chunks when they are scored or weighed. The scores hold every
class's logits, so a class switch only re-weights them."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Union

import numpy as np
import torch
from skimage.segmentation import slic
from torch import nn

from cam_core.errors import CamError
from cam_core.inputs.masking import BASELINES, baseline_input, masked_inputs
from cam_core.passes.inference import Progress, autocast, batch_workers, chunks, run_in_order
from cam_core.sharing.slots import PASSES

KINDS = ("rise", "occlusion", "lime")
SCORES = ("probability", "logit")


@dataclass(frozen=True)
class PerturbationSpec:
    """Which perturbed inputs: kind (one of KINDS) with its parameters, the seed of its random draws, and the
    baseline that perturbed-out pixels take (one of masking.BASELINES).

    rise: samples random grids of cells × cells, each cell kept with probability keep. occlusion: a window × window
    square slid by stride. lime: samples random on/off choices of about segments SLIC superpixels (compactness)."""

    kind: str
    baseline: str = "zero"
    seed: int = 0
    samples: int = 0
    cells: int = 0
    keep: float = 0.5
    window: int = 0
    stride: int = 0
    segments: int = 0
    compactness: float = 10.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise CamError(f"a perturbation is one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.baseline not in BASELINES:
            raise CamError(f"baseline must be one of {', '.join(BASELINES)}, not {self.baseline!r}")
        needed = {"rise": ("samples", "cells"), "occlusion": ("window", "stride"), "lime": ("samples", "segments")}
        for name in needed[self.kind]:
            if getattr(self, name) < 1:
                raise CamError(f"{self.kind}: {name} must be at least 1, not {getattr(self, name)}")
        if self.kind == "rise" and not 0 < self.keep <= 1:
            raise CamError(f"rise: keep must be a probability above 0 and at most 1, not {self.keep}")
        if self.kind == "occlusion" and self.stride > self.window:
            raise CamError(f"occlusion: the stride ({self.stride}) must not exceed the window ({self.window}), or "
                           "pixels between windows would never be occluded")


def _bytes(*tensors: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def upsampling_matrix(cells: int, length: int) -> torch.Tensor:
    """The (length, cells) matrix of bilinear (order-1) interpolation from cells values to length, each output
    sample at its pixel's centre and reflected about the edge samples beyond them (what the RISE authors' code does
    with skimage's resize(order=1, mode="reflect")); a grid g upsamples to A g Aᵀ."""
    position = (np.arange(length) + 0.5) * cells / length - 0.5
    if cells > 1:
        period = 2 * (cells - 1)
        position = np.abs(position) % period
        position = np.where(position > cells - 1, period - position, position)
    else:
        position = np.zeros(length)
    low = np.minimum(np.floor(position).astype(int), max(cells - 2, 0))
    fraction = position - low
    matrix = np.zeros((length, cells))
    matrix[np.arange(length), low] += 1.0 - fraction
    if cells > 1:
        matrix[np.arange(length), low + 1] += fraction
    return torch.from_numpy(matrix).float()


@dataclass(frozen=True)
class RisePlan:
    """RISE's masks: binary cells × cells grids (True: kept), each upsampled bilinearly to (cells + 1) × cell pixels
    and cropped at its (row, column) shift to the input's size × size."""

    grids: torch.Tensor
    shifts: torch.Tensor
    upsampling: torch.Tensor
    size: int
    keep: float

    @property
    def count(self) -> int:
        return self.grids.shape[0]

    @property
    def cell(self) -> int:
        return math.ceil(self.size / self.grids.shape[1])

    def _crops(self, offsets: torch.Tensor) -> torch.Tensor:
        """The upsampling matrix's rows from each offset on, size of them: (n, size, cells)."""
        return self.upsampling[offsets[:, None] + torch.arange(self.size)]

    def masks(self, rows: slice) -> torch.Tensor:
        """The (n, 1, size, size) masks of rows, in [0, 1]."""
        grids = self.grids[rows].float()
        shifts = self.shifts[rows]
        found = torch.einsum("nha,nab,nwb->nhw", self._crops(shifts[:, 0]), grids, self._crops(shifts[:, 1]))
        return found[:, None]

    def weighted_sum(self, weights: torch.Tensor) -> torch.Tensor:
        """Σᵢ weights[i] · mask i, (size, size), for the first len(weights) masks: the weighted grids are added up
        per shift first, and upsampling is linear, so no mask is built."""
        count = weights.shape[0]
        grids = self.grids[:count].double() * weights.double()[:, None, None]
        shifts = self.shifts[:count]
        cells = self.grids.shape[1]
        by_shift = torch.zeros(self.cell, self.cell, cells, cells, dtype=torch.float64)
        by_shift.index_put_((shifts[:, 0], shifts[:, 1]), grids, accumulate=True)
        crops = self._crops(torch.arange(self.cell)).double()
        per_row = torch.einsum("yxab,xwb->yaw", by_shift, crops)
        return torch.einsum("yha,yaw->hw", crops, per_row).float()

    @property
    def nbytes(self) -> int:
        return _bytes(self.grids, self.shifts, self.upsampling)


def rise_plan(spec: PerturbationSpec, size: int) -> RisePlan:
    """RISE's grids (cell kept with probability spec.keep) and shifts (each in [0, cell)), drawn from spec.seed."""
    generator = np.random.default_rng(spec.seed)
    cell = math.ceil(size / spec.cells)
    grids = generator.random((spec.samples, spec.cells, spec.cells)) < spec.keep
    shifts = generator.integers(0, cell, size=(spec.samples, 2))
    return RisePlan(torch.from_numpy(grids), torch.from_numpy(shifts), upsampling_matrix(spec.cells,
                    (spec.cells + 1) * cell), size, spec.keep)


@dataclass(frozen=True)
class OcclusionPlan:
    """Square windows at (row, column) corners; the windows at the far edges are cut off by the input's border."""

    corners: torch.Tensor
    window: int
    size: int

    @property
    def count(self) -> int:
        return self.corners.shape[0]

    def _covers(self, rows: slice) -> tuple[torch.Tensor, torch.Tensor]:
        """Per window of rows, which input rows and which input columns it covers: two (n, size) 0/1 tensors."""
        index = torch.arange(self.size)
        corners = self.corners[rows]

        def inside(start: torch.Tensor) -> torch.Tensor:
            return ((index >= start[:, None]) & (index < start[:, None] + self.window)).float()

        return inside(corners[:, 0]), inside(corners[:, 1])

    def masks(self, rows: slice) -> torch.Tensor:
        """The (n, 1, size, size) masks of rows: 0 inside the window (occluded), 1 elsewhere."""
        across, down = self._covers(rows)
        return (1.0 - across[:, :, None] * down[:, None, :])[:, None]

    def window_mean(self, values: torch.Tensor) -> torch.Tensor:
        """Each pixel's mean of values over the windows (of the first len(values)) that cover it, (size, size);
        0 where none of them does."""
        across, down = self._covers(slice(0, values.shape[0]))
        total = torch.einsum("n,nh,nw->hw", values.double(), across.double(), down.double())
        covered = torch.einsum("nh,nw->hw", across.double(), down.double())
        return torch.where(covered > 0, total / covered.clamp(min=1), 0.0).float()

    @property
    def grid(self) -> tuple[int, int]:
        """How many window positions there are down and across."""
        return len(torch.unique(self.corners[:, 0])), len(torch.unique(self.corners[:, 1]))

    @property
    def nbytes(self) -> int:
        return _bytes(self.corners)


def occlusion_plan(spec: PerturbationSpec, size: int) -> OcclusionPlan:
    """Corners every stride pixels from 0 until a window reaches the border, rows first (Captum's Occlusion)."""
    if spec.window > size:
        raise CamError(f"occlusion: the window ({spec.window}) is larger than the {size}×{size} input")
    starts = torch.arange(math.ceil((size - spec.window) / spec.stride) + 1) * spec.stride
    corners = torch.cartesian_prod(starts, starts)
    return OcclusionPlan(corners, spec.window, size)


@dataclass(frozen=True)
class LimePlan:
    """LIME's superpixels ((size, size) labels 0 … K − 1) and its samples ((N, K), True: the superpixel is kept;
    sample 0 keeps every one, the image itself)."""

    segments: torch.Tensor
    samples: torch.Tensor

    @property
    def count(self) -> int:
        return self.samples.shape[0]

    @property
    def features(self) -> int:
        return self.samples.shape[1]

    def masks(self, rows: slice) -> torch.Tensor:
        """The (n, 1, size, size) masks of rows: 1 on the kept superpixels, 0 on the others."""
        return self.samples[rows][:, self.segments.long()].float()[:, None]

    @property
    def nbytes(self) -> int:
        return _bytes(self.segments, self.samples)


def superpixels(picture: np.ndarray, segments: int, compactness: float) -> np.ndarray:
    """SLIC superpixels of an (S, S, 3) picture in [0, 1], labelled 0 … K − 1 with no label unused."""
    labels = slic(picture, n_segments=segments, compactness=compactness, start_label=0, channel_axis=-1)
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape).astype(np.int32)


def lime_plan(spec: PerturbationSpec, picture: np.ndarray) -> LimePlan:
    """The picture's superpixels and spec.samples on/off samples drawn from spec.seed, each superpixel on with
    probability ½ (the LIME authors' sampling), the first sample all on."""
    segments = superpixels(picture, spec.segments, spec.compactness)
    count = int(segments.max()) + 1
    samples = np.random.default_rng(spec.seed).integers(0, 2, size=(spec.samples, count)).astype(bool)
    samples[0] = True
    return LimePlan(torch.from_numpy(segments), torch.from_numpy(samples))


Plan = Union[RisePlan, OcclusionPlan, LimePlan]


def perturbation_plan(spec: PerturbationSpec, size: int, picture: Callable[[], np.ndarray]) -> Plan:
    """spec's plan for a size × size input; picture() gives the (size, size, 3) input in [0, 1] (for LIME's
    superpixels)."""
    if spec.kind == "rise":
        return rise_plan(spec, size)
    if spec.kind == "occlusion":
        return occlusion_plan(spec, size)
    return lime_plan(spec, picture())


@dataclass(frozen=True)
class InputScores:
    """The network's logits for the perturbed inputs of plan scored so far (all of them once complete, in the
    plan's order), for the unperturbed input and for the baseline."""

    plan: Plan
    logits: torch.Tensor
    input_logits: torch.Tensor
    baseline_logits: torch.Tensor
    seconds: float

    @property
    def count(self) -> int:
        """How many perturbed inputs are scored."""
        return self.logits.shape[0]

    @property
    def complete(self) -> bool:
        return self.count == self.plan.count

    def scores(self, target: int, score: str = "probability") -> torch.Tensor:
        """Each scored perturbed input's score of target: its post-softmax probability or its logit."""
        if score == "logit":
            return self.logits[:, target]
        return torch.exp(self.logits[:, target].double() - self.log_totals).to(self.logits.dtype)

    @cached_property
    def log_totals(self) -> torch.Tensor:
        """Each perturbed input's log Σ exp(logits), in float64: the softmax's class-independent part, so that a
        class's probabilities cost one exp per input."""
        return torch.logsumexp(self.logits.double(), dim=1)

    def input_score(self, target: int, score: str = "probability") -> torch.Tensor:
        """The unperturbed input's score of target."""
        if score == "logit":
            return self.input_logits[target]
        return torch.softmax(self.input_logits, dim=0)[target]

    def baseline_score(self, target: int, score: str = "probability") -> torch.Tensor:
        """The baseline's score of target."""
        if score == "logit":
            return self.baseline_logits[target]
        return torch.softmax(self.baseline_logits, dim=0)[target]

    @property
    def nbytes(self) -> int:
        return self.plan.nbytes + _bytes(self.logits, self.input_logits, self.baseline_logits)


def score_perturbations(
    model: nn.Module, model_input: torch.Tensor, spec: PerturbationSpec, plan: Plan, batch_size: int,
    progress: Progress | None = None, partial: Callable[[InputScores], None] | None = None,
    precision: str = "float32",
) -> InputScores:
    """Run plan's perturbed inputs (the input kept where the mask is 1, spec's baseline elsewhere) through model in
    batches of batch_size, in the plan's order. partial(scores) receives the scores of the batches done so far after
    each batch but the last; progress(done, total) follows the batches."""
    started = time.perf_counter()
    base = baseline_input(model_input, spec.baseline)
    with PASSES.slot(), torch.inference_mode(), autocast(precision):
        known = model(torch.cat([model_input, base]).contiguous(memory_format=torch.channels_last)).float()
    logits = torch.empty(plan.count, known.shape[1])

    def run(rows: slice) -> torch.Tensor:
        masks = plan.masks(rows)
        with PASSES.slot(), torch.inference_mode(), autocast(precision):
            batch = masked_inputs(model_input, base, masks).contiguous(memory_format=torch.channels_last)
            return model(batch).float()

    def scores(found: torch.Tensor) -> InputScores:
        return InputScores(plan, found, known[0], known[1], time.perf_counter() - started)

    def done(rows: slice, found: torch.Tensor) -> None:
        logits[rows] = found
        if progress is not None:
            progress(rows.stop, plan.count)
        if partial is not None and rows.stop < plan.count:
            partial(scores(logits[: rows.stop].clone()))

    run_in_order(chunks(plan.count, batch_size), run, done, batch_workers())
    return scores(logits)


def input_picture(model_input: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """The (S, S, 3) picture in [0, 1] that a (1, 3, S, S) model input was normalised from."""
    pixels = model_input[0].permute(1, 2, 0).double().numpy() * np.asarray(std) + np.asarray(mean)
    return np.clip(pixels, 0.0, 1.0)
