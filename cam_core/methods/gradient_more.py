"""More gradient methods: FullGrad (input and bias gradients of every layer), Finer-CAM (Grad-CAM of the difference
from the most similar classes) and ShapleyCAM (Grad-CAM weights with a second-order term)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cam_core.errors import CamError
from cam_core.inputs.gradient_terms import SCORES, FullGradients
from cam_core.lessons.steps import (
    FOCUS,
    SHOWN_CHANNELS,
    Bars,
    Heatmaps,
    Source,
    Step,
    activations_step,
    array,
    channel_tiles,
    focus,
    gradients_step,
    num,
    shape,
    signed,
    weighted_sum_step,
    weights_step,
)
from cam_core.methods.common import gradcam_weights, weighted_sum
from cam_core.registry import CamInputs, MethodCard, MethodOutput, Param, Peer, register
from cam_core.scaling import is_blank

# --- FullGrad -------------------------------------------------------------------------------------------------------

SCALINGS = {
    "layer": "|·| min-max scaled over each layer's whole tensor, then summed over its channels (the authors' code)",
    "channel": "|·| min-max scaled channel by channel, then summed (pytorch-grad-cam)",
}

FULLGRAD = MethodCard(
    id="fullgrad",
    name="FullGrad",
    family="Input gradients",
    needs=frozenset({"full_gradients"}),
    cost="fast",
    summary="Input-gradient × input plus, for every layer with a bias, bias-gradient × bias: all of the score.",
    explanation=(
        "A network's output is not only a function of the input pixels: every layer adds a bias (a convolution's "
        "own, or the shift an eval-mode batch norm applies), and for a ReLU network the class score is exactly the "
        "input-gradient times the input plus, for every bias, its gradient times the bias. FullGrad keeps both "
        "parts. The input part, ∇ₓy ⊙ x, is sharp; each layer's bias part, ∇_z y ⊙ b at that layer's output z, is "
        "a map at the layer's own resolution. Every part is made non-negative (absolute value) and scaled to [0, 1], "
        "the layers' maps are upsampled to the input and everything is added up. The result is a full-resolution "
        "map that, unlike an input gradient, also sees what the deep layers contribute. It takes one pass that keeps "
        "its graph down to the input and one backward per class."
    ),
    formula=r"S^c = \psi\big(\nabla_x y^c \odot x\big) + \sum_{l}\sum_{k} \psi\big(\nabla_{z_l} y^c \odot b_l\big)_k"
    r"\qquad \psi(t) = \mathrm{up}\Big(\frac{|t| - \min|t|}{\max|t| - \min|t|}\Big) \qquad "
    r"b_{\mathrm{BN}} = \beta - \frac{\mu\gamma}{\sqrt{\sigma^2 + \varepsilon}}",
    paper="Srinivas & Fleuret, Full-Gradient Representation for Neural Network Visualization, NeurIPS 2019 "
    "(post-processing as in the authors' code, idiap/fullgrad-saliency)",
    definition="Srinivas & Fleuret, NeurIPS 2019, eq. 5 and the authors' code: ψ(∇ₓy ⊙ x) + Σ_l Σ_c ψ(∇_z y ⊙ b), "
    "ψ = absolute value, min-max over each layer's tensor, bilinear upsampling with aligned corners",
    differs="the authors' min-max adds 1e-6 to the range; ours scales exactly (cam_core.scaling.min_max)",
    reference="authors' code",
    peers=(Peer("pytorch-grad-cam", "FullGrad", (("scaling", "channel"), ("align_corners", False))),),
    strengths=("Full input resolution, with the deep layers' share", "One pass and one backward per class",
               "The parts add up to the score for a ReLU network (completeness)"),
    weaknesses=(
        "Absolute values: it shows where the score is sensitive, not whether it is evidence for or against",
        "Saturating activations (ReLU6's cap, GELU) have implicit biases it does not count, so completeness is "
        "only approximate",
        "Keeps the graph down to the input: more memory than a layer's gradient",
    ),
    params=(
        Param("scaling", "layer", "how each part is made comparable: " + "; ".join(
            f"{name}: {meaning}" for name, meaning in SCALINGS.items()), choices=tuple(SCALINGS)),
        Param("align_corners", True, "upsample the layers' maps with aligned corners, as the authors' code does (off: "
              "cell-centred, as pytorch-grad-cam's cv2.resize)"),
    ),
    signed=False,
    resolution="input",
    in_default_grid=False,
)


def fullgrad(inputs: CamInputs, scaling: str, align_corners: bool) -> MethodOutput:
    """ψ(input gradient × input) plus every biased layer's ψ(bias gradient × bias), upsampled to the input: the
    layers' maps are added per resolution and each sum upsampled once (bilinear resizing is linear, so the sum is the
    same)."""
    full = inputs.full_gradients
    size = tuple(full.input.shape[-2:])
    by_size: dict[tuple[int, int], torch.Tensor] = {}
    for term in bias_terms(full, scaling):
        key = tuple(term.shape)
        by_size[key] = by_size[key] + term if key in by_size else term
    parts = [input_term(full, scaling), *(resize(total, size, align_corners) for total in by_size.values())]
    return MethodOutput(torch.stack(parts).sum(dim=0))


def fullgrad_parts(full: FullGradients, scaling: str, align_corners: bool) -> list[torch.Tensor]:
    """The (H, W) maps FullGrad adds up: the input part first, then each biased layer's, upsampled to the input."""
    size = tuple(full.input.shape[-2:])
    return [input_term(full, scaling), *(resize(term, size, align_corners) for term in bias_terms(full, scaling))]


