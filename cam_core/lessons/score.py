"""Lessons of Score-CAM and Ablation-CAM: channel weights from what the network says about altered inputs."""

from __future__ import annotations

import torch

from cam_core.inputs.mask_scores import MaskScores, MaskSpec
from cam_core.inputs.masking import baseline_input, masked_inputs, normalized_masks
from cam_core.lessons.gradient import FOCUS, focus
from cam_core.lessons.steps import (
    SHOWN_BARS,
    SHOWN_CHANNELS,
    Bars,
    Heatmaps,
    Line,
    Source,
    Step,
    Story,
    activations_step,
    array,
    input_pictures,
    num,
    signed,
    top,
    weight_bars,
    weighted_sum_step,
    weights_text,
)
from cam_core.methods.common import weighted_sum
from cam_core.methods.score import ablation_weights, score_gains, scorecam_weights

BASELINES = {"zeros": "the all-zero input (the training images' mean colour)", "blur": "a heavily blurred copy"}


def mask_steps(source: Source, spec: MaskSpec, scores: MaskScores, shown: list[int], what: str) -> list[Step]:
    """masks → masked inputs for the masks in shown."""
    size = source.analysis.input.shape[-1]
    masks, _ = normalized_masks(scores.maps[shown], size, spec.align_corners)
    base = baseline_input(source.analysis.input, spec.baseline)
    masked = masked_inputs(source.analysis.input, base, masks)
    skipped = int(scores.skipped.sum())
    count = scores.maps.shape[0]
    return [
        Step("masks", f"Each {what} becomes a mask",
             f"Each of the {count} {what} maps is upsampled to the {size}×{size} input and scaled to [0, 1]: 1 where "
             f"it fires most, 0 where least. {skipped} of them are constant, so their mask is empty and their input is "
             "the baseline itself: they are not run.",
             f"each {what} map upsampled to the input and scaled to [0, 1]",
             (Heatmaps(tuple((f"mask of {what} {k}", array(masks[i, 0])) for i, k in enumerate(shown))),),
             array(scores.maps)),
        Step("masked inputs", "The masked inputs",
             f"Each mask keeps the image where it is high and {BASELINES[spec.baseline]} elsewhere: "
             "X_b + H ⊙ (X − X_b). "
             f"Every masked input goes through the whole network: {count - skipped} passes, once for this image, "
             "shared by every class.",
             f"the image under each mask, {BASELINES[spec.baseline]} elsewhere",
             (input_pictures(source, torch.cat([base, masked]), ["baseline", *[f"{what} {k}" for k in shown]]),),
             array(base)),
    ]


def scores_step(source: Source, scores: MaskScores, gains: torch.Tensor, what: str, name: str = "") -> Step:
    """The class score (name: "logit" or "probability") of each masked input against the baseline's."""
    name = name or source.params["score"]
    if name == "logit":
        values, baseline = scores.logits[:, source.target], scores.baseline_logits[source.target]
    else:
        values, baseline = scores.probabilities[:, source.target], scores.baseline_probabilities[source.target]
    best = int(torch.argmax(gains))
    keys = top(gains, SHOWN_BARS)
    return Step(
        "scores", "Their scores against the baseline",
        f"The network's {name} of “{source.label}” is {num(baseline)} on the baseline and {num(values[best])} on "
        f"{what} {best}'s masked input, a gain of {float(gains[best]):+.3g}, the largest. "
        f"{int((gains > 0).sum())} of {gains.numel()} masks raise the score.",
        f"the class {name} of each masked input minus the baseline's",
        (Bars(f"{name} of “{source.label}” on the masked inputs with the largest gains", what, tuple(keys), name,
              array(values[keys]), float(baseline), "baseline"),
         Line(f"all {gains.numel()} gains, sorted", f"{what} (by rank)", "gain",
              array(gains.sort(descending=True).values))),
        array(gains),
    )


WEIGHTING_TEXT = {
    "probability": "As in the authors' code, a channel's weight is the probability of “{label}” on its masked input "
    "itself.",
    "logit softmax": "As in pytorch-grad-cam, the weights are a softmax over the channels of the masked inputs' logits "
    "of “{label}”; logits differ by whole units, so the softmax separates them.",
    "gain softmax": "As the paper's equations are written, the weights are a softmax over the channels of the "
    "probability gains.",
    "gain": "Each channel's probability gain over the baseline is its weight.",
}


def other_class(source: Source) -> int:
    """The class a lesson compares with: the top class, or the second most probable where this is the top class."""
    ranked = source.analysis.top_k(2)
    return ranked[1][0] if ranked[0][0] == source.target else ranked[0][0]


