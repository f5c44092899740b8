"""Score-CAM and Ablation-CAM: channel weights from what the network says about masked or ablated inputs."""

from __future__ import annotations

import torch

from ..registry import CamInputs, MethodCard, MethodOutput, Param, register
from ..scores import AblationScores, MaskScores, MaskSpec
from .common import weighted_sum

BASELINE = Param("baseline", "zeros", "what masked-out pixels become: zeros (the mean colour) or a blurred copy",
                 choices=("zeros", "blur"))
SCORE = Param("score", "probability", "the class score compared: post-softmax probability or the logit",
              choices=("probability", "logit"))


def target_contributions(inputs: CamInputs, score: str) -> torch.Tensor:
    """Each mask's score for the target minus the baseline's (probabilities or logits)."""
    return score_gains(inputs.mask_scores, inputs.target, score)


def score_gains(scores: MaskScores, target: int, score: str) -> torch.Tensor:
    """Each mask's score for target minus the baseline's: post-softmax probabilities, or logits for "logit"."""
    if score == "logit":
        return scores.logits[:, target] - scores.baseline_logits[target]
    return scores.probabilities[:, target] - scores.baseline_probabilities[target]


@register(
    MethodCard(
        id="scorecam",
        name="Score-CAM",
        family="Channel weighting",
        needs=frozenset({"mask_scores"}),
        cost="slow",
        summary="Each channel, used as a mask on the image, is scored by the network itself: no gradients.",
        explanation=(
            "Score-CAM asks the network directly how much each channel matters. Every channel's map is upsampled "
            "to the input size, scaled to [0, 1] and multiplied with the image, so only the regions that channel "
            "fires on remain; the masked image goes through the whole network. The channel's weight is how much the "
            "class score rises over a baseline image (softmax over the channels). Gradients play no part, so "
            "saturation and noise do not either, but it costs one forward pass per channel. Here every class's "
            "score is kept from the same passes, so switching the class is instant, and channels whose map is "
            "constant are known to give the baseline and skipped."
        ),
        formula=r"H^k = \mathrm{norm}\big(\mathrm{up}(A^k)\big) \qquad C^c_k = f^c\big(X_b + H^k\circ(X - X_b)\big) - "
        r"f^c(X_b) \qquad \alpha^c = \mathrm{softmax}_k(C^c) \qquad L^c = \mathrm{ReLU}\Big(\sum_k \alpha^c_k A^k\Big)",
        paper="Wang et al., Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural Networks, "
        "CVPR Workshops 2020",
        strengths=("No gradients: no saturation, no noise", "Any layer, any architecture", "Faithful by construction"),
        weaknesses=(
            "One forward pass per channel (slow cold)",
            "Softmax over small probability gains flattens weights",
        ),
        params=(
            BASELINE,
            SCORE,
            Param("softmax", True, "normalise the contributions with a softmax over channels (the paper does)"),
            Param("align_corners", False, "upsample masks with aligned corners, as pytorch-grad-cam does (shifts "
                  "evidence by up to half a cell); off puts each cell over the patch it covers"),
        ),
        mask_spec=lambda layer, params: MaskSpec(
            layer, "channels", baseline=params["baseline"], align_corners=bool(params["align_corners"])
        ),
    )
)
def scorecam(inputs: CamInputs, baseline: str, score: str, softmax: bool, align_corners: bool) -> MethodOutput:
    """Softmax of each channel-masked input's score gain × activations."""
    weights = scorecam_weights(target_contributions(inputs, score), softmax)
    return MethodOutput(weighted_sum(weights.to(inputs.activations.dtype), inputs.activations), weights)


def scorecam_weights(contributions: torch.Tensor, softmax: bool) -> torch.Tensor:
    """Score-CAM's channel weights: the softmax over channels of their score gains, or the gains themselves."""
    return torch.softmax(contributions, dim=0) if softmax else contributions


@register(
    MethodCard(
        id="ablationcam",
        name="Ablation-CAM",
        family="Channel weighting",
        needs=frozenset({"ablation_scores"}),
        cost="fast",
        summary="Each channel is switched off; the drop of the class score is its weight.",
        explanation=(
            "Ablation-CAM removes one channel at a time (sets it to zero) and measures how far the class score "
            "falls: a channel the decision rests on leaves a large gap. The weight is that drop relative to the "
            "original score. Where the model splits into features and a classifier head at the layer, the ablated "
            "activations only need to pass through the head, a few milliseconds for all channels and all classes "
            "at once; elsewhere it takes one full forward pass per channel. The shared model is never modified."
        ),
        formula=r"w^c_k = \frac{y^c - y^c_{A^k=0}}{y^c} \qquad L^c = \mathrm{ReLU}\Big(\sum_k w^c_k A^k\Big)",
        paper="Desai & Ramaswamy, Ablation-CAM: Visual Explanations for Deep Convolutional Network via "
        "Gradient-free Localization, WACV 2020",
        strengths=("No gradients", "Cheap through the head alone"),
        weaknesses=("Division by the score: unstable when it is near zero", "Zero is not 'absent' for layers with "
                    "negative activations"),
    )
)
def ablationcam(inputs: CamInputs) -> MethodOutput:
    """Relative drop of the target's logit with each channel ablated × activations."""
    weights = ablation_weights(inputs.ablation, inputs.target)
    return MethodOutput(weighted_sum(weights.to(inputs.activations.dtype), inputs.activations), weights)


def ablation_weights(ablation: AblationScores, target: int) -> torch.Tensor:
    """Ablation-CAM's channel weights: the target logit's drop with each channel zeroed, relative to the logit."""
    original = ablation.original[target]
    return (original - ablation.logits[:, target]) / original