def input_term(full: FullGradients, scaling: str) -> torch.Tensor:
    """ψ(∇ₓy ⊙ x), (H, W)."""
    return psi(full.input_gradient * full.input, scaling)


def bias_terms(full: FullGradients, scaling: str) -> list[torch.Tensor]:
    """Each biased layer's ψ(∇_z y ⊙ b) at the layer's own (h, w) resolution, in the order the layers ran."""
    return [psi(item.gradient * item.bias.to(item.gradient.dtype)[:, None, None], scaling) for item in full.layers]


def psi(term: torch.Tensor, scaling: str) -> torch.Tensor:
    """FullGrad's post-processing of a (C, h, w) term, summed over its channels: the absolute value, min-max scaled
    over the whole tensor ("layer") or channel by channel ("channel"), blank parts zero (cam_core.scaling's rule).
    Summed as Σ_c (|t_c| − low)/span = (Σ_c |t_c| − C·low)/span, so no scaled copy of the term is made."""
    magnitude = term.abs()
    if scaling == "layer":
        low, high = torch.aminmax(magnitude)
        scale = torch.where(is_blank(low, high), 0.0, 1.0 / (high - low))
        return (magnitude.sum(dim=0) - magnitude.shape[0] * low) * scale
    low, high = magnitude.amin(dim=(1, 2)), magnitude.amax(dim=(1, 2))
    scale = torch.where(is_blank(low, high), 0.0, 1.0 / (high - low))
    return (magnitude * scale[:, None, None]).sum(dim=0) - (low * scale).sum()


def resize(values: torch.Tensor, size: tuple[int, int], align_corners: bool) -> torch.Tensor:
    """An (h, w) map bilinearly resized to size, with aligned corners or cell-centred."""
    if tuple(values.shape) == tuple(size):
        return values
    return F.interpolate(values[None, None], size=size, mode="bilinear", align_corners=align_corners)[0, 0]


# --- Finer-CAM ------------------------------------------------------------------------------------------------------

WEIGHTINGS = {
    "probability": "Σᵢ pᵢ(y_c − α yᵢ) / Σᵢ pᵢ, the comparisons weighted by their probabilities and differentiated "
    "in full, the probabilities too (the authors' code)",
    "mean": "y_c − α · the mean of the compared logits (torchcam)",
}


def finer_references(logits: torch.Tensor, target: int, params: dict) -> tuple[int, ...]:
    """The classes Finer-CAM compares target with: those listed in params["compare"] (comma-separated indices), or
    else the params["references"] classes whose logits are nearest target's (ties: lower index first)."""
    text = str(params["compare"]).strip()
    classes = logits.numel()
    if not text:
        distance = (logits.double() - float(logits[target])).abs()
        distance[target] = float("inf")
        order = torch.argsort(distance, stable=True)
        return tuple(int(c) for c in order[: min(int(params["references"]), classes - 1)])
    found = []
    for piece in text.split(","):
        piece = piece.strip()
        if not piece.isdigit():
            raise CamError(f"finercam: compare must list class indices separated by commas, such as 282, 285; "
                           f"{piece!r} is not one")
        index = int(piece)
        if index >= classes:
            raise CamError(f"finercam: class {index} in compare is out of range 0..{classes - 1}")
        if index == target:
            raise CamError(f"finercam: compare lists the target class {target} itself")
        if index in found:
            raise CamError(f"finercam: compare lists class {index} twice")
        found.append(index)
    return tuple(found)


