"""Lessons: every method taken apart step by step on the user's own image, with the real numbers of its Analysis.

    from cam_core.lessons import lesson, compare_lessons
    story = lesson(analysis, "gradcam", target=285)
    [(step.stage, step.heading, step.text) for step in story.steps]

A lesson reads only the Analysis' cached quantities (activations, gradients, mask and ablation scores, paths,
guided gradients), so it runs no model pass beyond what the method itself needs; its steps end at the method's own
map, which it reads from the method's own output. Each method's lesson is registered with it (cam_core.methods);
a method without one gets the generic lesson (activations → weights → map → ReLU → upsampling → overlay).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch

from cam_core.lessons.compare import Parting, compare_lessons
from cam_core.lessons.generic import generic
from cam_core.lessons.steps import (
    STAGES,
    Bars,
    Chart,
    Heatmaps,
    Lesson,
    Line,
    Montage,
    Overlay,
    Source,
    Step,
    tail,
)
from cam_core.registry import MethodOutput, get_method

if TYPE_CHECKING:
    from cam_core.engine.analysis import Analysis
    from cam_core.passes.inference import Progress


def lesson(
    analysis: Analysis,
    method_id: str,
    target: int | None = None,
    layer: str | None = None,
    layers: Sequence[str] | None = None,
    progress: Progress | None = None,
    **params: object,
) -> Lesson:
    """method_id computed step by step on analysis' image for target (default: the top-1 class) at layer (multi-layer
    methods: layers, shallow to deep), with the method's params; progress(done, total) follows any model passes the
    method needs. Bad arguments raise the same CamError as Analysis.cam."""
    method = get_method(method_id)
    result = analysis.cam(method_id, target, layer, layers=layers, progress=progress, **params)
    output = MethodOutput(
        torch.from_numpy(result.raw),
        None if result.weights is None else torch.from_numpy(result.weights),
        result.note,
        None if result.rgb is None else torch.from_numpy(result.rgb),
    )
    source = Source(analysis, method.card, result.target, result.layers, result.params, output, progress)
    steps = (method.lesson or generic)(source)
    ending, saliency = tail(source, output.raw)
    return Lesson(method.card, result.target, result.label, result.layers, result.params, (*steps, *ending),
                  result.raw, saliency, result.note)


__all__ = [
    "STAGES",
    "Bars",
    "Chart",
    "Heatmaps",
    "Lesson",
    "Line",
    "Montage",
    "Overlay",
    "Parting",
    "Step",
    "compare_lessons",
    "generic",
    "lesson",
]
