"""Eigen-CAM and EigenGrad-CAM: the first principal component of the channel maps."""

from __future__ import annotations

import torch

from cam_core.lessons.steps import (
    SHOWN_CHANNELS,
    Bars,
    Heatmaps,
    Line,
    Source,
    Step,
    activations_step,
    array,
    channel_tiles,
    gradients_step,
    num,
    shape,
    signed,
    top,
)
from cam_core.methods.common import (
    centred_matrix,
    first_principal_component,
    position_matrix,
    principal_component,
)
from cam_core.registry import CamInputs, MethodCard, MethodOutput, Param, Peer, register

SIGN_NOTE = (
    "SVD fixes a direction only up to its sign, so a plain implementation can return the map upside down; "
    "here the sign is chosen so that the map correlates positively with the mean of the channels."
)


EIGENCAM = MethodCard(
    id="eigencam",
    name="Eigen-CAM",
    family="Channel weighting",
    needs=frozenset(),
    cost="instant",
    summary="The first principal component of the activations: where the layer's strongest shared pattern is.",
    explanation=(
        "Eigen-CAM arranges the activations as a position × channel matrix and takes the right singular vector "
        "with the largest singular value: the channel mix that explains most of the activation across the "
        "image. Projecting every position on it gives the map. The paper decomposes the matrix as it is; "
        "pytorch-grad-cam centres each channel first (a principal component proper), an option here. It uses "
        "no class information at all, so every class gets the same map: it shows what the layer sees as "
        "salient, not why one class won. " + SIGN_NOTE
    ),
    formula=r"M = \big[A^k_{ij}\big]_{(ij),k} = U\Sigma V^\top \qquad L = \mathrm{ReLU}(M\,v_1)",
    paper="Muhammad & Yeasin, Eigen-CAM: Class Activation Map using Principal Components, IJCNN 2020",
    definition="Muhammad & Yeasin, IJCNN 2020: the activation matrix's projection on its first right singular vector",
    differs="the sign is chosen to agree with the mean activation: the SVD's is arbitrary",
    reference="paper",
    peers=(Peer("pytorch-grad-cam", "EigenCAM", (('centre', True),)),),
    ranking="Eigen-CAM weight (first principal direction)",
    strengths=("No gradients, no class, no extra pass", "Robust to noisy gradients"),
    weaknesses=("Not class-specific", "Sign of the component is arbitrary without a fix"),
    params=(Param("centre", False, "subtract each channel's mean before the decomposition, as pytorch-grad-cam "
                  "does (the paper does not)"),),
    class_specific=False,
)


def eigencam(inputs: CamInputs, centre: bool) -> MethodOutput:
    """Projection of the activations on their first right singular vector."""
    raw, direction = first_principal_component(inputs.activations, centre)
    return MethodOutput(raw, direction)


EIGENGRADCAM = MethodCard(
    id="eigengradcam",
    name="EigenGrad-CAM",
    family="Channel weighting",
    needs=frozenset({"gradients"}),
    cost="fast",
    summary="Eigen-CAM on gradient × activation, which makes the principal component class-specific.",
    explanation=(
        "EigenGrad-CAM runs Eigen-CAM's principal-component step on the element-wise product of the class "
        "score's gradient and the activations instead of on the activations alone. The gradient brings in the "
        "class, the principal component keeps the dominant, cleanest pattern of the product and drops the "
        "rest. Each channel of the product is centred first, as pytorch-grad-cam, whose method this is, does. "
        + SIGN_NOTE
    ),
    formula=r"M = \Big[\tfrac{\partial y^c}{\partial A^k_{ij}}A^k_{ij} - \overline{(\cdot)}^k\Big]_{(ij),k} = "
    r"U\Sigma V^\top \qquad L^c = \mathrm{ReLU}(M\,v_1)",
    paper="Muhammad & Yeasin, Eigen-CAM, IJCNN 2020 (gradient variant as in pytorch-grad-cam)",
    definition="pytorch-grad-cam's: Eigen-CAM of the centred gradient × activation",
    peers=(Peer("pytorch-grad-cam", "EigenGradCAM"),),
    strengths=("Class-specific", "Less noisy than HiRes-CAM's raw product"),
    weaknesses=("Keeps a single pattern: a second object may vanish",),
)


def eigengradcam(inputs: CamInputs) -> MethodOutput:
    """First principal component of gradient × activation."""
    raw, direction = first_principal_component(inputs.gradients * inputs.activations)
    return MethodOutput(raw, direction)


MATRIX_COLUMNS = 48


def principal_steps(maps: torch.Tensor, what: str, centre: bool, raw: torch.Tensor,
                    direction: torch.Tensor) -> list[Step]:
    """matrix → singular values → component → sign fix for (C, h, w) maps, arriving at the method's map raw and its
    direction (the decomposition's own sign is shown before the fix)."""
    count, height, width = maps.shape
    matrix = position_matrix(maps)
    centred = centred_matrix(matrix, centre)
    projection, returned = principal_component(centred)
    sign = -1.0 if float(returned.double() @ direction.double()) < 0 else 1.0
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
    return steps


def eigencam_lesson(source: Source) -> list[Step]:
    acts = source.activations()
    steps = principal_steps(acts, "activation", bool(source.params["centre"]), source.raw, source.weights)
    channels = top(source.weights, SHOWN_CHANNELS)
    return [activations_step(source, channels, "the ones that weigh most in the first component"), *steps]


def eigengradcam_lesson(source: Source) -> list[Step]:
    acts, grads = source.activations(), source.gradients()
    product = grads * acts
    steps = principal_steps(product, "gradient × activation", True, source.raw, source.weights)
    channels = top(source.weights, SHOWN_CHANNELS)
    multiply = Step(
        "product", "Gradient × activation",
        f"EigenGrad-CAM multiplies each activation by its gradient first, so the principal component is about the "
        f"class: the {shape(product)} product runs from {num(product.min())} to {num(product.max())}.",
        "the gradient times the activation at each position",
        (Heatmaps(channel_tiles(product, channels), signed(product)),), array(product),
    )
    return [activations_step(source, channels, "the ones that weigh most in the first component"),
            gradients_step(source, channels), multiply, *steps]


register(EIGENCAM, eigencam, eigencam_lesson)
register(EIGENGRADCAM, eigengradcam, eigengradcam_lesson)