FINERCAM = MethodCard(
    id="finercam",
    name="Finer-CAM",
    family="Grad-CAM family",
    needs=frozenset({"gradients", "compared_gradients"}),
    cost="fast",
    summary="Grad-CAM of the class's lead over its look-alikes: what tells it apart from the most similar classes.",
    explanation=(
        "A Grad-CAM map of “tabby cat” lights up the whole cat, including everything a tiger cat or an Egyptian cat "
        "would share. Finer-CAM explains a difference instead: the target's logit minus α times the logits of the "
        "classes the network finds most similar to it (by default the three whose logits are nearest the target's). "
        "Shared evidence cancels, so the map keeps what sets the target apart. As in the authors' code, each "
        "comparison is weighted by the compared class's probability, and the gradient is that of the whole "
        "weighted score; since gradients are linear, it is built from the per-class gradients, so every class's "
        "backward is done once and shared. α = 0 gives Grad-CAM back; you can also name the classes to compare with."
    ),
    formula=r"T = \frac{\sum_i p_i\,(y^c - \alpha\,y^{d_i})}{\sum_i p_i} \qquad "
    r"w_k = \frac{1}{Z}\sum_{i,j}\frac{\partial T}{\partial A^k_{ij}} \qquad L = \mathrm{ReLU}\Big(\sum_k w_k A^k\Big)",
    paper="Zhang et al., Finer-CAM: Spotting the Difference Reveals Finer Details for Visual Explanation, CVPR 2025 "
    "(objective as in the authors' code, Imageomics/Finer-CAM)",
    definition="Zhang et al., CVPR 2025 and the authors' code: Grad-CAM of Σᵢ pᵢ(y_c − α y_dᵢ)/Σᵢ pᵢ over the 3 "
    "classes with the nearest logits, α = 1",
    differs="the authors' code adds 1e-9 to Σ pᵢ; ours divides exactly, which differs where the compared classes' "
    "probabilities are below about 1e-9 (classes with the lowest logits)",
    reference="authors' code",
    peers=(Peer("pytorch-grad-cam", "FinerCAM"),
           Peer("torchcam", "FinerCAM", (("weighting", "mean"), ("alpha", 0.6)))),
    ranking="Finer-CAM weight (for the class against its look-alikes)",
    strengths=("Suppresses what the class shares with similar classes", "Costs one backward per class involved, "
               "each shared"),
    weaknesses=(
        "The map depends on which classes are compared (automatic: the nearest logits)",
        "A difference can be small where the classes hardly differ: the map may be faint or noisy",
    ),
    params=(
        Param("alpha", 1.0, "comparison strength α: 0 is Grad-CAM, 1 subtracts the compared logits fully",
              minimum=0.0, maximum=2.0),
        Param("references", 3, "how many similar classes are compared (automatic choice: the nearest logits)",
              minimum=1, maximum=10, read_by="input"),
        Param("compare", "", "class indices to compare with, separated by commas (empty: the nearest logits)",
              read_by="input"),
        Param("weighting", "probability", "how the comparisons are combined: " + "; ".join(
            f"{name}: {meaning}" for name, meaning in WEIGHTINGS.items()), choices=tuple(WEIGHTINGS)),
    ),
    compared_classes=finer_references,
    in_default_grid=False,
)


def finercam(inputs: CamInputs, alpha: float, weighting: str) -> MethodOutput:
    """Grad-CAM weights of the target's difference from its compared classes × activations."""
    compared = list(inputs.compared)
    gradient = finer_gradient(inputs.gradients, inputs.compared_gradients, inputs.logits[inputs.target],
                              inputs.logits[compared], float(alpha), weighting)
    weights = gradcam_weights(gradient)
    return MethodOutput(weighted_sum(weights, inputs.activations), weights)


