"""Group-CAM, Cluster-CAM and Cosine-CAM: channels grouped first, then one masked input scored per group."""

from __future__ import annotations

import torch

from ..registry import CamInputs, MethodCard, MethodOutput, Param, register
from ..scores import MaskSpec
from .score import SCORE, target_contributions

GROUPS = Param("groups", 32, "number of channel groups", minimum=2, maximum=256)
SEED = Param("seed", 0, "random seed of the clustering", minimum=0, maximum=2**31 - 1)
BLUR_BASELINE = Param("baseline", "blur", "what masked-out pixels become: a blurred copy (the paper) or zeros",
                      choices=("blur", "zeros"))
CLUSTERS = Param("groups", 8, "number of clusters", minimum=2, maximum=64)


def group_output(inputs: CamInputs, group_weights: torch.Tensor) -> MethodOutput:
    """Σ_g w_g · (group g's summed map); each channel's weight is its group's."""
    scores = inputs.mask_scores
    return MethodOutput(group_map(group_weights, scores.maps), group_weights[scores.labels], scores.note)


def group_map(group_weights: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Σ_g w_g · M_g: (G,) weights and the (G, h, w) groups' summed maps give one (h, w) map."""
    return torch.einsum("g,ghw->hw", group_weights.to(maps.dtype), maps)


@register(
    MethodCard(
        id="groupcam",
        name="Group-CAM",
        family="Channel clustering",
        needs=frozenset({"mask_scores"}),
        cost="fast",
        summary="Channels in G groups; each group's map masks the image once; its score gain is its weight.",
        explanation=(
            "Group-CAM cuts Score-CAM's cost from one pass per channel to one per group. The channels are split "
            "into G groups (here by k-means on their maps, as the CAM survey does; the paper's contiguous split is an "
            "option), each group's summed map becomes a mask, and the image kept under the mask, with a blurred copy "
            "elsewhere, is scored by the network. The group's weight is its score gain over the blurred image. "
            "Unlike the paper, the groups' maps are not weighted by gradients, so one set of passes serves every "
            "class and switching the class is instant."
        ),
        formula=r"M_g = \sum_{k\in g} A^k \qquad s^c_g = f^c\big(\tilde X + \mathrm{norm}(\mathrm{up}(M_g))\circ"
        r"(X - \tilde X)\big) - f^c(\tilde X) \qquad L^c = \mathrm{ReLU}\Big(\sum_g s^c_g M_g\Big)",
        paper="Zhang et al., Group-CAM: Group Score-Weighted Visual Explanations for Deep Convolutional Networks, "
        "2021",
        strengths=("A few dozen passes instead of one per channel", "No gradients"),
        weaknesses=("The result depends on the grouping", "Coarse when groups mix unrelated channels"),
        params=(
            GROUPS,
            Param("grouping", "kmeans", "how channels are grouped: k-means on their maps or the paper's contiguous "
                  "split", choices=("kmeans", "contiguous")),
            BLUR_BASELINE,
            SCORE,
            SEED,
        ),
        mask_spec=lambda layer, params: MaskSpec(
            layer, params["grouping"], k=int(params["groups"]), seed=int(params["seed"]), baseline=params["baseline"]
        ),
    )
)
def groupcam(inputs: CamInputs, groups: int, grouping: str, baseline: str, score: str, seed: int) -> MethodOutput:
    """Group score gains × group maps."""
    return group_output(inputs, target_contributions(inputs, score))


@register(
    MethodCard(
        id="clustercam",
        name="Cluster-CAM",
        family="Channel clustering",
        needs=frozenset({"mask_scores"}),
        cost="fast",
        summary="Channels clustered by shape (k-means or spectral on cosine affinity), clusters scored as masks.",
        explanation=(
            "Cluster-CAM clusters the channels so that channels looking at the same part of the image end up "
            "together, preferably by cosine similarity, so that a strong and a weak copy of the same pattern are "
            "not split. Each cluster's summed map is scored as a mask like Group-CAM's. Besides the score-weighted "
            "sum it proposes two sharper readings: cognition-base keeps only the best cluster, cognition-scissors "
            "also subtracts the worst. Spectral clustering needs a connected affinity graph, which cosine "
            "similarities often do not give; then k-means on L2-normalised maps is used and the note says so."
        ),
        formula=r"s^c_g = f^c\big(X_g\big) - f^c(X_b) \qquad L^c = \mathrm{ReLU}\Big(\sum_g s^c_g M_g\Big),\quad "
        r"M_{g^*} \ \text{(base)},\quad M_{g^*} - M_{g_*}\ \text{(scissors)}",
        paper="Feng et al., Cluster-CAM: Cluster-Weighted Visual Interpretation of CNNs' Decision in Image "
        "Classification, 2023",
        strengths=("Groups channels by what they look at", "A few passes; every class from the same passes"),
        weaknesses=("Cognition variants drop all but one or two clusters: poor with several objects",
                    "Spectral clustering is fragile on real activations"),
        params=(
            CLUSTERS,
            Param("clustering", "kmeans", "k-means on the maps, or spectral clustering on cosine affinity",
                  choices=("kmeans", "spectral")),
            Param("variant", "score", "score-weighted sum, cognition-base (+1 for the best cluster) or "
                  "cognition-scissors (also −1 for the worst)", choices=("score", "cognition-base",
                                                                         "cognition-scissors")),
            BLUR_BASELINE,
            SCORE,
            SEED,
        ),
        mask_spec=lambda layer, params: MaskSpec(
            layer, params["clustering"], k=int(params["groups"]), seed=int(params["seed"]), baseline=params["baseline"]
        ),
    )
)
def clustercam(
    inputs: CamInputs, groups: int, clustering: str, variant: str, baseline: str, score: str, seed: int
) -> MethodOutput:
    """Cluster score gains × cluster maps, or the best (minus the worst) cluster alone."""
    return group_output(inputs, cluster_weights(target_contributions(inputs, score), variant))


def cluster_weights(gains: torch.Tensor, variant: str) -> torch.Tensor:
    """Cluster-CAM's cluster weights: the score gains ("score"), +1 for the best cluster ("cognition-base"), and
    also −1 for the worst ("cognition-scissors")."""
    if variant == "score":
        return gains
    weights = torch.zeros_like(gains)
    weights[torch.argmax(gains)] = 1.0
    if variant == "cognition-scissors":
        weights[torch.argmin(gains)] -= 1.0
    return weights


@register(
    MethodCard(
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
        strengths=("Groups strong and weak copies of a pattern together", "Deterministic with a seed"),
        weaknesses=("Channels with near-empty maps still get a direction",),
        params=(CLUSTERS, BLUR_BASELINE, SCORE, SEED),
        mask_spec=lambda layer, params: MaskSpec(
            layer, "kmeans", k=int(params["groups"]), rows="l2", seed=int(params["seed"]), baseline=params["baseline"]
        ),
    )
)
def cosinecam(inputs: CamInputs, groups: int, baseline: str, score: str, seed: int) -> MethodOutput:
    """Cluster score gains × cluster maps, clusters from cosine k-means."""
    return group_output(inputs, target_contributions(inputs, score))
