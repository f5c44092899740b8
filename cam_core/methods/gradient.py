"""CAM and the Grad-CAM family: channel weights from the classifier or from the gradient of the class score."""

from __future__ import annotations

import torch

from cam_core.inputs.perturbed import PathSpec, path_inputs
from cam_core.lessons.steps import (
    FOCUS,
    SHOWN_CHANNELS,
    Heatmaps,
    Source,
    Step,
    activations_step,
    array,
    channel_tiles,
    channel_weighting,
    focus,
    gradients_step,
    input_pictures,
    num,
    signed,
    top,
    weighted_sum_step,
    weights_step,
)
from cam_core.methods.common import KEEPS_POSITIVE_GRADIENT, gradcam_weights, weighted_sum
from cam_core.registry import CamInputs, MethodCard, MethodOutput, Param, Peer, register

EPS = 1e-7
POOLING_HEAD = ("At a layer followed only by pooling and a linear head (mobilenet_v2's features.18) the gradient is "
                "the same at every position, so only the sign of the classifier's weights is left: a weaker second "
                "object's map falls on the strongest object (dog.jpg's pickup lands on the dog); one layer earlier, "
                "at features.17, it finds the pickup")
NORMALISE_ALPHA = Param("normalise_alpha", True, "divide α by its sum over the positions of positive gradient, as the "
                        "Grad-CAM++ authors' code does (off: the paper's equation as printed, as pytorch-grad-cam "
                        "computes it)")


CAM = MethodCard(
    id="cam",
    name="CAM",
    family="CAM",
    needs=frozenset({"class_weights"}),
    cost="instant",
    summary="The classifier's own weights for the class, applied to the last feature maps.",
    explanation=(
        "When a network ends in global average pooling followed by one linear layer, the class score is a "
        "weighted sum of the channels' mean activations. Moving the sum inside the average shows where the "
        "score comes from: weight each channel's map by the linear layer's weight for the class and add them "
        "up. No gradient and no extra pass are needed, but it only exists for that exact architecture and only "
        "at the last convolutional layer."
    ),
    formula=r"L^c = \sum_k w^c_k\,A^k \qquad y^c = \sum_k w^c_k\,\frac{1}{Z}\sum_{i,j} A^k_{ij} + b^c",
    paper="Zhou et al., Learning Deep Features for Discriminative Localization, CVPR 2016",
    definition="Zhou et al., CVPR 2016, eq. 2: Σₖ wᶜₖ Aᵏ with the linear classifier's weights",
    reference="paper",
    strengths=("Exact decomposition of the class score", "Free once the activations are known"),
    weaknesses=("Needs a global-average-pool → linear head", "Only the last convolutional layer"),
)


def cam(inputs: CamInputs) -> MethodOutput:
    """Class weights of the linear classifier × activations."""
    weights = inputs.class_weights[inputs.target]
    return MethodOutput(weighted_sum(weights, inputs.activations), weights)


GRADCAM = MethodCard(
    id="gradcam",
    name="Grad-CAM",
    family="Grad-CAM family",
    needs=frozenset({"gradients"}),
    cost="fast",
    summary="Channel weights = the spatial mean of the class score's gradient.",
    explanation=(
        "Grad-CAM replaces CAM's classifier weights with the gradient of the class score with respect to the "
        "feature maps, averaged over positions. The average says how much the score rises when the whole channel "
        "grows a little, so it works for any architecture and any layer. The weighted sum of the channels is "
        "passed through a ReLU to keep only the evidence for the class. Gradients are local and can be noisy or "
        "saturated, so the map may miss parts of the object or respond to several instances unevenly."
    ),
    formula=r"\alpha^c_k = \frac{1}{Z}\sum_{i,j}\frac{\partial y^c}{\partial A^k_{ij}} \qquad "
    r"L^c = \mathrm{ReLU}\Big(\sum_k \alpha^c_k A^k\Big)",
    paper="Selvaraju et al., Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization, "
    "ICCV 2017",
    definition="Selvaraju et al., ICCV 2017, eq. 1–2: α = mean of ∂yᶜ/∂A, ReLU(Σ α A)",
    reference="paper",
    peers=(Peer("pytorch-grad-cam", "GradCAM"), Peer("torchcam", "GradCAM")),
    ranking="Grad-CAM weight (for the class)",
    strengths=("Any CNN, any layer", "One backward pass per class"),
    weaknesses=("Gradients saturate and are noisy", "Coarse at the last layer's resolution"),
)


