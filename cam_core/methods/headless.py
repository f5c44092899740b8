"""Gradient-free methods that read the layer's activations alone or send parts of them through the head: Recipro-CAM,
FEM, KPCA-CAM and Deep Feature Factorization."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics.pairwise import pairwise_kernels
from sklearn.preprocessing import KernelCenterer

from cam_core.inputs.concepts import MAX_CONCEPTS, SCALES, SHIFTS, ConceptSpec
from cam_core.inputs.position_scores import GAUSSIAN_KERNEL, SPATIAL_MASKS, PositionSpec, masked_copies
from cam_core.lessons.steps import (
    SHOWN_BARS,
    SHOWN_CHANNELS,
    Bars,
    Heatmaps,
    Line,
    Source,
    Step,
    activations_step,
    array,
    channel_tiles,
    num,
    shape,
    signed,
    top,
    weight_bars,
    weighted_sum_step,
    weights_text,
)
from cam_core.methods.common import (
    centred_matrix,
    kernel_component,
    position_matrix,
    sign_agreement,
    weighted_sum,
)
from cam_core.registry import CamInputs, MethodCard, MethodOutput, Param, Peer, register

FAMILY = "Gradient-free, through the head"

# --- Recipro-CAM -----------------------------------------------------------------------------------------------------

RECIPROCAM = MethodCard(
    id="reciprocam",
    name="Recipro-CAM",
    family=FAMILY,
    needs=frozenset({"position_scores"}),
    cost="fast",
    summary="The layer's features kept at one position at a time and sent through the head: the class's probability "
    "there is the map.",
    explanation=(
        "Recipro-CAM asks the head what each place of the feature map alone says. For every position (i, j) it "
        "makes a copy of the layer's output that keeps only that position's feature vector (by default spread over "
        "its 3×3 neighbourhood with Gaussian weights ¼, ⅛ and 1⁄16, as in the paper), with zeros everywhere else, "
        "and feeds the copy to the rest of the network. The class's post-softmax probability for that copy is the "
        "map's value at (i, j). No gradients are involved. Where the model splits into features and a classifier "
        "head at the layer (the default layer of the embedded models), the copies only pass through the head: h·w "
        "head passes (49 at 7×7), a few milliseconds; elsewhere every copy replaces the layer's output in a full "
        "forward pass (h·w full passes). Every class's probability comes from the same passes, so switching the "
        "class is instant."
    ),
    formula=r"M^{ij} = a_{ij} \otimes \mathcal{G}_{ij} \qquad "
    r"L^c_{ij} = \mathrm{softmax}\big(f_{\mathrm{head}}(M^{ij})\big)_c",
    paper="Byun & Lee, Recipro-CAM: Fast gradient-free visual explanations for convolutional neural networks, "
    "arXiv 2209.14074, 2022 (code: openvinotoolkit/training_extensions, misc/pytorch_toolkit/recipro_cam)",
    definition="Byun & Lee 2022 and its code: each position's feature vector, spread over its 3×3 neighbourhood by a "
    "Gaussian kernel, fed to the head alone; the class's post-softmax probability is the map at that position",
    reference="authors' code",
    strengths=("No gradients", "Every class from the same h·w passes: a class switch is instant",
               "Cheap through the head alone"),
    weaknesses=("h·w full passes where the model does not split at the layer",
                "Each position is judged alone: evidence spread over several positions counts only in part"),
    params=(Param("mask", "gaussian", "how a position is kept: " + "; ".join(
        f"{name}: {meaning}" for name, meaning in SPATIAL_MASKS.items()), choices=tuple(SPATIAL_MASKS),
        read_by="input"),),
    alike="one position's features alone barely move a head that averages every position: each copy's "
    "probabilities stay close to the even 1 / classes, so two classes' maps can rise at the same positions",
    signed=False,
    in_default_grid=False,
    position_spec=lambda layer, params: PositionSpec(layer, params["mask"]),
)


def reciprocam(inputs: CamInputs) -> MethodOutput:
    """The target's probability for each position's masked copy, as an (h, w) map."""
    _, height, width = inputs.activations.shape
    probabilities = inputs.position_scores.probabilities[:, inputs.target]
    return MethodOutput(probabilities.reshape(height, width).to(inputs.activations.dtype))


def reciprocam_lesson(source: Source) -> list[Step]:
    acts, raw = source.activations(), source.raw
    mask = source.params["mask"]
    scores = source.analysis.position_scores(PositionSpec(source.layer, mask), progress=source.progress)
    count, height, width = acts.shape
    best = int(torch.argmax(raw))
    shown = sorted({best, 0, (height // 2) * width + width // 2})
    copies = torch.cat([masked_copies(acts, slice(p, p + 1), mask) for p in shown])
    channels = top(acts.sum(dim=(1, 2)), SHOWN_CHANNELS)
    kernel = "Gaussian 3×3 kernel (¼ at the centre, ⅛ beside, 1⁄16 at the corners)" if mask == "gaussian" else \
        "one-hot mask (1 at the position, 0 elsewhere)"
    masks = Step(
        "masks", "One copy of the features per position",
        f"For each of the {height}×{width} = {height * width} positions, a copy of the {shape(acts)} feature map keeps "
        f"only that position's {count} features, placed with a {kernel}; everything else is zero. Shown: the copies "
        "of a few positions, summed over their channels.",
        f"the feature map kept at one position ({mask})",
        (Heatmaps(tuple((f"copy of position ({p // width}, {p % width})", array(copies[n].sum(dim=0)))
                        for n, p in enumerate(shown))
                  + ((("the kernel", array(GAUSSIAN_KERNEL)),) if mask == "gaussian" else ())),),
        array(copies),
    )
    probabilities = scores.probabilities[:, source.target]
    route = (f"the head alone ({height * width} head passes)" if scores.head_only else
             f"the whole network, the copy replacing the layer's output ({height * width} full passes)")
    keys = top(probabilities, SHOWN_BARS)
    whole = float(source.analysis.probabilities[source.target])
    classes = scores.logits.shape[1]
    scored = Step(
        "scores", "Each copy through the rest of the network",
        f"Every copy goes through {route}, {scores.seconds * 1000:.0f} ms for all of them, once for this image and "
        f"layer: every class's probability comes from the same passes. The probability of “{source.label}” is "
        f"{num(whole)} for the whole image and {num(probabilities[best])} for the copy of position "
        f"({best // width}, {best % width}) alone, the highest; an even share would be 1/{classes} = "
        f"{num(1 / classes)}: one position's features alone move the head's output only a little, and the map is "
        "made of these small differences.",
        "the class's post-softmax probability for each position's copy",
        (Bars(f"probability of “{source.label}” for the copies that score highest", "position (row-major)",
              tuple(keys), "probability", array(probabilities[keys]), whole, "whole image"),),
        array(probabilities),
    )
    mapped = Step(
        "map", "The probabilities as a map",
        f"Put back at their positions, the {height * width} probabilities are the map: from {num(raw.min())} to "
        f"{num(raw.max())}. It is never negative, so there is no ReLU to take.",
        "each position's probability at its place", (Heatmaps((("probability by position", array(raw)),)),),
        array(raw),
    )
    return [activations_step(source, channels, "the most active"), masks, scored, mapped]


# --- FEM -------------------------------------------------------------------------------------------------------------

AGGREGATIONS = {
    "masks": "the binary masks weighted by the channels' mean activations (the paper and its authors' code)",
    "activations": "the activations weighted by the share of each channel's positions above its threshold "
    "(pytorch-grad-cam)",
}

FEM = MethodCard(
    id="fem",
    name="FEM",
    family=FAMILY,
    needs=frozenset(),
    cost="instant",
    summary="Where each channel is unusually strong (above its mean + k standard deviations), weighted by the "
    "channel's mean: no gradients, no class.",
    explanation=(
        "The Feature Explanation Method keeps, in each channel, only the positions where it fires unusually "
        "strongly: above the channel's mean plus k times its standard deviation over the positions (k = 2, a "
        "'k-sigma' rule). That gives one binary mask per channel. Each mask is weighted by the channel's mean "
        "activation, so channels that are strong overall count more, and the masks are added up. It reads no "
        "class at all: every class gets the same map, which shows where the layer responds most, not why one "
        "class won. pytorch-grad-cam's FEM weights the activations themselves by the share of positions above the "
        "threshold instead; that variant is a parameter here."
    ),
    formula=r"B^k_{ij} = \mathbb{1}\big[A^k_{ij} > \mu_k + k\,\sigma_k\big] \qquad w_k = \mu_k \qquad "
    r"L = \sum_k w_k B^k",
    paper="Fuad et al., Features understanding in 3D CNNs for actions recognition in video, IPTA 2020; Bourroux et "
    "al., Multi Layered Feature Explanation Method for Convolutional Neural Networks, ICPRAI 2022",
    definition="Fuad et al. 2020 and the authors' code: binary masks A > μ + kσ (population σ over positions, k = 2), "
    "weighted by the channels' mean activations and summed",
    reference="authors' code",
    peers=(Peer("pytorch-grad-cam", "FEM", (("aggregate", "activations"),)),),
    strengths=("No gradients, no class, no extra pass", "Ignores weak, diffuse activation"),
    weaknesses=("Not class-specific", "A 7×7 map has few positions: a k-sigma outlier may not exist in a channel"),
    params=(
        Param("k", 2.0, "how many standard deviations above its mean a position must be to count", 0.0, 5.0),
        Param("aggregate", "masks", "what is added up: " + "; ".join(
            f"{name}: {meaning}" for name, meaning in AGGREGATIONS.items()), choices=tuple(AGGREGATIONS)),
    ),
    class_specific=False,
)


def fem_masks(activations: torch.Tensor, k: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each channel's binary mask of the positions above its mean + k·σ (σ over the positions, population), the
    channels' means and their thresholds."""
    flat = activations.flatten(1)
    means = flat.mean(dim=1)
    thresholds = means + k * flat.std(dim=1, correction=0)
    return (activations > thresholds[:, None, None]).to(activations.dtype), means, thresholds


