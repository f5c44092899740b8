"""Eigen-CAM and EigenGrad-CAM: the first principal component of the channel maps."""

from __future__ import annotations

from cam_core.methods.common import first_principal_component
from cam_core.registry import CamInputs, MethodCard, MethodOutput, Param, register

SIGN_NOTE = (
    "SVD fixes a direction only up to its sign, so a plain implementation can return the map upside down; "
    "here the sign is chosen so that the map correlates positively with the mean of the channels."
)


@register(
    MethodCard(
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
        strengths=("No gradients, no class, no extra pass", "Robust to noisy gradients"),
        weaknesses=("Not class-specific", "Sign of the component is arbitrary without a fix"),
        params=(Param("centre", False, "subtract each channel's mean before the decomposition, as pytorch-grad-cam "
                      "does (the paper does not)"),),
        class_specific=False,
    )
)
def eigencam(inputs: CamInputs, centre: bool) -> MethodOutput:
    """Projection of the activations on their first right singular vector."""
    raw, direction = first_principal_component(inputs.activations, centre)
    return MethodOutput(raw, direction)


@register(
    MethodCard(
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
        strengths=("Class-specific", "Less noisy than HiRes-CAM's raw product"),
        weaknesses=("Keeps a single pattern: a second object may vanish",),
    )
)
def eigengradcam(inputs: CamInputs) -> MethodOutput:
    """First principal component of gradient × activation."""
    raw, direction = first_principal_component(inputs.gradients * inputs.activations)
    return MethodOutput(raw, direction)