def gradcam(inputs: CamInputs) -> MethodOutput:
    """Spatially averaged gradients × activations."""
    weights = gradcam_weights(inputs.gradients)
    return MethodOutput(weighted_sum(weights, inputs.activations), weights)


GRADCAMPP = MethodCard(
    alike=KEEPS_POSITIVE_GRADIENT,
    id="gradcampp",
    name="Grad-CAM++",
    family="Grad-CAM family",
    needs=frozenset({"gradients"}),
    cost="fast",
    summary="Positive gradients weighted per position by α, so several instances of a class all count.",
    explanation=(
        "Grad-CAM++ weights each position's positive gradient by a coefficient α built from second and third "
        "derivatives of the class score. With the usual assumption that the score is an exponential of a linear "
        "function of the activations, those higher derivatives are powers of the first, so one backward pass "
        "suffices. As in the authors' code, α is divided by its sum over the positions where the gradient is "
        "positive, so a channel's weight is an α-weighted average of its positive gradient. Without that step "
        "(the paper's equation as printed, and pytorch-grad-cam) the weights hardly depend on the class at a "
        "layer followed by pooling and a linear head, and a class with a negative logit gets the map of the "
        "image's evidence rather than its own. Small objects and repeated objects get a fairer share than with "
        "a plain average."
    ),
    formula=r"\alpha^{kc}_{ij} = \frac{(g^k_{ij})^2}{2(g^k_{ij})^2 + \sum_{a,b}A^k_{ab}\,(g^k_{ij})^3} \qquad "
    r"w^c_k = \frac{\sum_{i,j}\alpha^{kc}_{ij}\,\mathrm{ReLU}(g^k_{ij})}{\sum_{i,j:\,g^k_{ij}>0}\alpha^{kc}_{ij}}"
    r" \qquad L^c = \mathrm{ReLU}\Big(\sum_k w^c_k A^k\Big)",
    paper="Chattopadhay et al., Grad-CAM++: Generalized Gradient-based Visual Explanations for Deep "
    "Convolutional Networks, WACV 2018",
    definition="Chattopadhay et al., WACV 2018, eq. 19 (exponential score) and the authors' code: α = g² / (2g² + "
    "ΣA·g³), normalised to sum to 1 over the positions of positive gradient",
    reference="authors' code",
    peers=(Peer("pytorch-grad-cam", "GradCAMPlusPlus", (('normalise_alpha', False),)),),
    ranking="Grad-CAM++ weight (for the class)",
    strengths=("Better coverage of several instances", "Same cost as Grad-CAM"),
    weaknesses=("Relies on the exponential-score assumption", "Still as noisy as the gradient", POOLING_HEAD),
    params=(NORMALISE_ALPHA,),
)


def gradcampp(inputs: CamInputs, normalise_alpha: bool) -> MethodOutput:
    """Grad-CAM++ weights from first-order gradients (exponential-score closed form)."""
    weights = gradcampp_weights(inputs.activations, *exponential_powers(inputs.gradients), normalise_alpha)
    return MethodOutput(weighted_sum(weights, inputs.activations), weights)