def fem(inputs: CamInputs, k: float, aggregate: str) -> MethodOutput:
    """The binary masks weighted by the channels' means (or the activations by the masks' shares), summed."""
    masks, means, _ = fem_masks(inputs.activations, float(k))
    if aggregate == "masks":
        weights, maps = means, masks
    else:
        weights, maps = masks.mean(dim=(1, 2)), inputs.activations
    note = "" if torch.any(masks) else f"no position of any channel is above its mean + {k:g}σ"
    return MethodOutput(weighted_sum(weights, maps), weights, note)


def fem_lesson(source: Source) -> list[Step]:
    acts, weights, raw = source.activations(), source.weights, source.raw
    k, aggregate = float(source.params["k"]), source.params["aggregate"]
    masks, means, thresholds = fem_masks(acts, k)
    channels = top(weights * masks.sum(dim=(1, 2)), SHOWN_CHANNELS)
    height, width = acts.shape[1:]
    above = masks.sum(dim=(1, 2))
    threshold = Step(
        "threshold", "Each channel's threshold",
        f"For each channel, the mean μ and the standard deviation σ of its {height * width} values give the threshold "
        f"μ + {k:g}σ. Shown: the channels with their thresholds; channel {channels[0]} has μ = "
        f"{num(means[channels[0]])} and threshold {num(thresholds[channels[0]])}.",
        f"the channel's mean plus {k:g} standard deviations over its positions",
        (Heatmaps(tuple((f"channel {c}: threshold {num(thresholds[c])}", array(acts[c])) for c in channels),
                  signed(acts)),
         Bars("thresholds of the channels shown", "channel", tuple(channels), "μ + kσ", array(thresholds[channels]))),
        array(thresholds),
    )
    binary = Step(
        "masks", "The binary masks",
        f"A position counts where the channel is above its threshold: 1 there, 0 elsewhere. "
        f"{int((above > 0).sum())} of the {acts.shape[0]} channels have at least one such position; on average "
        f"{float(above.mean()):.2f} of the {height * width} positions pass.",
        "1 where the activation is above the threshold, else 0",
        (Heatmaps(channel_tiles(masks, channels, "mask of channel")),), array(masks),
    )
    if aggregate == "masks":
        why = "Each mask's weight is its channel's mean activation μ, as the paper and its authors' code have it."
        maps, what, how = masks, "binary mask", "Σₖ μₖ · Bₖ"
    else:
        why = ("As pytorch-grad-cam does, each channel's weight is the share of its positions above the threshold, "
               "and it weights the activations themselves.")
        maps, what, how = acts, "channel", "Σₖ mean(Bₖ) · Aₖ"
    weighting = Step("weights", "The channel weights", f"{why} {weights_text(weights)}",
                     "the channel's mean activation" if aggregate == "masks" else "the share of positions above",
                     (weight_bars(weights, "weight"),), array(weights))
    return [activations_step(source, channels, "the ones that add the most to the map"), threshold, binary,
            weighting, weighted_sum_step(weights, maps, raw, what, how)]