def flattening_step(source: Source, scores: MaskScores, acts: torch.Tensor) -> Step:
    """Why the paper's softmax over probability gains, taken literally, gives nearly one map for every class."""
    other = other_class(source)
    labels = source.analysis.explainer.labels
    count = acts.shape[0]
    literal = scorecam_weights(scores, source.target, "gain softmax")
    literal_other = scorecam_weights(scores, other, "gain softmax")
    gains = score_gains(scores, source.target, "probability")
    flat = [weighted_sum(w.to(acts.dtype), acts) for w in (literal, literal_other)]
    mean = acts.mean(dim=0)
    weighted = [weighted_sum(scorecam_weights(scores, c, source.params["weights"]).to(acts.dtype), acts)
                for c in (source.target, other)]

    def r(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]).double())[0, 1])

    return Step(
        "softmax", "Why the paper's softmax, taken literally, flattens the map",
        f"The gains of “{labels[source.target]}” lie between {float(gains.min()):+.3g} and {float(gains.max()):+.3g}: "
        f"probabilities move by fractions. The exponential of such small numbers is close to 1 for every channel, so "
        f"the softmax over the {count} channels gives weights from {num(literal.min())} to {num(literal.max())}, "
        f"where an even share is 1/{count} = {num(1 / count)}. The map is then almost the plain mean of the channels "
        f"(r = {r(flat[0], mean):.3f}) and hardly depends on the class: its map and that of “{labels[other]}” "
        f"correlate at r = {r(flat[0], flat[1]):.3f}. With the weights chosen here ({source.params['weights']}) the "
        f"two classes' maps correlate at r = {r(weighted[0], weighted[1]):.3f}.",
        "a softmax over probability gains, as the paper writes it",
        (Line(f"the literal softmax weights, sorted (even share {num(1 / count)})", "channel (by rank)", "weight",
              array(literal.sort(descending=True).values)),
         Heatmaps(((f"literal: “{labels[source.target]}”", array(flat[0])), (f"literal: “{labels[other]}”",
                    array(flat[1])), ("the channels' mean", array(mean)),
                   (f"{source.params['weights']}: “{labels[source.target]}”", array(weighted[0])),
                   (f"{source.params['weights']}: “{labels[other]}”", array(weighted[1]))), signed(acts))),
        array(literal),
    )


def scorecam(source: Source) -> Story:
    acts = source.activations()
    spec = source.card.mask_spec(source.layer, source.params, source.target)
    scores = source.analysis.mask_scores(spec, progress=source.progress)
    choice = source.params["weights"]
    gains = score_gains(scores, source.target, "probability")
    weights = scorecam_weights(scores, source.target, choice)
    channels = top(weights, SHOWN_CHANNELS)
    weighting = Step("weights", "The channel weights", WEIGHTING_TEXT[choice].format(label=source.label) + " "
                     + weights_text(weights), f"weights by {choice}", (weight_bars(weights, "weight"),),
                     array(weights))
    raw = weighted_sum(weights.to(acts.dtype), acts)
    return [activations_step(source, channels, "the ones with the largest weights (found below)"),
            *mask_steps(source, spec, scores, channels, "channel"),
            scores_step(source, scores, gains, "channel", "probability"),
            flattening_step(source, scores, acts), weighting, weighted_sum_step(weights, acts, raw)], raw


def ablationcam(source: Source) -> Story:
    acts = source.activations()
    ablation = source.analysis.ablation_scores(source.layer, progress=source.progress)
    weights = ablation_weights(ablation, source.target)
    channels = focus(weights, acts)
    original = float(ablation.original[source.target])
    ablated = ablation.logits[:, source.target]
    keys = top(ablated - original, SHOWN_BARS)
    worst = keys[0]
    route = "the head alone (the layers after it)" if ablation.head_only else "the whole network (one pass each)"
    scores = Step(
        "scores", "The class score with each channel switched off",
        f"Each of the {acts.shape[0]} channels is set to zero in turn and the rest goes through {route}. The logit of "
        f"“{source.label}” is {num(original)} with every channel; without channel {worst} it is "
        f"{num(ablated[worst])}, the biggest change.",
        "the class logit with each channel set to zero",
        (Bars("logit with the channel zeroed (largest changes)", "channel", tuple(keys), "ablated logit",
              array(ablated[keys]), original, "every channel"),),
        array(ablated),
    )
    weighting = Step("weights", "The channel weights: the relative drop",
                     f"A channel's weight is how far the logit falls without it, relative to the logit's size: "
                     f"(y − yₖ) / |y|. The paper divides by y itself, which for a negative logit, here "
                     f"{'' if original < 0 else 'not '}the case, would turn every weight upside down. "
                     f"{weights_text(weights)}", "the relative drop of the logit without the channel",
                     (weight_bars(weights, "weight"),), array(weights))
    raw = weighted_sum(weights.to(acts.dtype), acts)
    return [activations_step(source, channels, FOCUS), scores, weighting, weighted_sum_step(weights, acts, raw)], raw