def exponential_powers(gradients: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Grad-CAM++'s first, second and third derivative terms under the exponential-score assumption: g, g², g³."""
    second = gradients.pow(2)
    return gradients, second, second * gradients


def gradcampp_weights(
    activations: torch.Tensor, first: torch.Tensor, second: torch.Tensor, third: torch.Tensor, normalise: bool
) -> torch.Tensor:
    """Grad-CAM++ channel weights from the (C, h, w) first, second and third derivative terms; with normalise, α
    divided by its sum over the positions of positive gradient (the authors' code)."""
    alpha, positive = gradcampp_alpha(activations, second, third), first.clamp(min=0)
    if normalise:
        total = torch.where(positive > 0, alpha, torch.zeros_like(alpha)).sum(dim=(1, 2), keepdim=True)
        alpha = alpha / torch.where(total != 0, total, torch.ones_like(total))
    return (alpha * positive).sum(dim=(1, 2))


def gradcampp_alpha(activations: torch.Tensor, second: torch.Tensor, third: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++'s (C, h, w) coefficients α from the second and third derivative terms (0 where the second is 0)."""
    channel_sums = activations.sum(dim=(1, 2), keepdim=True)
    alpha = second / (2 * second + channel_sums * third + EPS)
    return torch.where(second != 0, alpha, torch.zeros_like(alpha))


def gradient_powers(gradients: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first, second and third powers of (n, C, h, w) gradients, each averaged over the n inputs."""
    return gradients.mean(dim=0), gradients.pow(2).mean(dim=0), gradients.pow(3).mean(dim=0)


XGRADCAM = MethodCard(
    id="xgradcam",
    name="XGrad-CAM",
    family="Grad-CAM family",
    needs=frozenset({"gradients"}),
    cost="fast",
    summary="Gradients averaged with the activation itself as the weight, derived from two axioms.",
    explanation=(
        "XGrad-CAM asks for channel weights that make the map satisfy sensitivity (removing a feature changes "
        "the score by its share of the map) and conservation (the map adds up to the score) as closely as "
        "possible. The answer is a gradient average in which each position counts in proportion to its "
        "activation, so the weight follows where the channel actually fires."
    ),
    formula=r"w^c_k = \sum_{i,j}\frac{A^k_{ij}}{\sum_{a,b}A^k_{ab}}\,\frac{\partial y^c}{\partial A^k_{ij}} \qquad "
    r"L^c = \mathrm{ReLU}\Big(\sum_k w^c_k A^k\Big)",
    paper="Fu et al., Axiom-based Grad-CAM: Towards Accurate Visualization and Explanation of CNNs, BMVC 2020",
    definition="Fu et al., BMVC 2020, eq. 9: w = Σ (A / ΣA) ∂yᶜ/∂A",
    reference="paper",
    peers=(Peer("pytorch-grad-cam", "XGradCAM"),),
    ranking="XGrad-CAM weight (for the class)",
    strengths=("Principled weights", "Same cost as Grad-CAM"),
    weaknesses=("Unstable for channels whose activations sum to nearly zero",),
)


def xgradcam(inputs: CamInputs) -> MethodOutput:
    """Activation-weighted gradient average × activations."""
    weights = xgradcam_weights(inputs.activations, inputs.gradients)
    return MethodOutput(weighted_sum(weights, inputs.activations), weights)


def xgradcam_weights(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """XGrad-CAM's (C,) channel weights: the gradient averaged with the channel's own activations as weights."""
    channel_sums = activations.sum(dim=(1, 2), keepdim=True)
    return (gradients * activations / (channel_sums + EPS)).sum(dim=(1, 2))


HIRESCAM = MethodCard(
    id="hirescam",
    name="HiRes-CAM",
    family="Grad-CAM family",
    needs=frozenset({"gradients"}),
    cost="fast",
    summary="Gradient × activation at every position, summed over channels: no averaging.",
    explanation=(
        "Grad-CAM averages each channel's gradient before multiplying, which can move credit to positions the "
        "model did not use. HiRes-CAM multiplies gradient and activation position by position and only then "
        "sums over channels. For a global-average-pool → linear head the two agree; elsewhere HiRes-CAM is the "
        "faithful one, since its map sums to the first-order change of the score."
    ),
    formula=r"L^c = \mathrm{ReLU}\Big(\sum_k \frac{\partial y^c}{\partial A^k} \odot A^k\Big)",
    paper="Draelos & Carin, Use HiResCAM instead of Grad-CAM for faithful explanations of convolutional neural "
    "networks, 2020",
    definition="Draelos & Carin 2020: ReLU(Σₖ ∂yᶜ/∂Aᵏ ⊙ Aᵏ)",
    reference="paper",
    peers=(Peer("pytorch-grad-cam", "HiResCAM"),),
    strengths=("Provably reflects the positions the score used", "Same cost as Grad-CAM"),
    weaknesses=("No per-channel weights to inspect", "Noisier than averaged maps"),
)


def hirescam(inputs: CamInputs) -> MethodOutput:
    """Element-wise gradient × activation, summed over channels."""
    return MethodOutput(gradient_map(inputs.gradients, inputs.activations))


def gradient_map(gradients: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
    """Σ_k gradient_k ⊙ activation_k: the (h, w) map of gradient × activation position by position."""
    return (gradients * activations).sum(dim=0)


SMOOTHGRADCAMPP = MethodCard(
    alike=KEEPS_POSITIVE_GRADIENT,
    id="smoothgradcampp",
    name="Smooth Grad-CAM++",
    family="Grad-CAM family",
    needs=frozenset({"path"}),
    cost="fast",
    summary="Grad-CAM++ with its derivatives averaged over noisy copies of the image (SmoothGrad).",
    explanation=(
        "Gradients of a deep network jump around from pixel to pixel: a tiny change of the input can move them a "
        "lot. Smooth Grad-CAM++ borrows SmoothGrad's remedy. It adds Gaussian noise to the image n times, takes "
        "the gradient at the layer for each noisy copy, and averages the first, second and third powers of the "
        "gradient over the copies before forming Grad-CAM++'s α coefficients and channel weights. The weights "
        "are then applied to the clean image's activations. More copies give a steadier map at n passes' cost."
    ),
    formula=r"D_p = \frac{1}{n}\sum_{s=1}^{n}\Big(\frac{\partial y^c}{\partial A^k}(x+\varepsilon_s)\Big)^p"
    r"\quad \varepsilon_s\sim\mathcal{N}(0,\sigma^2) \qquad "
    r"\alpha^{kc}_{ij} = \frac{D_{2,ij}}{2D_{2,ij} + \sum_{a,b}A^k_{ab}\,D_{3,ij}} \qquad "
    r"w^c_k = \sum_{i,j}\alpha^{kc}_{ij}\,\mathrm{ReLU}(D_{1,ij}) \qquad "
    r"L^c = \mathrm{ReLU}\Big(\sum_k w^c_k A^k\Big)",
    paper="Omeiza et al., Smooth Grad-CAM++: An Enhanced Inference Level Visualization Technique for Deep "
    "Convolutional Neural Network Models, 2019",
    definition="Omeiza et al. 2019: Grad-CAM++ with the gradient powers averaged over noisy copies",
    differs="α normalised as Grad-CAM++'s default (the authors' code of Grad-CAM++)",
    reference="hand-computed tensors",
    peers=(Peer("torchcam", "SmoothGradCAMpp"),),
    strengths=("Steadier weights than Grad-CAM++ on the same image", "Any CNN, any layer"),
    weaknesses=(
        "n forward and backward passes",
        "Depends on the noise level and the random draw",
        "Same as Grad-CAM++ at a layer followed only by pooling and a linear head (the gradient there does not "
        "depend on the input): pick an inner layer",
        POOLING_HEAD,
    ),
    params=(
        Param("samples", 8, "how many noisy copies are averaged", minimum=1, maximum=64, read_by="input"),
        Param("sigma", 0.15, "noise standard deviation as a fraction of the input's value range",
              minimum=0.0, maximum=1.0, read_by="input"),
        Param("seed", 0, "the random draw (the same seed gives the same map)", minimum=0, maximum=2**31 - 1,
              read_by="input"),
        NORMALISE_ALPHA,
    ),
    path_spec=lambda layer, params: PathSpec(
        "noise", layer, int(params["samples"]), float(params["sigma"]), int(params["seed"])
    ),
)


def smoothgradcampp(inputs: CamInputs, normalise_alpha: bool) -> MethodOutput:
    """Grad-CAM++ weights from noise-averaged first, second and third powers of the gradient."""
    weights = gradcampp_weights(inputs.activations, *gradient_powers(inputs.path.gradients), normalise_alpha)
    return MethodOutput(weighted_sum(weights, inputs.activations), weights)


INTGRADCAM = MethodCard(
    id="intgradcam",
    name="Integrated Grad-CAM",
    family="Grad-CAM family",
    needs=frozenset({"path"}),
    cost="fast",
    summary="Grad-CAM's gradient integrated along a path from a blurred copy of the image to the image.",
    explanation=(
        "Grad-CAM looks at the gradient at the image only, where a saturated network may already be flat. "
        "Integrated Grad-CAM follows integrated gradients instead: it walks in m steps from a baseline, here a "
        "blurred copy of the image that keeps the colours but loses the detail, to the image itself, and "
        "averages Grad-CAM's channel weights over the walk. The weights then multiply how much each channel "
        "changed between the baseline and the image, so features the blur already had do not take credit."
    ),
    formula=r"x_m = x' + \tfrac{m}{M}(x - x') \qquad "
    r"w^c_k = \frac{1}{M}\sum_{m=1}^{M}\frac{1}{Z}\sum_{i,j}\frac{\partial y^c}{\partial A^k_{ij}}(x_m)"
    r" \qquad L^c = \mathrm{ReLU}\Big(\sum_k w^c_k\,\big(A^k(x) - A^k(x')\big)\Big)",
    paper="Sattarzadeh et al., Integrated Grad-CAM: Sensitivity-Aware Visual Explanation of Deep Convolutional "
    "Networks via Integrated Gradient-Based Scoring, ICASSP 2021",
    definition="Sattarzadeh et al., ICASSP 2021: Grad-CAM weights integrated along a path from a baseline, × the "
    "activations' change",
    differs="the baseline is a blurred copy (the paper leaves it open)",
    reference="hand-computed tensors",
    strengths=("Less affected by saturated gradients", "Credit relative to a meaningful baseline"),
    weaknesses=(
        "m forward and backward passes",
        "The map depends on the choice of baseline",
        "At a layer followed only by pooling and a linear head the gradient is constant, so the weights are "
        "Grad-CAM's (only the baseline subtraction differs): pick an inner layer",
    ),
    params=(
        Param("steps", 16, "points on the path from the blurred copy to the image", minimum=1, maximum=64,
              read_by="input"),
        Param("blur", 12.0, "the baseline's Gaussian blur, in pixels of the model input", minimum=0.0,
              maximum=30.0, read_by="input"),
    ),
    path_spec=lambda layer, params: PathSpec("blur", layer, int(params["steps"]), float(params["blur"])),
)


def intgradcam(inputs: CamInputs) -> MethodOutput:
    """Path-averaged Grad-CAM weights × the activations' change from the baseline."""
    weights = path_weights(inputs.path.gradients)
    return MethodOutput(weighted_sum(weights, inputs.activations - inputs.path.baseline), weights)


def path_weights(gradients: torch.Tensor) -> torch.Tensor:
    """Grad-CAM's weights averaged along a path: the (n, C, h, w) gradients' mean over the points and positions."""
    return gradients.mean(dim=(0, 2, 3))




def mean_gradient_step(weights: torch.Tensor, positions: str) -> Step:
    return weights_step(
        weights, "The channel weights: the mean gradient",
        f"Grad-CAM averages each channel's gradient over its {positions} positions: how much the score rises when "
        "the whole channel grows a little.",
        f"the mean of each channel's gradient over its {positions} positions",
    )


def cam_lesson(source: Source) -> list[Step]:
    weights = source.weights
    step = weights_step(
        weights, "The classifier's weights",
        f"CAM needs no gradient: the linear layer after the global average pooling already holds one weight per "
        f"channel for “{source.label}”; the class score is these weights times the channels' means, plus a bias.",
        "the linear classifier's own weights for the class",
    )
    return channel_weighting(source, step, gradients=False)


def gradcam_lesson(source: Source) -> list[Step]:
    positions = "×".join(map(str, source.gradients().shape[1:]))
    return channel_weighting(source, mean_gradient_step(source.weights, positions))


def gradcampp_lesson(source: Source) -> list[Step]:
    acts, weights = source.activations(), source.weights
    _, second, third = exponential_powers(source.gradients())
    alpha = gradcampp_alpha(acts, second, third)
    normalise = bool(source.params["normalise_alpha"])
    best = int(torch.argmax(weights))
    step = weights_step(
        weights, "The channel weights: α-weighted positive gradients",
        "Grad-CAM++ gives each position its own coefficient α = g² / (2g² + ΣA·g³), where ΣA is the channel's total "
        "activation; assuming the score is the exponential of a linear function, the second and third derivatives "
        "are these powers of the gradient g. The weight is Σ α · ReLU(g) over the positions"
        + (", divided by the sum of α where g > 0 (the authors' code), " if normalise else ", ")
        + "so a channel that fires "
        f"in a small spot is not diluted by the rest. Channel {best}: ΣA = {num(acts[best].sum())}, α up to "
        f"{num(alpha[best].max())}.",
        "the positive gradient weighted by α at each position, summed",
        Heatmaps(channel_tiles(alpha, focus(weights, acts), "α, channel")),
    )
    return channel_weighting(source, step)


def xgradcam_lesson(source: Source) -> list[Step]:
    step = weights_step(
        source.weights, "The channel weights: activation-weighted gradients",
        "XGrad-CAM averages each channel's gradient with the channel's own activations as weights (Σ A·g / Σ A): "
        "positions where the channel fires count more, which makes the map add up to the score as closely as possible.",
        "the gradient averaged with the activations as weights",
    )
    return channel_weighting(source, step)


def hirescam_lesson(source: Source) -> list[Step]:
    acts, grads, raw = source.activations(), source.gradients(), source.raw
    product = grads * acts
    channels = top(product.sum(dim=(1, 2)), SHOWN_CHANNELS)
    same = torch.allclose(grads, grads.mean(dim=(1, 2), keepdim=True).expand_as(grads))
    text = (
        "HiRes-CAM does not average the gradient over the positions: each activation is multiplied by the gradient at "
        "its own position, so credit stays where the score used it (an average can move it to places the model did "
        "not look at)."
    )
    if same:
        text += (" Here every position of a channel has the same gradient, so averaging first changes nothing: at this "
                 "layer HiRes-CAM's map is exactly Grad-CAM's. Pick a layer further from the head to see them differ.")
    return [
        activations_step(source, channels, "the ones whose gradient × activation adds the most"),
        gradients_step(source, channels),
        Step("product", "Gradient × activation, position by position", text,
             "the gradient times the activation at each position, no averaging",
             (Heatmaps(channel_tiles(product, channels), signed(product)),), array(product)),
        Step("channel sum", "The sum over channels",
             f"Adding the {acts.shape[0]} products gives the map, from {num(raw.min())} to {num(raw.max())}: its sum "
             "is the first-order change of the score.", "the products added over the channels",
             (Heatmaps((("Σ g ⊙ A", array(raw)),), True),), array(raw)),
    ]


def smoothgradcampp_lesson(source: Source) -> list[Step]:
    acts, weights, raw = source.activations(), source.weights, source.raw
    spec = source.card.path_spec(source.layer, source.params)
    grads = source.analysis.path(spec, source.target).gradients
    first, second, third = gradient_powers(grads)
    channels = focus(weights, acts)
    spread = float(grads.std(dim=0).max() / grads.abs().max().clamp(min=1e-30)) if grads.shape[0] > 1 else 0.0
    copies = path_inputs(source.analysis.input, spec)[:3]
    text = (
        f"The image gets {spec.count} copies with Gaussian noise (σ = {num(spec.sigma)} × the input's range, seed "
        f"{spec.seed}); one batched pass and one backward give the gradient at each copy, and its first, second and "
        f"third powers are averaged over the copies. The copies' gradients differ by up to {spread:.1%} of the largest."
    )
    if spread < 1e-4:
        text += (" They are the same here: at a layer followed only by pooling and a linear head the gradient does not "
                 "depend on the input, so Smooth Grad-CAM++ is Grad-CAM++ (pick an inner layer to see the smoothing).")
    gradients = Step("gradients", f"Gradients over {spec.count} noisy copies", text,
                     "the gradient of the class score at every activation, averaged over noisy copies",
                     (input_pictures(source, copies, [f"noisy copy {i + 1}" for i in range(len(copies))]),
                      Heatmaps(channel_tiles(first, channels, "mean gradient, channel"), signed(first))),
                     array(first))
    step = weights_step(
        weights, "The channel weights: α from the averaged powers",
        "As in Grad-CAM++, with the averaged powers: α = D₂ / (2D₂ + ΣA·D₃) and the weight is Σ α · ReLU(D₁).",
        "the positive gradient weighted by α at each position, summed",
        Heatmaps(channel_tiles(gradcampp_alpha(acts, second, third), channels, "α, channel")),
    )
    return [activations_step(source, channels, FOCUS), gradients, step, weighted_sum_step(weights, acts, raw)]


def intgradcam_lesson(source: Source) -> list[Step]:
    acts, weights, raw = source.activations(), source.weights, source.raw
    spec = source.card.path_spec(source.layer, source.params)
    path = source.analysis.path(spec, source.target)
    change = acts - path.baseline
    channels = focus(weights, change)
    points = path_inputs(source.analysis.input, spec)
    picked = [0, (spec.count + 1) // 2, spec.count]
    mean = path.gradients.mean(dim=0)
    gradients = Step(
        "gradients", f"Gradients along {spec.count} steps from a blurred copy",
        f"The baseline is the image blurred by {num(spec.sigma)} pixels: its colours without its detail. {spec.count} "
        "evenly spaced points lead from it to the image; one batched pass and one backward give the gradient at "
        "each point. Shown: the baseline, the middle and the image, and the gradient averaged along the path.",
        "the gradient of the class score at every activation, averaged along a path from a blurred copy",
        (input_pictures(source, points[picked], ["baseline", "half way", "the image"]),
         Heatmaps(channel_tiles(mean, channels, "mean gradient, channel"), signed(mean))),
        array(mean),
    )
    step = weights_step(weights, "The channel weights: the path-averaged gradient",
                        "Grad-CAM's weights (mean gradient over the positions), averaged over the points of the path.",
                        "the mean gradient over positions and path points")
    baseline = Step(
        "baseline", "The change from the blurred copy",
        f"The weights multiply how much each channel changed between the blurred copy and the image, A(x) − A(x'), "
        f"not the activations themselves: what the blur already had takes no credit. The change runs from "
        f"{num(change.min())} to {num(change.max())}.",
        "the activations minus those of the blurred copy",
        (Heatmaps(channel_tiles(change, channels), signed(change)),), array(change),
    )
    return [activations_step(source, channels, "the ones whose weighted change adds the most to the map"), gradients,
            step, baseline, weighted_sum_step(weights, change, raw, how="Σₖ wₖ · (Aₖ(x) − Aₖ(x'))")]


register(CAM, cam, cam_lesson)
register(GRADCAM, gradcam, gradcam_lesson)
register(GRADCAMPP, gradcampp, gradcampp_lesson)
register(XGRADCAM, xgradcam, xgradcam_lesson)
register(HIRESCAM, hirescam, hirescam_lesson)
register(SMOOTHGRADCAMPP, smoothgradcampp, smoothgradcampp_lesson)
register(INTGRADCAM, intgradcam, intgradcam_lesson)