# --- KPCA-CAM --------------------------------------------------------------------------------------------------------

KERNELS = ("sigmoid", "rbf", "poly", "cosine", "linear")
MATRIX_COLUMNS = 48  # the columns of the positions × channels matrix a lesson shows
KPCA_SIGNS = {
    "mean agreement": "flipped where needed to rise with the channels' mean activation, as Eigen-CAM here",
    "as returned": "as scikit-learn returns it (pytorch-grad-cam)",
}

KPCACAM = MethodCard(
    id="kpcacam",
    name="KPCA-CAM",
    family=FAMILY,
    needs=frozenset({"kernel_component"}),
    cost="fast",
    in_default_grid=False,
    summary="Eigen-CAM with a kernel: the first kernel-PCA component of the positions' feature vectors.",
    explanation=(
        "KPCA-CAM is Eigen-CAM with the kernel trick. Each position of the layer is a point with one coordinate per "
        "channel; after each channel's mean is subtracted, a kernel (by default the sigmoid kernel "
        "tanh(γ⟨x, y⟩ + 1) with γ = 1 / channels) says how alike every two positions are. The first principal "
        "component of that kernel matrix gives one number per position: the map. The kernel lets it follow a "
        "pattern that is not a straight line in channel space. It reads no class, so every class gets the same map. "
        "Like any principal component its sign is arbitrary; here it is chosen so that the map rises with the "
        "channels' mean activation, as for Eigen-CAM."
    ),
    formula=r"K_{pq} = \tanh\big(\gamma\,\langle \tilde a_p, \tilde a_q\rangle + 1\big) \qquad "
    r"\bar K = HKH,\ \bar K\alpha = \lambda_1\alpha \qquad L_p = \sqrt{\lambda_1}\,\alpha_p",
    paper="Karmani et al., KPCA-CAM: Visual Explainability of Deep Computer Vision Models using Kernel PCA, arXiv "
    "2410.00267, 2024 (the authors' implementation is pytorch-grad-cam's KPCA_CAM)",
    definition="Karmani et al. 2024, as implemented by the authors in pytorch-grad-cam: scikit-learn's KernelPCA "
    "(sigmoid kernel, γ = 1/C) of the channel-centred positions × channels matrix, first component",
    differs="the component's sign is chosen to agree with the mean activation: kernel PCA's is arbitrary",
    reference="authors' code",
    peers=(Peer("pytorch-grad-cam", "KPCA_CAM", (("sign_rule", "as returned"),)),),
    strengths=("No gradients, no class, no extra pass", "Follows non-linear structure of the activations"),
    weaknesses=("Not class-specific", "Sign of the component is arbitrary without a fix",
                "The kernel and its γ change the map"),
    params=(
        Param("kernel", "sigmoid", "the kernel comparing two positions (scikit-learn's names; γ = 1 / channels)",
              choices=KERNELS, read_by="both"),
        Param("sign_rule", "mean agreement", "how the component's sign is chosen: " + "; ".join(
            f"{name}: {meaning}" for name, meaning in KPCA_SIGNS.items()), choices=tuple(KPCA_SIGNS)),
    ),
    class_specific=False,
)


