"""Lessons: every method taken apart step by step on the user's own image, with the real numbers of its Analysis.

    from cam_core.lessons import lesson, compare_lessons
    story = lesson(analysis, "gradcam", target=285)
    [(step.stage, step.heading, step.text) for step in story.steps]

A lesson reads only the Analysis' cached quantities (activations, gradients, mask and ablation scores, paths,
guided gradients), so it runs no model pass beyond what the method itself needs; its steps end at the method's own
map. Methods without a builder here get a generic lesson (activations → weights → map → ReLU → upsampling → overlay).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

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
    Story,
    array,
    tail,
)
from cam_core.registry import get_method

from . import cluster, eigen, gradient, guided, multilayer, score

if TYPE_CHECKING:
    from cam_core.engine.analysis import Analysis
    from cam_core.passes.inference import Progress

BUILDERS: dict[str, Callable[[Source], Story]] = {
    "cam": gradient.cam,
    "gradcam": gradient.gradcam,
    "gradcampp": gradient.gradcampp,
    "xgradcam": gradient.xgradcam,
    "hirescam": gradient.hirescam,
    "smoothgradcampp": gradient.smoothgradcampp,
    "intgradcam": gradient.intgradcam,
    "eigencam": eigen.eigencam,
    "eigengradcam": eigen.eigengradcam,
    "scorecam": score.scorecam,
    "ablationcam": score.ablationcam,
    "groupcam": cluster.groupcam,
    "clustercam": cluster.clustercam,
    "cosinecam": cluster.cosinecam,
    "layercam": multilayer.layercam,
    "zoomcam": multilayer.zoomcam,
    "gradpolycam": multilayer.gradpolycam,
    "polycam": multilayer.polycam,
    "guidedbackprop": guided.guidedbackprop,
    "guidedgradcam": guided.guidedgradcam,
}


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
    card = get_method(method_id).card
    result = analysis.cam(method_id, target, layer, layers=layers, progress=progress, **params)
    full = {param.name: param.default for param in card.params} | params
    source = Source(analysis, card, result.target, result.layers, full, progress)
    steps, raw = BUILDERS.get(method_id, generic)(source)
    ending, saliency = tail(source, raw)
    return Lesson(card, result.target, result.label, result.layers, full, (*steps, *ending), array(raw), saliency,
                  result.note)


__all__ = [
    "BUILDERS",
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
