"""Lessons of Score-CAM and Ablation-CAM: channel weights from what the network says about altered inputs."""

from __future__ import annotations

import torch

from ..masking import baseline_input, masked_inputs, normalized_masks
from ..methods.common import weighted_sum
from ..methods.score import ablation_weights, score_gains, scorecam_weights
from ..scores import MaskScores, MaskSpec
from .gradient import FOCUS, focus
from .steps import (
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
    top,
    weight_bars,
    weighted_sum_step,
    weights_text,
)

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


def scores_step(source: Source, scores: MaskScores, gains: torch.Tensor, what: str) -> Step:
    """The class score of each masked input against the baseline's."""
    if source.params["score"] == "logit":
        values, baseline, name = scores.logits[:, source.target], scores.baseline_logits[source.target], "logit"
    else:
        values = scores.probabilities[:, source.target]
        baseline, name = scores.baseline_probabilities[source.target], "probability"
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


def scorecam(source: Source) -> Story:
    acts = source.activations()
    spec = source.card.mask_spec(source.layer, source.params)
    scores = source.analysis.mask_scores(spec, progress=source.progress)
    gains = score_gains(scores, source.target, source.params["score"])
    softmax = bool(source.params["softmax"])
    weights = scorecam_weights(gains, softmax)
    channels = top(weights, SHOWN_CHANNELS)
    count = weights.numel()
    if softmax:
        best = int(torch.argmax(weights))
        weighting = Step(
            "softmax", "The softmax over channels",
            f"The softmax turns the {count} gains into weights that add up to {float(weights.sum()):.3f}. The largest, "
            f"channel {best}, gets {num(weights[best])}; an even share would be 1/{count} = {num(1 / count)}. Gains of "
            "a fraction of a probability barely separate after the exponential, so the weights stay close to even.",
            "a softmax over the channels' score gains",
            (weight_bars(weights, "weight"),), array(weights))
    else:
        weighting = Step("weights", "The gains are the weights", f"Without the softmax each gain is its channel's "
                         f"weight. {weights_text(weights)}", "the score gains themselves",
                         (weight_bars(weights, "weight"),), array(weights))
    raw = weighted_sum(weights.to(acts.dtype), acts)
    return [activations_step(source, channels, "the ones with the largest weights (found below)"),
            *mask_steps(source, spec, scores, channels, "channel"), scores_step(source, scores, gains, "channel"),
            weighting, weighted_sum_step(weights, acts, raw)], raw


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
                     f"A channel's weight is how far the logit falls without it, relative to the logit: "
                     f"(y − yₖ) / y. {weights_text(weights)}", "the relative drop of the logit without the channel",
                     (weight_bars(weights, "weight"),), array(weights))
    raw = weighted_sum(weights.to(acts.dtype), acts)
    return [activations_step(source, channels, FOCUS), scores, weighting, weighted_sum_step(weights, acts, raw)], raw
