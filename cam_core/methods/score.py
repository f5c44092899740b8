"""Score-CAM and Ablation-CAM: channel weights from what the network says about masked or ablated inputs."""

from __future__ import annotations

import torch

from cam_core.inputs.mask_scores import AblationScores, MaskScores, MaskSpec
from cam_core.methods.common import weighted_sum
from cam_core.registry import CamInputs, MethodCard, MethodOutput, Param, register

BASELINE = Param("baseline", "zeros", "what masked-out pixels become: zeros (the mean colour) or a blurred copy",
                 choices=("zeros", "blur"))
SCORE = Param("score", "probability", "the class score compared: post-softmax probability or the logit",
              choices=("probability", "logit"))


def score_gains(scores: MaskScores, target: int, score: str) -> torch.Tensor:
    """Each mask's score for target minus the baseline's: post-softmax probabilities, or logits for "logit"."""
    if score == "logit":
        return scores.logits[:, target] - scores.baseline_logits[target]
    return scores.probabilities[:, target] - scores.baseline_probabilities[target]


WEIGHTINGS = {
    "probability": "the masked input's post-softmax probability of the class (the authors' code)",
    "logit softmax": "a softmax over channels of the masked inputs' logits of the class (pytorch-grad-cam)",
    "gain softmax": "a softmax over channels of the probability gains over the baseline (the paper's equations, "
    "taken literally: nearly uniform weights, see Learn)",
    "gain": "the probability gains over the baseline, no softmax",
}


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
            "fires on remain; the masked image goes through the whole network. By default the channel's weight is "
            "the class's post-softmax probability for that masked image, as the authors' code computes it. The "
            "paper writes the weight as a softmax over channels of the probability gains over a baseline; taken "
            "literally, gains of a few hundredths pass through a softmax over about a thousand channels and come out "
            "almost equal, so the map flattens into the channels' mean, the same for every class (the Learn page "
            "shows this on your image). Gradients play no part, so saturation and noise do not either, but it costs "
            "one forward pass per channel. Here every class's score is kept from the same passes, so switching the "
            "class is instant, and channels whose map is constant are known to give the baseline and skipped."
        ),
        formula=r"H^k = \mathrm{norm}\big(\mathrm{up}(A^k)\big) \qquad "
        r"\alpha^c_k = \mathrm{softmax}\big(f(X \circ H^k)\big)_c \qquad "
        r"L^c = \mathrm{ReLU}\Big(\sum_k \alpha^c_k A^k\Big)",
        paper="Wang et al., Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural Networks, "
        "CVPR Workshops 2020 (weights as in the authors' code, haofanwang/Score-CAM)",
        strengths=("No gradients: no saturation, no noise", "Any layer, any architecture", "Faithful by construction"),
        weaknesses=(
            "One forward pass per channel (slow cold)",
            "The paper's literal softmax over probability gains flattens the weights into a class-agnostic map",
        ),
        params=(
            Param("weights", "probability", "what a channel's weight is: "
                  + "; ".join(f"{name}: {meaning}" for name, meaning in WEIGHTINGS.items()),
                  choices=tuple(WEIGHTINGS)),
            BASELINE,
            Param("align_corners", False, "upsample masks with aligned corners, as pytorch-grad-cam does (shifts "
                  "evidence by up to half a cell); off puts each cell over the patch it covers"),
        ),
        mask_spec=lambda layer, params, target: MaskSpec(
            layer, "channels", baseline=params["baseline"], align_corners=bool(params["align_corners"])
        ),
    )
)
def scorecam(inputs: CamInputs, weights: str, baseline: str, align_corners: bool) -> MethodOutput:
    """Channel weights from the masked inputs' scores × activations."""
    found = scorecam_weights(inputs.mask_scores, inputs.target, weights)
    return MethodOutput(weighted_sum(found.to(inputs.activations.dtype), inputs.activations), found)


def scorecam_weights(scores: MaskScores, target: int, weights: str) -> torch.Tensor:
    """Score-CAM's channel weights under one of WEIGHTINGS."""
    if weights == "probability":
        return scores.probabilities[:, target]
    if weights == "logit softmax":
        return torch.softmax(scores.logits[:, target], dim=0)
    gains = score_gains(scores, target, "probability")
    return torch.softmax(gains, dim=0) if weights == "gain softmax" else gains


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
            "original score. The paper divides by the score itself, which turns every weight, and so the map, upside "
            "down for a class whose logit is negative (about half the classes of an image); here the drop is divided "
            "by the score's magnitude, which is the same for positive logits and keeps the sign for negative ones. "
            "Where the model splits into features and a classifier head at the layer, the ablated "
            "activations only need to pass through the head, a few milliseconds for all channels and all classes "
            "at once; elsewhere it takes one full forward pass per channel. The shared model is never modified."
        ),
        formula=r"w^c_k = \frac{y^c - y^c_{A^k=0}}{|y^c|} \qquad L^c = \mathrm{ReLU}\Big(\sum_k w^c_k A^k\Big)",
        paper="Desai & Ramaswamy, Ablation-CAM: Visual Explanations for Deep Convolutional Network via "
        "Gradient-free Localization, WACV 2020",
        strengths=("No gradients", "Cheap through the head alone"),
        weaknesses=("Division by the score: unstable when it is near zero", "Zero is not 'absent' for layers with "
                    "negative activations", "Differs from the paper by |y^c| for y^c < 0, where the paper's map is "
                    "inverted"),
        logit_shift_invariant=False,
    )
)
def ablationcam(inputs: CamInputs) -> MethodOutput:
    """Relative drop of the target's logit with each channel ablated × activations."""
    weights = ablation_weights(inputs.ablation, inputs.target)
    return MethodOutput(weighted_sum(weights.to(inputs.activations.dtype), inputs.activations), weights)


def ablation_weights(ablation: AblationScores, target: int) -> torch.Tensor:
    """Ablation-CAM's channel weights: the target logit's drop with each channel zeroed, relative to the logit's
    magnitude (so a negative logit does not flip the weights)."""
    original = ablation.original[target]
    return (original - ablation.logits[:, target]) / original.abs()