def finer_gradient(target_gradient: torch.Tensor, compared_gradients: torch.Tensor, target_logit: torch.Tensor,
                   compared_logits: torch.Tensor, alpha: float, weighting: str) -> torch.Tensor:
    """The (C, h, w) gradient of Finer-CAM's objective from the target's gradient, the (n, C, h, w) gradients of the
    compared classes and their logits. "mean": g_c − α ḡ. "probability": the objective Σ wᵢ mᵢ with wᵢ = pᵢ/Σp (a
    softmax over the compared logits) and mᵢ = y_c − α yᵢ; its gradient is g_c − α Σ wᵢ gᵢ + Σ wᵢ (mᵢ − m̄) gᵢ, the
    last term from the weights' own gradient."""
    if weighting == "mean":
        return target_gradient - alpha * compared_gradients.mean(dim=0)
    weights = torch.softmax(compared_logits.double(), dim=0)
    margins = target_logit.double() - alpha * compared_logits.double()
    spread = weights * (margins - (weights * margins).sum())
    coefficients = (spread - alpha * weights).to(compared_gradients.dtype)
    return target_gradient + torch.einsum("n,nkhw->khw", coefficients, compared_gradients)


# --- ShapleyCAM -----------------------------------------------------------------------------------------------------

SCORE_MEANINGS = {
    "ReST": "Cai's residual softmax target score, y_c + log softmax(y)_c: the logit and the log-probability together "
    "(the paper's choice)",
    "logit": "the class logit (its Hessian is zero where only a linear head follows the layer)",
}

SHAPLEYCAM = MethodCard(
    id="shapleycam",
    name="ShapleyCAM",
    family="Grad-CAM family",
    needs=frozenset({"second_order"}),
    cost="fast",
    summary="Grad-CAM weights plus a second-order term (a Hessian-vector product): a Shapley-value estimate.",
    explanation=(
        "Grad-CAM's weight is the first-order change of the score when a channel grows. ShapleyCAM reads the "
        "channel weights as estimates of each channel's Shapley value, its average contribution over all orders in "
        "which the channels could be switched on, and a second-order Taylor expansion of the score gives that "
        "estimate as the gradient minus half the Hessian times the activations, g − ½·H·A, averaged over the "
        "positions. H·A costs one more backward through the first one (a Hessian-vector product, never the Hessian "
        "itself). The score is, as in the paper, the ReST score y_c + log p_c, which mixes the logit and the "
        "probability: the logit alone ignores the other classes and has no curvature behind a linear head (at "
        "mobilenet_v2's last layer its H·A is zero, so ShapleyCAM on the logit is Grad-CAM there)."
    ),
    formula=r"u^c = y^c + \log\mathrm{softmax}(y)_c \qquad "
    r"w^c_k = \frac{1}{Z}\sum_{i,j}\Big(\frac{\partial u^c}{\partial A^k_{ij}} - "
    r"\tfrac{1}{2}\big(\nabla^2_{A} u^c\,A\big)^k_{ij}\Big) \qquad L^c = \mathrm{ReLU}\Big(\sum_k w^c_k A^k\Big)",
    paper="Cai, CAMs as Shapley Value-based Explainers, The Visual Computer 2025 (arXiv 2501.06261)",
    definition="Cai 2025, arXiv 2501.06261: w = mean over positions of (∇u − ½ ∇²u · A), with the ReST score "
    "u = y_c + log p_c",
    reference="paper",
    peers=(Peer("pytorch-grad-cam", "ShapleyCAM"),),
    ranking="ShapleyCAM weight (for the class)",
    strengths=("Accounts for how the gradient itself changes with the activations", "Two backwards per class"),
    weaknesses=(
        "With the logit behind a linear head the second-order term vanishes (Grad-CAM again)",
        "ReST reads the probabilities, so a class far below the top gets mostly the top classes' evidence against it",
    ),
    params=(
        Param("score", "ReST", "the class score explained: " + "; ".join(
            f"{name}: {meaning}" for name, meaning in SCORE_MEANINGS.items()), choices=tuple(SCORES),
              read_by="input"),
    ),
    in_default_grid=False,
)


