"""Faithfulness metrics of a saliency map: how much the model's confidence in a class follows the map.

Average Drop and Increase in Confidence (Chattopadhyay et al., Grad-CAM++, WACV 2018) and the deletion and insertion
curves (Petsiuk et al., RISE, BMVC 2018). Each is a pure function of a model, a model input, a map and a class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from cam_core.errors import CamError
from cam_core.inputs.masking import BASELINES as MASK_BASELINES
from cam_core.inputs.masking import baseline_input as masking_baseline
from cam_core.passes.inference import chunks
from cam_core.scaling import min_max
from cam_core.sharing.slots import PASSES

Model = Callable[[torch.Tensor], torch.Tensor]
BASELINES = ("rise", *MASK_BASELINES)
KINDS = ("deletion", "insertion")
# How the points of a curve are spread over the fraction of pixels: "quadratic" puts point k of n at (k / n)², dense
# at the start where the curves move (on dog.jpg every deletion curve is below 1 % of its start by 12 % of the
# pixels); "uniform" at k / n, RISE's equal steps.
SPACINGS = ("quadratic", "uniform")


@dataclass(frozen=True)
class Confidence:
    """The class probability on the image and on the image multiplied by the map."""

    original: float
    explained: float

    @property
    def drop(self) -> float:
        """max(0, original − explained) / original: the share of the confidence the map's pixels do not carry."""
        return max(0.0, self.original - self.explained) / self.original if self.original > 0 else 0.0

    @property
    def increase(self) -> bool:
        """Whether the map's pixels alone make the model more confident than the whole image."""
        return self.explained > self.original


@dataclass(frozen=True)
class Curve:
    """A deletion or insertion curve: the class probability as a growing fraction of the pixels, most salient
    first, is removed (replaced by the baseline) or inserted (into the baseline)."""

    kind: str
    fractions: np.ndarray
    scores: np.ndarray

    @property
    def auc(self) -> float:
        """Area under the curve (trapezoids over the fraction of pixels): lower is better for deletion, higher for
        insertion."""
        widths = np.diff(self.fractions)
        return float(np.sum(widths * (self.scores[1:] + self.scores[:-1]) / 2))

    @property
    def nbytes(self) -> int:
        return self.fractions.nbytes + self.scores.nbytes


def probabilities(model: Model, inputs: torch.Tensor, target: int, batch_size: int = 16) -> np.ndarray:
    """Softmax probability of target for each input of the batch inputs, in chunks of batch_size."""
    found = []
    with torch.inference_mode():
        for part in chunks(inputs.shape[0], batch_size):
            with PASSES.slot():
                logits = model(inputs[part.start : part.stop]).float()
            found.append(torch.softmax(logits, dim=1)[:, target])
    return torch.cat(found).numpy().astype(np.float64)


def map_at_input(saliency: np.ndarray, model_input: torch.Tensor) -> torch.Tensor:
    """saliency resized (bilinear) to model_input's height and width and scaled to [0, 1] (constant → zeros)."""
    values = np.asarray(saliency, dtype=np.float32)
    if values.ndim != 2 or not np.isfinite(values).all():
        raise CamError(f"a saliency map must be a finite 2-D array, not one of shape {values.shape}")
    resized = F.interpolate(
        torch.from_numpy(values)[None, None], size=tuple(model_input.shape[-2:]), mode="bilinear", align_corners=False
    )[0, 0]
    return min_max(resized)


def pixel_ranks(saliency: np.ndarray, model_input: torch.Tensor) -> torch.Tensor:
    """(H, W) rank of each model-input pixel in the map resized to the input: 0 for the most salient, ties in pixel
    order."""
    weights = map_at_input(saliency, model_input)
    order = torch.from_numpy(np.argsort(-weights.numpy().ravel(), kind="stable").copy())
    rank = torch.empty(order.numel(), dtype=torch.int64)
    rank[order] = torch.arange(order.numel())
    return rank.reshape(weights.shape)


def confidence_change(model: Model, model_input: torch.Tensor, saliency: np.ndarray, target: int) -> Confidence:
    """The class probability on the model input and on the input multiplied by the map (zero input where the map is
    zero)."""
    weights = map_at_input(saliency, model_input)
    both = torch.cat([model_input, model_input * weights])
    original, explained = probabilities(model, both, target)
    return Confidence(float(original), float(explained))


def average_drop(changes: Sequence[Confidence]) -> float:
    """Average Drop in percent: the mean of the drops (lower is better)."""
    return 100.0 * float(np.mean([change.drop for change in changes])) if changes else float("nan")


def increase_in_confidence(changes: Sequence[Confidence]) -> float:
    """Increase in Confidence in percent: how often the map's pixels alone raise the confidence (higher is better)."""
    return 100.0 * float(np.mean([change.increase for change in changes])) if changes else float("nan")


def baseline_input(model_input: torch.Tensor, baseline: str, kind: str = "deletion") -> torch.Tensor:
    """What removed pixels become on a curve of this kind: the masked-input methods' baselines, a heavily blurred
    copy of the input or the zero input; "rise" is RISE's protocol, zeros for deletion and the blurred copy for
    insertion."""
    if baseline not in BASELINES:
        raise CamError(f"baseline must be one of {', '.join(BASELINES)}, not {baseline!r}")
    if baseline == "rise":
        baseline = "zero" if kind == "deletion" else "blur"
    return masking_baseline(model_input, baseline)


def saliency_curve(
    model: Model,
    model_input: torch.Tensor,
    saliency: np.ndarray,
    target: int,
    kind: str = "deletion",
    steps: int = 20,
    baseline: str = "rise",
    batch_size: int = 16,
    spacing: str = "quadratic",
) -> Curve:
    """The deletion or insertion curve of a map: steps + 1 points from no pixel to every pixel (spread as spacing
    says, rounded to whole pixels), most salient first (ties in pixel order), all inputs of a curve run in
    batches."""
    if kind not in KINDS:
        raise CamError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 1000:
        raise CamError(f"steps must be a whole number from 1 to 1000, not {steps!r}")
    if spacing not in SPACINGS:
        raise CamError(f"spacing must be one of {', '.join(SPACINGS)}, not {spacing!r}")
    rank = pixel_ranks(saliency, model_input)
    height, width = rank.shape
    shares = np.arange(steps + 1) / steps
    counts = np.round((shares**2 if spacing == "quadratic" else shares) * height * width).astype(np.int64)
    rank = rank.reshape(1, 1, height, width)
    other = baseline_input(model_input, baseline, kind)
    start, end = (model_input, other) if kind == "deletion" else (other, model_input)
    scores = []
    for part in chunks(len(counts), batch_size):
        reached = rank < torch.from_numpy(counts[part.start : part.stop]).reshape(-1, 1, 1, 1)
        scores.append(probabilities(model, torch.where(reached, end, start), target, batch_size))
    return Curve(kind, counts / (height * width), np.concatenate(scores))
