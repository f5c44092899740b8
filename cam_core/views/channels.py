"""Per-channel views of a layer: scores to rank channels by, and one channel's map at the image's size."""

from __future__ import annotations

import numpy as np

from cam_core.engine.analysis import Analysis
from cam_core.errors import CamError
from cam_core.inputs.mask_scores import MaskSpec
from cam_core.methods.score import score_gains
from cam_core.registry import methods
from cam_core.render.saliency import saliency_map

SCORECAM_SPEC = {"grouping": "channels", "baseline": "zero"}

STATISTICS = {"mean": "Mean activation", "max": "Max activation"}


def rankings() -> dict[str, str]:
    """What channels can be ranked by, id → label: the registered methods whose cards name a ranking, then the
    activation statistics."""
    return {card.id: card.ranking for card in methods() if card.ranking} | STATISTICS


def channel_scores(analysis: Analysis, by: str, target: int | None = None, layer: str | None = None) -> np.ndarray:
    """One score per channel of layer: a method's channel weights for target, or an activation statistic."""
    if by not in rankings():
        raise CamError(f"cannot rank channels by {by!r}; choose one of {', '.join(rankings())}")
    activations = analysis.activations(layer)
    if by == "mean":
        return activations.mean(dim=(1, 2)).numpy()
    if by == "max":
        return activations.amax(dim=(1, 2)).numpy()
    return analysis.cam(by, target=target, layer=layer).weights


def scorecam_ready(analysis: Analysis, layer: str | None = None) -> bool:
    """Whether Score-CAM's channel scores at layer are computed already (ranking by them is then instant)."""
    return analysis.has_mask_scores(MaskSpec(layer or analysis.explainer.default_layer, **SCORECAM_SPEC))


def cluster_gains(analysis: Analysis, layer: str, k: int, rows: str, target: int, seed: int = 0) -> np.ndarray:
    """Each k-means cluster's score gain for target: probability on the image kept under the cluster's mask (a
    blurred copy elsewhere) minus the probability on the blurred image (the clusters of Analysis.clusters)."""
    scores = analysis.mask_scores(MaskSpec(layer, "kmeans", k=k, rows=rows, seed=seed, baseline="blur"))
    return score_gains(scores, target, "probability").numpy()


def channel_saliency(analysis: Analysis, channel: int, layer: str | None = None) -> tuple[np.ndarray, str]:
    """Channel's activation map, ReLU'd, upsampled to the image and scaled to [0, 1] (Score-CAM's mask)."""
    activations = analysis.activations(layer)
    if not 0 <= channel < activations.shape[0]:
        raise CamError(f"channel {channel} is out of range 0..{activations.shape[0] - 1}")
    return saliency_map(activations[channel], analysis.size)