def kpcacam(inputs: CamInputs, kernel: str, sign_rule: str) -> MethodOutput:
    """The first kernel-PCA component of the activations (the engine's cached one where given) as a map, its sign
    fixed by the mean activation."""
    _, height, width = inputs.activations.shape
    projection = inputs.kernel_component
    if projection is None:
        projection = kernel_component(inputs.activations, kernel)
    if sign_rule == "mean agreement" and sign_agreement(projection, position_matrix(inputs.activations)) < 0:
        projection = -projection
    note = "" if torch.any(projection) else "the activations do not vary across positions: no component"
    return MethodOutput(projection.reshape(height, width).to(inputs.activations.dtype), note=note)


def kpcacam_lesson(source: Source) -> list[Step]:
    acts, raw = source.activations(), source.raw
    kernel = source.params["kernel"]
    count, height, width = acts.shape
    centred = centred_matrix(position_matrix(acts), True)
    gram = KernelCenterer().fit_transform(pairwise_kernels(centred.numpy(), metric=kernel))
    eigenvalues = np.sort(np.linalg.eigvalsh(gram))[::-1].copy()
    returned = kernel_component(acts, kernel).reshape(height, width)
    flipped = bool(torch.any(returned)) and float((returned.double() * raw.double()).sum()) < 0
    channels = top(acts.sum(dim=(1, 2)), SHOWN_CHANNELS)
    positive = eigenvalues[eigenvalues > 0]
    share = float(positive[0] / positive.sum()) if len(positive) else 0.0
    matrix = Step(
        "matrix", "The positions × channels matrix, centred",
        f"The {count} maps become a matrix with one row per position ({height * width}) and one column per channel "
        f"({count}); each column's mean is subtracted, so a row says how that position differs from the average "
        "position.",
        f"the activations as a centred {height * width} × {count} matrix",
        (Heatmaps(((f"{height * width} positions × the first {min(MATRIX_COLUMNS, count)} of {count} channels",
                    array(centred[:, :MATRIX_COLUMNS])),), True),),
        array(centred),
    )
    gram_step = Step(
        "kernel", "How alike every two positions are",
        f"The {kernel} kernel compares every two rows (γ = 1/{count}), giving a {height * width} × {height * width} "
        "matrix, which is centred again (the feature space's mean removed). Its largest eigenvalue, "
        f"{num(eigenvalues[0])}, carries {share:.0%} of the positive ones.",
        f"the {kernel} kernel of every two positions, centred",
        (Heatmaps((("centred kernel matrix", gram.astype(np.float32)),), True),
         Line("eigenvalues of the centred kernel matrix", "component", "eigenvalue",
              eigenvalues[:MATRIX_COLUMNS].astype(np.float32))),
        gram.astype(np.float32),
    )
    component = Step(
        "component", "The first component",
        "Each position's coordinate on the first eigenvector (times the square root of its eigenvalue) is one "
        f"number per position: a {height}×{width} map from {num(returned.min())} to {num(returned.max())}, as "
        "scikit-learn returns it.",
        "each position's projection on the first kernel component",
        (Heatmaps((("as returned", array(returned)),), True),), array(returned),
    )
    fixed = Step(
        "sign fix", "The sign fix",
        "The component's sign is arbitrary. " + (
            "It is kept as scikit-learn returns it (sign_rule “as returned”)." if source.params["sign_rule"] ==
            "as returned" else "Here it falls where the channels' mean activation rises, so it is flipped." if flipped
            else "Here it already rises with the channels' mean activation, so it stays."),
        "the sign chosen to agree with the mean activation",
        (Heatmaps((("before", array(returned)), ("after", array(raw))), True),), array(raw),
    )
    return [activations_step(source, channels, "the most active"), matrix, gram_step, component, fixed]


