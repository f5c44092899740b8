"""Lessons of Group-CAM, Cluster-CAM and Cosine-CAM: channels grouped, each group scored as one mask."""

from __future__ import annotations

from typing import Callable

import torch

from cam_core.lessons.score import mask_steps, scores_step
from cam_core.lessons.steps import (
    SHOWN_CHANNELS,
    Bars,
    Heatmaps,
    Source,
    Step,
    Story,
    activations_step,
    array,
    top,
    weight_bars,
    weighted_sum_step,
    weights_text,
)
from cam_core.methods.cluster import cluster_weights, group_map
from cam_core.methods.score import score_gains

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


def grouped(source: Source, weigh: Callable[[torch.Tensor], torch.Tensor], text: str, how: str) -> Story:
    """activations → groups → masks → masked inputs → scores → weights → weighted sum of the groups' maps."""
    spec = source.card.mask_spec(source.layer, source.params, source.target)
    scores = source.analysis.mask_scores(spec, progress=source.progress)
    score = source.params.get("score", "probability")
    gains = score_gains(scores, source.target, score)
    weights = weigh(gains)
    maps = scores.maps
    raw = group_map(weights, maps)
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
    ], raw


GAINS = ("The score gains are the groups' weights as they are: no softmax (Score-CAM's softmax would flatten so few "
         "weights).")


GAINS_HOW = "the groups' score gains as they are"


def groupcam(source: Source) -> Story:
    return grouped(source, lambda gains: gains.clamp(min=0), "A group's weight is its probability gain, a fall "
                   "counting as zero (as in the authors' code): no softmax.", "the groups' positive probability gains")


def cosinecam(source: Source) -> Story:
    return grouped(source, lambda gains: gains, GAINS, GAINS_HOW)


def clustercam(source: Source) -> Story:
    variant = source.params["variant"]
    texts = {
        "score": (GAINS, GAINS_HOW),
        "cognition": ("The paper merges two cognition maps: the cognition-base, the cluster that raises the score "
                      "most (weight +1), minus the cognition-scissors, the cluster that raises it least (weight −1); "
                      "every other cluster gets 0.", "+1 for the best cluster, −1 for the worst"),
    }
    return grouped(source, lambda gains: cluster_weights(gains, variant), *texts[variant])
