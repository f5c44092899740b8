"""One map's faithfulness scores through an Explainer: the metrics of cam_core.evaluation.metrics and ROAD on its
private inference copy of the model."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cam_core.engine.analysis import Analysis
from cam_core.errors import CamError
from cam_core.evaluation.metrics import BASELINES, Confidence, Curve, confidence_change, saliency_curve
from cam_core.evaluation.road import FRACTIONS, PIXEL_NOISE, road_curve
from cam_core.inputs.masking import BASELINES as MASK_BASELINES

# 50 steps spread quadratically: on dog.jpg and chelsea (gradcam, gradcampp, layercam, eigencam, gradpolycam) every
# AUC within 0.0031 of a 661-point curve's, where 20 equal steps were off by up to 0.0075, more than the gaps
# between methods on dog.jpg.
DEFAULT_STEPS = 50
DEFAULT_BASELINE = "rise"
METRICS = ("deletion", "insertion", "road_morf", "road_lerf", "average_drop", "increase_in_confidence")
ROAD_PERCENTAGES = f"{FRACTIONS[0]:.0%}, {FRACTIONS[1]:.0%}, …, {FRACTIONS[-1]:.0%}"
ROAD_PROTOCOL = (f"removed by noisy linear imputation (noise σ {PIXEL_NOISE:g} on pixels in [0, 1]) at "
                 f"{ROAD_PERCENTAGES} (Rong et al. 2022)")


def protocol(metric: str, steps: int = DEFAULT_STEPS, baseline: str = DEFAULT_BASELINE) -> str:
    """One line naming the protocol of metric (one of METRICS) and its baseline, for steps and baseline."""
    if metric not in METRICS:
        raise CamError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
    if baseline not in BASELINES:
        raise CamError(f"baseline must be one of {', '.join(BASELINES)}, not {baseline!r}")
    if metric in ("deletion", "insertion"):
        used = ("zero" if metric == "deletion" else "blur") if baseline == "rise" else baseline
        moved, better = ("replaced by", "lower") if metric == "deletion" else ("inserted into", "higher")
        return (f"{metric} ({better} is better): most salient pixels first {moved} {MASK_BASELINES[used]}, "
                f"{steps} steps, denser at the start (RISE, Petsiuk et al. 2018)")
    return {
        "road_morf": f"ROAD MoRF (lower is better): most relevant pixels first {ROAD_PROTOCOL}",
        "road_lerf": f"ROAD LeRF (higher is better): least relevant pixels first {ROAD_PROTOCOL}",
        "average_drop": "Average Drop: the input multiplied by the map, the zero input where the map is 0 "
                        "(Chattopadhyay et al. 2018)",
        "increase_in_confidence": "Increase in Confidence: the input multiplied by the map, the zero input where "
                                  "the map is 0 (Chattopadhyay et al. 2018)",
    }[metric]


PROTOCOLS: dict[str, str] = {metric: protocol(metric) for metric in METRICS}


@dataclass(frozen=True)
class MapScores:
    """A map's deletion and insertion curves, its confidence change, its ROAD curves (None unless asked for), and
    the seconds they took."""

    deletion: Curve
    insertion: Curve
    confidence: Confidence
    road_morf: Curve | None
    road_lerf: Curve | None
    seconds: float

    @property
    def nbytes(self) -> int:
        curves = (self.deletion, self.insertion, self.road_morf, self.road_lerf)
        return sum(curve.nbytes for curve in curves if curve is not None)


def score_map(
    analysis: Analysis,
    saliency: np.ndarray,
    target: int,
    steps: int = DEFAULT_STEPS,
    baseline: str = DEFAULT_BASELINE,
    batch_size: int = 16,
    road: bool | Sequence[float] = False,
) -> MapScores:
    """Deletion and insertion curves and the confidence change of saliency for class target on analysis's image
    (2 × (steps + 1) + 2 passes, batched); with road, also the ROAD MoRF and LeRF curves at the authors' percentages
    (or at the fractions road gives), one imputation and pass per point, their noise the authors' 0.01 on pixels in
    [0, 1], in the model input's units."""
    started = time.perf_counter()
    model = analysis.explainer.fast_model()
    model_input = analysis.input
    curves = [
        saliency_curve(model, model_input, saliency, target, kind, steps, baseline, batch_size)
        for kind in ("deletion", "insertion")
    ]
    confidence = confidence_change(model, model_input, saliency, target)
    morf = lerf = None
    if road:
        noise = [PIXEL_NOISE / std for std in analysis.explainer.spec.preprocessing.std]
        fractions = FRACTIONS if road is True else road
        morf, lerf = (road_curve(model, model_input, saliency, target, order, fractions, noise, batch_size=batch_size)
                      for order in ("morf", "lerf"))
    return MapScores(curves[0], curves[1], confidence, morf, lerf, time.perf_counter() - started)