def shapleycam(inputs: CamInputs) -> MethodOutput:
    """Mean of (gradient − ½ Hessian-vector product) per channel × activations."""
    second = inputs.second_order
    weights = shapley_weights(second.gradients, second.hessian_product)
    return MethodOutput(weighted_sum(weights, inputs.activations), weights)


def shapley_weights(gradients: torch.Tensor, hessian_product: torch.Tensor) -> torch.Tensor:
    """ShapleyCAM's (C,) channel weights: the mean over positions of g − ½·H·A."""
    return gradcam_weights(gradients - 0.5 * hessian_product)


# --- lessons --------------------------------------------------------------------------------------------------------


def fullgrad_lesson(source: Source) -> list[Step]:
    full = source.analysis.full_gradients(source.target)
    scaling, corners = source.params["scaling"], bool(source.params["align_corners"])
    parts = fullgrad_parts(full, scaling, corners)
    product = full.input_gradient * full.input
    shares = torch.stack([part.sum() for part in parts[1:]]) if full.layers else torch.zeros(0)
    shown = sorted(np.argsort(-array(shares), kind="stable")[:SHOWN_CHANNELS].tolist()) if full.layers else []
    biased = full.layers
    inputs = Step(
        "input gradients", "Input-gradient × input",
        f"One pass keeps its graph down to the {shape(full.input)} model input; one backward from the score of "
        f"“{source.label}” gives the gradient at every pixel. Times the input it runs from {num(product.min())} to "
        f"{num(product.max())}. Its absolute value, scaled to [0, 1] "
        f"{'over all three colours together' if scaling == 'layer' else 'colour by colour'} and added over the "
        f"colours, is the first part of the map (0 to {num(parts[0].max())}).",
        "the input gradient times the input, |·| scaled to [0, 1], added over the colours",
        (Heatmaps((("∇ₓy ⊙ x, red", array(product[0])), ("∇ₓy ⊙ x, green", array(product[1])),
                   ("∇ₓy ⊙ x, blue", array(product[2]))), True),
         Heatmaps((("ψ(∇ₓy ⊙ x)", array(parts[0])),))),
        array(parts[0]),
    )
    tiles = tuple((f"{biased[i].layer} ({shape(biased[i].gradient)})", array(parts[i + 1])) for i in shown)
    layers = Step(
        "bias gradients", "Bias-gradient × bias at every layer",
        f"The same backward gives the gradient at the output of each of the {len(biased)} layers with a bias (a "
        "convolution's own, or an eval-mode batch norm's implicit β − μγ/√(σ² + ε)). Times the bias it is a map per "
        "channel at the layer's own resolution; its absolute value is scaled to [0, 1] "
        f"{'over the whole layer' if scaling == 'layer' else 'channel by channel'}, added over the channels and "
        f"upsampled to the input{' with aligned corners' if corners else ''}. Shown: the {len(tiles)} layers that add "
        "the most.",
        "each biased layer's bias gradient times its bias, |·| scaled, added over channels, upsampled",
        (Heatmaps(tiles or (("no biased layer", array(torch.zeros_like(parts[0]))),)),
         Bars("what each layer adds (sum of its upsampled map)", "layer", tuple(range(len(biased))), "sum",
              array(shares))),
        array(shares),
    )
    total = Step(
        "fusion", "Everything added up",
        f"The input part and the {len(biased)} layers' parts are added: a {shape(source.raw)} map from "
        f"{num(source.raw.min())} to {num(source.raw.max())}. The input part keeps the sharp edges, the layers' "
        f"parts say where the deep layers took their evidence from.",
        "the input part plus every layer's bias part",
        (Heatmaps((("input part", array(parts[0])), ("the layers' parts", array(source.raw - parts[0])),
                   ("the sum", array(source.raw)))),),
        array(source.raw),
    )
    return [inputs, layers, total]