# --- Deep Feature Factorization --------------------------------------------------------------------------------------

DFF = MethodCard(
    id="dff",
    name="Deep Feature Factorization",
    family=FAMILY,
    needs=frozenset({"concepts"}),
    cost="fast",
    summary="NMF splits the layer's activations into k concepts (a map and a channel vector each); each concept's "
    "map is weighted by how much its vector says the class.",
    explanation=(
        "Deep Feature Factorization factorises the layer's non-negative activations, a channels × positions "
        "matrix, by non-negative matrix factorisation into k concepts: A ≈ W H, each concept a channel vector "
        "(a column of W) and a map (a row of H) saying where in the image it is. The concepts come from this image "
        "alone; no class is involved. To say what a concept is, its channel vector is put at every position of the "
        "layer and sent through the rest of the network (through the head alone at the embedded models' default "
        "layer, k full passes elsewhere): the class probabilities it gets name the concept. For a map of one class "
        "(Compare), each concept's map, scaled to a peak of 1, is weighted by its probability for that class, and "
        "the weighted maps are added. The factorisation starts from a random point: the seed fixes it, and is shown."
    ),
    formula=r"A \approx W H,\ W \in \mathbb{R}_{\ge 0}^{C\times k},\ H \in \mathbb{R}_{\ge 0}^{k\times hw} \qquad "
    r"p_j = \mathrm{softmax}\big(f_{\mathrm{head}}(W_{:,j})\big) \qquad L^c = \sum_j p_j(c)\, \hat H_j",
    paper="Collins, Achanta & Süsstrunk, Deep Feature Factorization for Concept Discovery, ECCV 2018 (concept class "
    "scores as in pytorch-grad-cam's DeepFeatureFactorization)",
    definition="Collins et al., ECCV 2018: NMF of the non-negative channels × positions activations into k concepts; "
    "each concept's class scores from the classifier applied to its channel vector (pytorch-grad-cam)",
    differs="the paper gives concepts, not one map per class; ours adds the concepts' maps (peak 1) weighted by "
    "their probabilities for the class, and scales each vector to its map's peak (NMF's split of scale is arbitrary)",
    reference="paper",
    peers=(Peer("pytorch-grad-cam", "DeepFeatureFactorization",
                (("shift", "channel minimum"), ("scale", "as factorised"))),),
    strengths=("No gradients", "Names the parts of the image the layer separates",
               "Every class from one factorisation and k head passes"),
    weaknesses=("NMF has local minima: another seed can give other concepts",
                "A class no concept carries gets a faint map spread over all of them"),
    params=(
        Param("concepts", 5, "how many concepts NMF finds (k)", 1, MAX_CONCEPTS, read_by="input"),
        Param("seed", 0, "the seed of NMF's random start", 0, 2**31 - 1, read_by="input"),
        Param("shift", "clip", "how negative activations become non-negative: " + "; ".join(
            f"{name}: {meaning}" for name, meaning in SHIFTS.items()), choices=tuple(SHIFTS), read_by="input"),
        Param("scale", "peak", "how the scale is split between a concept's map and vector: " + "; ".join(
            f"{name}: {meaning}" for name, meaning in SCALES.items()), choices=tuple(SCALES), read_by="input"),
    ),
    alike="every class's map mixes the same k concept maps: two classes that the same concept scores highest for "
    "get nearly the same map (more concepts can separate them)",
    signed=False,
    in_default_grid=False,
    concept_spec=lambda layer, params: ConceptSpec(layer, int(params["concepts"]), int(params["seed"]),
                                                   params["shift"], params["scale"]),
)


