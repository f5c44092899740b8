"""Group-CAM, Cluster-CAM and Cosine-CAM: channels grouped first, then one masked input scored per group."""

from __future__ import annotations

import torch

from cam_core.inputs.mask_scores import MaskSpec
from cam_core.inputs.masking import BASELINES
from cam_core.lessons.steps import (
    SHOWN_CHANNELS,
    Bars,
    Heatmaps,
    Source,
    Step,
    activations_step,
    array,
    top,
    weight_bars,
    weighted_sum_step,
    weights_text,
)
from cam_core.methods.score import SCORE, mask_steps, score_gains, scores_step
from cam_core.registry import CamInputs, MethodCard, MethodOutput, Param, register

GROUPS = Param("groups", 32, "number of channel groups", minimum=2, maximum=256, up_to_channels=True, read_by="input")
SEED = Param("seed", 0, "random seed of the clustering", minimum=0, maximum=2**31 - 1, read_by="input")
BLUR_BASELINE = Param("baseline", "blur", "what masked-out pixels become: a blurred copy (the paper) or zeros",
                      choices=tuple(BASELINES)[::-1], read_by="input")
CLUSTERS = Param("groups", 8, "number of clusters", minimum=2, maximum=64, up_to_channels=True, read_by="input")


def group_output(inputs: CamInputs, group_weights: torch.Tensor) -> MethodOutput:
    """Σ_g w_g · (group g's summed map); each channel's weight is its group's."""
    scores = inputs.mask_scores
    return MethodOutput(group_map(group_weights, scores.maps), group_weights[scores.labels], scores.note)