def finercam_lesson(source: Source) -> list[Step]:
    acts, weights, raw = source.activations(), source.weights, source.raw
    analysis, labels = source.analysis, source.analysis.explainer.labels
    compared = list(source.card.compared_classes(analysis.logits, source.target, source.params))
    alpha, weighting = float(source.params["alpha"]), source.params["weighting"]
    logits = analysis.logits
    chosen = ("the classes you listed" if str(source.params["compare"]).strip()
              else f"the {len(compared)} classes whose logits are nearest")
    shares = torch.softmax(logits[compared].double(), dim=0)
    share_text = ", ".join(f"{c} “{labels[c]}” ({num(logits[c])}, weight {num(w)})"
                           for c, w in zip(compared, shares, strict=True))
    comparison = Step(
        "comparison", "The classes it is compared with",
        f"“{source.label}” has logit {num(logits[source.target])}. It is compared with {chosen}: {share_text}. "
        + ("Each comparison y_c − α yᵢ counts by the compared class's share of their probabilities (a softmax over "
           "their logits, the weights above)." if weighting == "probability" else
           "The compared logits are averaged."),
        "the target's logit against the logits of the compared classes",
        (Bars("the logits compared", "class", (source.target, *compared), "logit",
              array(logits[[source.target, *compared]]), float(logits[source.target]), "target"),),
        array(logits[compared]),
    )
    gradient = finer_gradient(source.gradients(), analysis.compared_gradients(compared, source.layer),
                              logits[source.target], logits[compared], alpha, weighting)
    channels = focus(weights, acts)
    difference = Step(
        "difference", "The gradient of the difference",
        f"Gradients are linear, so the gradient of the difference is built from each class's own gradient (one "
        f"backward each, shared with every other method): with α = {num(alpha)} it runs from {num(gradient.min())} "
        f"to {num(gradient.max())}, where the target's own runs from {num(source.gradients().min())} to "
        f"{num(source.gradients().max())}. Evidence the classes share cancels.",
        "the target's gradient minus α times the compared classes' gradients",
        (Heatmaps(channel_tiles(gradient, channels, "difference gradient, channel"), signed(gradient)),),
        array(gradient),
    )
    step = weights_step(weights, "The channel weights: the mean of the difference gradient",
                        "As in Grad-CAM, each channel's weight is its gradient averaged over the positions, here the "
                        "gradient of the difference.", "the mean of the difference gradient over the positions")
    return [activations_step(source, channels, FOCUS), gradients_step(source, channels), comparison, difference, step,
            weighted_sum_step(weights, acts, raw)]


def shapleycam_lesson(source: Source) -> list[Step]:
    acts, weights, raw = source.activations(), source.weights, source.raw
    score = source.params["score"]
    second = source.analysis.second_order(source.target, source.layer, score)
    grads, product = second.gradients, second.hessian_product
    channels = focus(weights, acts)
    first = gradcam_weights(grads)
    peak = float(product.abs().max())
    gradients = Step(
        "gradients", f"The gradients of the {score} score",
        f"The score explained is {SCORE_MEANINGS[score]}. One backward gives its gradient at every activation: "
        f"{grads.numel():,} numbers from {num(grads.min())} to {num(grads.max())}.",
        f"the gradient of the {score} score at every activation",
        (Heatmaps(channel_tiles(grads, channels), signed(grads)),), array(grads),
    )
    text = (f"A second backward, through the first one, gives the Hessian times the activations, H·A: how the "
            f"gradient itself would change if every activation grew in proportion. It runs from {num(product.min())} "
            f"to {num(product.max())}.")
    if peak == 0.0:
        text += (" It is zero everywhere: after this layer the score is linear in the activations (a pooling and "
                 "linear head with the logit), so ShapleyCAM is Grad-CAM here. The ReST score, which reads the "
                 "probabilities, has curvature.")
    hessian = Step("hessian", "The Hessian-vector product", text, "the Hessian of the score times the activations",
                   (Heatmaps(channel_tiles(product, channels, "H·A, channel"), signed(product)),), array(product))
    step = weights_step(
        weights, "The channel weights: gradient minus half the curvature",
        f"Each channel's weight is the mean over positions of g − ½·H·A. Without the second-order term (Grad-CAM's "
        f"weights of the same score) the largest would be channel {int(torch.argmax(first))} with "
        f"{num(first.max())}.", "the mean of g − ½ H·A over the positions",
    )
    return [activations_step(source, channels, FOCUS), gradients, hessian, step, weighted_sum_step(weights, acts, raw)]


register(FULLGRAD, fullgrad, fullgrad_lesson)
register(FINERCAM, finercam, finercam_lesson)
register(SHAPLEYCAM, shapleycam, shapleycam_lesson)