def dff(inputs: CamInputs) -> MethodOutput:
    """The concepts' maps weighted by their probabilities for the target, summed."""
    concepts = inputs.concepts
    weights = concepts.probabilities[:, inputs.target]
    return MethodOutput(weighted_sum(weights.to(concepts.maps.dtype), concepts.maps), weights, concepts.note)


def dff_lesson(source: Source) -> list[Step]:
    acts, weights, raw = source.activations(), source.weights, source.raw
    spec = source.card.concept_spec(source.layer, source.params)
    found = source.analysis.concepts(spec, progress=source.progress)
    count, height, width = acts.shape
    labels = source.analysis.explainer.labels
    names = [f"concept {j}: {labels[found.top_classes(j, 1)[0][0]]}" for j in range(spec.k)]
    channels = top(acts.sum(dim=(1, 2)), SHOWN_CHANNELS)
    factorised = Step(
        "concepts", "The concepts",
        f"The {count} × {height * width} matrix of the activations (channels × positions) is factorised into "
        f"{spec.k} non-negative parts, A ≈ W H, by NMF from a random start (seed {spec.seed}): each concept has a "
        f"channel vector of {count} numbers and a {height}×{width} map. Together they reproduce the activations "
        f"with a relative error ‖A − WH‖ / ‖A‖ of {found.error:.0%}."
        + (f" {found.note[0].upper()}{found.note[1:]}." if found.note else ""),
        f"non-negative matrix factorisation into {spec.k} concepts",
        (Heatmaps(tuple((names[j], array(found.maps[j])) for j in range(spec.k))),), array(found.maps),
    )
    route = "the head alone" if found.head_only else f"the whole network ({spec.k} full passes)"
    best = int(torch.argmax(weights))
    scored = Step(
        "scores", "What each concept says",
        f"Each concept's channel vector is put at every position of the layer and sent through {route}; the "
        f"softmax of the result names the concept by its most probable class. For “{source.label}” concept {best} "
        f"scores highest, {num(weights[best])}. "
        + " ".join(f"Concept {j}: {', '.join(f'{labels[c]} {p:.2f}' for c, p in found.top_classes(j, 2))}."
                   for j in range(spec.k)),
        "the class probabilities of each concept's vector",
        (Bars(f"probability of “{source.label}” for each concept", "concept", tuple(range(spec.k)), "probability",
              array(weights)),),
        array(found.probabilities),
    )
    return [activations_step(source, channels, "the most active"), factorised, scored,
            weighted_sum_step(weights, found.maps, raw, "concept", "Σⱼ pⱼ(class) · Hⱼ")]


register(RECIPROCAM, reciprocam, reciprocam_lesson)
register(FEM, fem, fem_lesson)
register(KPCACAM, kpcacam, kpcacam_lesson)
register(DFF, dff, dff_lesson)
