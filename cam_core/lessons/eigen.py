"""Lessons of Eigen-CAM and EigenGrad-CAM: the first principal component of a positions × channels matrix."""

from __future__ import annotations

import torch

from cam_core.lessons.steps import (
    SHOWN_CHANNELS,
    Bars,
    Heatmaps,
    Line,
    Source,
    Step,
    Story,
    activations_step,
    array,
    channel_tiles,
    gradients_step,
    num,
    shape,
    signed,
    top,
)
from cam_core.methods.common import centred_matrix, position_matrix, principal_component, sign_agreement

MATRIX_COLUMNS = 48


def principal_steps(maps: torch.Tensor, what: str, centre: bool) -> tuple[list[Step], torch.Tensor, torch.Tensor]:
    """matrix → singular values → component → sign fix for (C, h, w) maps; the steps, the map and the direction."""
    count, height, width = maps.shape
    matrix = position_matrix(maps)
    centred = centred_matrix(matrix, centre)
    projection, direction = principal_component(centred)
    agreement = sign_agreement(projection, matrix)
    sign = -1.0 if agreement < 0 else 1.0
    raw = (sign * projection).reshape(height, width).to(maps.dtype)
    singular = torch.linalg.svdvals(centred)
    share = float(singular[0] ** 2 / (singular**2).sum().clamp(min=1e-300))
    columns = sorted(top(direction, min(MATRIX_COLUMNS, count)))
    loadings = top(direction, 12)
    before = projection.reshape(height, width)
    ratio = f"{float(singular[0] / singular[1]):.1f}× the second" if len(singular) > 1 and singular[1] > 0 else "alone"
    steps = [
        Step("matrix", "The positions × channels matrix",
             f"The {count} {what} maps become a matrix M with one row per position ({height * width}) and one column "
             f"per channel ({count})" + ("; each column's mean is subtracted. " if centre else ", as it is. ")
             + "Shown: the {len(columns)} columns that weigh "
             "most in the first component (found below).",
             f"the {what} maps as a {'centred ' if centre else ''}{height * width} × {count} matrix",
             (Heatmaps(((f"M: {height * width} positions × {len(columns)} of {count} channels",
                         array(centred[:, columns])),), True),), array(centred)),
        Step("singular values", "The singular values",
             f"M = UΣVᵀ. The first singular value, {num(singular[0])}, is {ratio}; the first component carries "
             f"{share:.0%} of the {'variance' if centre else 'sum of squares'} (σ₁² / Σσ²). A steep drop after σ₁ "
             "means one pattern dominates the layer.",
             "the singular value decomposition of M",
             (Line("singular values of M (scree plot)", "component", "singular value", array(singular)),),
             array(singular)),
        Step("component", "The first component",
             "Projecting every position on the first right singular vector v₁ gives one number per position: a "
             f"{height}×{width} map. The decomposition fixes v₁ only up to its sign; as it came out, the map "
             f"{'falls' if sign < 0 else 'rises'} where the channels' mean activation rises. The channels weighing "
             f"most in v₁: {', '.join(f'{k} ({num(direction[k])})' for k in loadings[:3])}.",
             "the projection of every position on the first singular vector",
             (Heatmaps((("M v₁ as the decomposition returns it", array(before)),), True),
              Bars("the largest loadings of v₁", "channel", tuple(loadings), "loading", array(direction[loadings]))),
             array(before)),
        Step("sign fix", "The sign fix",
             ("It correlates negatively with the channels' mean map, so both v₁ and the map are flipped: now the map "
              "is high where the layer fires." if sign < 0 else
              "It already correlates positively with the channels' mean map, so it is kept as it is.")
             + " Without this rule a map can come out upside down, depending on the linear algebra library.",
             "the sign chosen to agree with the mean activation",
             (Heatmaps((("before", array(before)), ("after", array(raw))), True),), array(raw)),
    ]
    return steps, raw, sign * direction


def eigencam(source: Source) -> Story:
    acts = source.activations()
    steps, raw, direction = principal_steps(acts, "activation", bool(source.params["centre"]))
    channels = top(direction, SHOWN_CHANNELS)
    return [activations_step(source, channels, "the ones that weigh most in the first component"), *steps], raw


def eigengradcam(source: Source) -> Story:
    acts, grads = source.activations(), source.gradients()
    product = grads * acts
    steps, raw, direction = principal_steps(product, "gradient × activation", True)
    channels = top(direction, SHOWN_CHANNELS)
    multiply = Step(
        "product", "Gradient × activation",
        f"EigenGrad-CAM multiplies each activation by its gradient first, so the principal component is about the "
        f"class: the {shape(product)} product runs from {num(product.min())} to {num(product.max())}.",
        "the gradient times the activation at each position",
        (Heatmaps(channel_tiles(product, channels), signed(product)),), array(product),
    )
    return [activations_step(source, channels, "the ones that weigh most in the first component"),
            gradients_step(source, channels), multiply, *steps], raw
