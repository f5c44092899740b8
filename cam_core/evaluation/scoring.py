"""One map's faithfulness scores through an Explainer: the metrics of cam_core.evaluation.metrics on its private
inference copy of the model."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from cam_core.engine.analysis import Analysis
from cam_core.evaluation.metrics import Confidence, Curve, confidence_change, saliency_curve

DEFAULT_STEPS = 20
DEFAULT_BASELINE = "rise"


@dataclass(frozen=True)
class MapScores:
    """A map's deletion and insertion curves, its confidence change, and the seconds the three took."""

    deletion: Curve
    insertion: Curve
    confidence: Confidence
    seconds: float

    @property
    def nbytes(self) -> int:
        return self.deletion.nbytes + self.insertion.nbytes


def score_map(
    analysis: Analysis,
    saliency: np.ndarray,
    target: int,
    steps: int = DEFAULT_STEPS,
    baseline: str = DEFAULT_BASELINE,
    batch_size: int = 16,
) -> MapScores:
    """Deletion and insertion curves and the confidence change of saliency for class target on analysis's image
    (2 × (steps + 1) + 2 passes, batched)."""
    started = time.perf_counter()
    model = analysis.explainer.fast_model()
    model_input = analysis.input
    curves = [
        saliency_curve(model, model_input, saliency, target, kind, steps, baseline, batch_size)
        for kind in ("deletion", "insertion")
    ]
    confidence = confidence_change(model, model_input, saliency, target)
    return MapScores(curves[0], curves[1], confidence, time.perf_counter() - started)