def group_map(group_weights: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Σ_g w_g · M_g: (G,) weights and the (G, h, w) groups' summed maps give one (h, w) map."""
    return torch.einsum("g,ghw->hw", group_weights.to(maps.dtype), maps)


GROUPCAM = MethodCard(
    id="groupcam",
    name="Group-CAM",
    family="Channel clustering",
    needs=frozenset({"mask_scores"}),
    cost="fast",
    summary="Gradient-weighted channels in G groups; each group's de-noised map masks the image once; its score "
    "gain is its weight.",
    explanation=(
        "Group-CAM cuts Score-CAM's cost from one pass per channel to one per group. Each channel is first "
        "weighted by the class's mean gradient, as in Grad-CAM, so the groups belong to the class asked about. "
        "The channels are split into G contiguous groups (k-means on the maps, as the CAM survey does, is an "
        "option); each group's summed map goes through a ReLU and is de-noised: values at or below its θ-th "
        "percentile are set to zero. The map, upsampled and scaled to [0, 1], keeps the image where it is high "
        "and a blurred copy elsewhere; the network scores that image. The group's weight is the rise of the "
        "class probability over the blurred image, negative rises counting as zero. A class costs one batch of G "
        "passes. The class-agnostic shortcut (plain activation sums, one set of passes for every class) is an "
        "option."
    ),
    formula=r"M_g = \mathrm{ReLU}\Big(\sum_{k\in g} \bar{\tfrac{\partial y^c}{\partial A^k}}\, A^k\Big),\ "
    r"M_g \leftarrow M_g \cdot \mathbb{1}[M_g > P_\theta(M_g)] \qquad "
    r"s^c_g = \mathrm{ReLU}\Big(p^c\big(\tilde X + \mathrm{norm}(\mathrm{up}(M_g))\circ(X - \tilde X)\big) - "
    r"p^c(\tilde X)\Big) \qquad L^c = \mathrm{ReLU}\Big(\sum_g s^c_g M_g\Big)",
    paper="Zhang, Rao & Yang, Group-CAM: Group Score-Weighted Visual Explanations for Deep Convolutional "
    "Networks, arXiv 2103.13859, 2021 (authors' code wofmanaf/Group-CAM; θ = 70 as in the paper and the code's "
    "first release, θ = 0 is its current code)",
    definition="Zhang, Rao & Yang 2021 and the authors' code: channels × mean gradient, G contiguous groups, each "
    "group's sum rectified and de-noised (values ≤ its θ-th percentile zeroed), masked over a blurred copy; weight "
    "ReLU(pᶜ(masked) − pᶜ(blurred))",
    differs="blurred with σ = 10 px, our one blur (the authors' code: a 51-pixel kernel, σ = 50)",
    reference="authors' code",
    strengths=("A few dozen passes instead of one per channel", "Class-specific groups"),
    weaknesses=("The result depends on the grouping", "One batch of passes per class"),
    params=(
        GROUPS,
        Param("grouping", "contiguous", "how channels are grouped: the paper's contiguous split, or k-means on "
              "their maps (the CAM survey)", choices=("contiguous", "kmeans"), read_by="input"),
        Param("groups_from", "gradients", "what is grouped: channels weighted by the class's mean gradient (the "
              "paper; one batch of passes per class), or the plain activations (class-agnostic, one batch for "
              "every class)", choices=("gradients", "activations"), read_by="input"),
        Param("denoise", 70.0, "the percentile θ of each group's map below which it is set to zero (0: ReLU "
              "only)", minimum=0.0, maximum=99.0, read_by="input"),
        BLUR_BASELINE,
        SEED,
    ),
    mask_spec=lambda layer, params, target: MaskSpec(
        layer, params["grouping"], k=int(params["groups"]), seed=int(params["seed"]), baseline=params["baseline"],
        target=target if params["groups_from"] == "gradients" else None, denoise=float(params["denoise"]),
    ),
)


def groupcam(inputs: CamInputs) -> MethodOutput:
    """Positive group probability gains × de-noised group maps."""
    return group_output(inputs, score_gains(inputs.mask_scores, inputs.target, "probability").clamp(min=0))


CLUSTERCAM = MethodCard(
    id="clustercam",
    name="Cluster-CAM",
    family="Channel clustering",
    needs=frozenset({"mask_scores"}),
    cost="fast",
    summary="Channels clustered by shape (k-means or spectral on cosine affinity), clusters scored as masks.",
    explanation=(
        "Cluster-CAM clusters the channels so that channels looking at the same part of the image end up "
        "together, preferably by cosine similarity, so that a strong and a weak copy of the same pattern are "
        "not split. Each cluster's summed map is scored as a mask like Group-CAM's, and the map is the "
        "clusters' maps weighted by their score gains (the cluster weighting of the paper's title). The paper "
        "also merges two cognition maps, read here as the CAM survey reads them: the cognition-base (the "
        "cluster that raises the class score most) minus the cognition-scissors (the one that raises it "
        "least). That reading keeps one cluster and drops every other, so with several objects, or a cat on a "
        "plain background, it misses most of the object; it is an option, not the default. Spectral "
        "clustering needs a connected affinity graph, which cosine similarities often do not give; then k-means "
        "on L2-normalised maps is used and the note says so."
    ),
    formula=r"s^c_g = f^c\big(X_g\big) - f^c(X_b) \qquad L^c = \mathrm{ReLU}\Big(\sum_g s^c_g M_g\Big) "
    r"\qquad \text{cognition: } L^c = \mathrm{ReLU}\big(M_{\arg\max_g s^c_g} - M_{\arg\min_g s^c_g}\big)",
    paper="Feng et al., Cluster-CAM: Cluster-Weighted Visual Interpretation of CNNs' Decision in Image "
    "Classification, 2023 (the cognition maps as the CAM survey of the reference notes reads them)",
    definition="Feng et al. 2023: clusters of channels, each scored as a mask; the clusters' maps weighted by their "
    "scores; the paper also merges a cognition-base and a cognition-scissors map (its text was not available here: "
    "read as the CAM survey reads it, M_best − M_worst)",
    differs="the score-weighted sum of the clusters by default: the merged cognition map keeps one cluster and misses "
    "most of a cat on a plain canvas",
    reference="hand-computed tensors",
    strengths=("Groups channels by what they look at", "A few passes; every class from the same passes"),
    weaknesses=("The cognition variant drops all but two clusters: poor with several objects",
                "Spectral clustering is fragile on real activations",
                "The clusters are the same for every class: a second object may get no cluster that raises its "
                "score (on darknet's person.jpg the horse's map is blank)"),
    params=(
        CLUSTERS,
        Param("clustering", "kmeans", "k-means on the maps, or spectral clustering on cosine affinity",
              choices=("kmeans", "spectral"), read_by="input"),
        Param("variant", "score", "the score-weighted sum of all clusters, or the merged cognition map "
              "(cognition-base: the best cluster, minus cognition-scissors: the worst)",
              choices=("score", "cognition")),
        BLUR_BASELINE,
        SCORE,
        SEED,
    ),
    mask_spec=lambda layer, params, target: MaskSpec(
        layer, params["clustering"], k=int(params["groups"]), seed=int(params["seed"]), baseline=params["baseline"]
    ),
)


def clustercam(inputs: CamInputs, variant: str, score: str) -> MethodOutput:
    """Cluster score gains × cluster maps, or the best (minus the worst) cluster alone."""
    return group_output(inputs, cluster_weights(score_gains(inputs.mask_scores, inputs.target, score), variant))


def cluster_weights(gains: torch.Tensor, variant: str) -> torch.Tensor:
    """Cluster-CAM's cluster weights: the score gains themselves ("score"), or +1 for the best cluster and −1 for the
    worst ("cognition")."""
    if variant == "score":
        return gains
    weights = torch.zeros_like(gains)
    weights[torch.argmax(gains)] = 1.0
    weights[torch.argmin(gains)] -= 1.0
    return weights


COSINECAM = MethodCard(
    id="cosinecam",
    name="Cosine-CAM",
    family="Channel clustering",
    needs=frozenset({"mask_scores"}),
    cost="fast",
    summary="k-means on L2-normalised channel maps (a cosine geometry), clusters scored as masks.",
    explanation=(
        "Cosine-CAM gets Cluster-CAM's cosine grouping without spectral clustering's fragility: each channel's "
        "flattened map is scaled to unit length (no centring, no standardising, which the CAM survey found to "
        "scramble the maps) and k-means runs on those rows, where Euclidean distance is a monotone function of "
        "cosine distance. Each cluster's summed map is then scored as a mask like Group-CAM's."
    ),
    formula=r"\hat a_k = \frac{\mathrm{vec}(A^k)}{\lVert \mathrm{vec}(A^k)\rVert_2} \qquad "
    r"\lVert \hat a_i - \hat a_j\rVert^2 = 2 - 2\cos(a_i, a_j) \qquad "
    r"L^c = \mathrm{ReLU}\Big(\sum_g s^c_g M_g\Big)",
    paper="Named in the CAM survey of the reference notes (k-means on L2-normalised channel maps)",
    definition="the CAM survey of the reference notes: k-means on L2-normalised channel maps, clusters scored as "
    "masks",
    reference="hand-computed tensors",
    strengths=("Groups strong and weak copies of a pattern together", "Deterministic with a seed"),
    weaknesses=("Channels with near-empty maps still get a direction",
                "The clusters are the same for every class: a second object may get no cluster that raises its "
                "score (on darknet's person.jpg the horse's map is blank)"),
    params=(CLUSTERS, BLUR_BASELINE, SCORE, SEED),
    mask_spec=lambda layer, params, target: MaskSpec(
        layer, "kmeans", k=int(params["groups"]), rows="l2", seed=int(params["seed"]), baseline=params["baseline"]
    ),
)


def cosinecam(inputs: CamInputs, score: str) -> MethodOutput:
    """Cluster score gains × cluster maps, clusters from cosine k-means."""
    return group_output(inputs, score_gains(inputs.mask_scores, inputs.target, score))


SHOWN_GROUPS = 6


def grouping_text(source: Source, sizes: torch.Tensor, note: str) -> str:
    """How the channels were grouped, in words."""
    spec = source.card.mask_spec(source.layer, source.params, source.target)
    shape = "×".join(map(str, source.activations().shape[1:]))
    if spec.grouping == "contiguous":
        how = "The paper's split cuts the channels, in their order, into equal runs"
    elif spec.grouping == "spectral":
        how = "Spectral clustering on the channels' cosine affinity groups them"
    elif spec.rows == "l2":
        how = (f"k-means on the channels' flattened {shape} maps, each scaled to length 1 (so that distance means "
               "cosine: strong and weak copies of one pattern land together), groups them")
    else:
        how = f"k-means on the channels' flattened {shape} maps groups them"
    text = (f"{how}: {int(sizes.sum())} channels in {sizes.numel()} groups of {int(sizes.min())} to {int(sizes.max())} "
            "channels. A group's map M is the sum of its channels' maps")
    if spec.target is not None:
        text += ", each channel first multiplied by the class's mean gradient (as Grad-CAM weighs it), so the groups "
        text += f"belong to “{source.label}”"
    if spec.denoise is not None:
        text += (f"; M then passes a ReLU and its values at or below its {spec.denoise:g}th percentile are set to "
                 "zero, "
                 "which drops the weak, noisy part of the group")
    text += "."
    return f"{text} Note: {note}." if note else text


def grouped(source: Source, text: str, how: str) -> list[Step]:
    """activations → groups → masks → masked inputs → scores → weights → weighted sum of the groups' maps (the
    groups' weights read back from the method's per-channel weights)."""
    spec = source.card.mask_spec(source.layer, source.params, source.target)
    scores = source.analysis.mask_scores(spec, progress=source.progress)
    score = source.params.get("score", "probability")
    gains = score_gains(scores, source.target, score)
    maps, raw = scores.maps, source.raw
    weights = torch.zeros(maps.shape[0], dtype=source.weights.dtype).scatter_(0, scores.labels, source.weights)
    sizes = torch.bincount(scores.labels, minlength=maps.shape[0])
    shown = top(weights.to(maps.dtype) * maps.sum(dim=(1, 2)), SHOWN_GROUPS)
    acts = source.activations()
    members = torch.nonzero(scores.labels == shown[0]).flatten()
    channels = [int(members[i]) for i in top(acts[members].sum(dim=(1, 2)), SHOWN_CHANNELS)]
    groups = Step(
        "clusters", "The channel groups", grouping_text(source, sizes, scores.note),
        f"{sizes.numel()} groups of channels ({spec.grouping}{', cosine' if spec.rows == 'l2' else ''})",
        (Bars("channels per group", "group", tuple(range(sizes.numel())), "channels", array(sizes.float())),
         Heatmaps(tuple((f"M of group {g} ({int(sizes[g])} channels)", array(maps[g])) for g in shown))),
        array(scores.labels.float()),
    )
    weighting = Step("weights", "The groups' weights", f"{text} {weights_text(weights, 'group')}", how,
                     (weight_bars(weights, "weight", "group"),), array(weights))
    return [
        activations_step(source, channels, f"the strongest of group {shown[0]}, the group that adds most to the map"),
        groups, *mask_steps(source, spec, scores, shown, "group"), scores_step(source, scores, gains, "group", score),
        weighting, weighted_sum_step(weights, maps, raw, "group", "Σ w · M over the groups"),
    ]


GAINS = ("The score gains are the groups' weights as they are: no softmax (Score-CAM's softmax would flatten so few "
         "weights).")


GAINS_HOW = "the groups' score gains as they are"


def groupcam_lesson(source: Source) -> list[Step]:
    return grouped(source, "A group's weight is its probability gain, a fall counting as zero (as in the authors' "
                   "code): no softmax.", "the groups' positive probability gains")


def cosinecam_lesson(source: Source) -> list[Step]:
    return grouped(source, GAINS, GAINS_HOW)


def clustercam_lesson(source: Source) -> list[Step]:
    variant = source.params["variant"]
    texts = {
        "score": (GAINS, GAINS_HOW),
        "cognition": ("The paper merges two cognition maps: the cognition-base, the cluster that raises the score "
                      "most (weight +1), minus the cognition-scissors, the cluster that raises it least (weight −1); "
                      "every other cluster gets 0.", "+1 for the best cluster, −1 for the worst"),
    }
    return grouped(source, *texts[variant])


register(GROUPCAM, groupcam, groupcam_lesson)
register(CLUSTERCAM, clustercam, clustercam_lesson)
register(COSINECAM, cosinecam, cosinecam_lesson)
