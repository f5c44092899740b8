"""The lesson of a method without a dedicated one: its inputs, its weights if it has them, its map."""

from __future__ import annotations

from cam_core.lessons.steps import (
    SHOWN_CHANNELS,
    Heatmaps,
    Source,
    Step,
    activations_step,
    array,
    num,
    shape,
    top,
    weight_bars,
    weights_text,
)


def generic(source: Source) -> list[Step]:
    """activations → weights (where the method has one per channel) → the method's map."""
    acts = source.activations()
    weights = source.weights
    has_weights = weights is not None and weights.shape == acts.shape[:1]
    channels = top(weights if has_weights else acts.sum(dim=(1, 2)), SHOWN_CHANNELS)
    steps = [activations_step(source, channels, "the largest weights" if has_weights else "the most active")]
    if has_weights:
        steps.append(Step("weights", "The channel weights", f"{source.card.summary} {weights_text(weights)}",
                          f"{source.card.name}'s channel weights", (weight_bars(weights, "weight"),), array(weights)))
    raw = source.raw
    steps.append(Step("map", f"{source.card.name}'s map",
                      f"{source.card.explanation} The map is {shape(raw)}, from {num(raw.min())} to {num(raw.max())}.",
                      f"{source.card.name}'s own arithmetic", (Heatmaps((("the map", array(raw)),), True),),
                      array(raw)))
    return steps
