"""Score-CAM, Ablation-CAM, Group-, Cluster- and Cosine-CAM on the embedded model: the cached score matrices make a
class switch free, a new class of Group-CAM costs one batch, seeded clusters repeat, the head-only ablation equals
full passes, partial maps arrive and converge, and bad parameters name their range. The tests that count passes or
watch a computation start from a fresh Analysis of the session's model (no other test's cached quantities)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cam_core import CamError, methods
from cam_core.passes.inference import pass_chunk
from tests.conftest import cheap_settings, count_passes, fresh_analysis, pearson

# The single-layer methods that score masked or ablated inputs, from their cards.
SLOW_METHODS = tuple(card.id for card in methods()
                     if card.needs & {"mask_scores", "ablation_scores"} and not card.multi_layer)


CLASS_AGNOSTIC_PASSES = {"scorecam": {"layer": "features.16"}, "groupcam": {"groups_from": "activations"}}


@pytest.mark.parametrize("method", SLOW_METHODS)
def test_class_switch_runs_no_model_pass(method, mobilenet, chelsea):
    explainer = mobilenet
    analysis = fresh_analysis(explainer, chelsea)
    card = next(card for card in methods() if card.id == method)
    params = CLASS_AGNOSTIC_PASSES.get(method) or cheap_settings(card)
    first = analysis.cam(method, **params)
    head_modules = [step for step in explainer.model.head.steps if isinstance(step, torch.nn.Module)]
    with count_passes(explainer.model.module, explainer.fast_model(), *head_modules) as passes:
        for target in (282, 281, 1, 717):
            again = analysis.cam(method, target=target, **params)
            assert again.target == target and not np.array_equal(again.raw, first.raw)
    assert passes == [], f"{method}: a class switch ran {len(passes)} model passes"


def test_groupcam_costs_one_batch_of_group_passes_per_new_class(mobilenet, chelsea):
    """The paper's class-specific groups: a new class costs its baseline pass and one batch of its 32 masked
    inputs (run pass_chunk images a forward); a class seen before costs nothing."""
    explainer = mobilenet
    analysis = fresh_analysis(explainer, chelsea)
    analysis.cam("groupcam")
    with count_passes(explainer.fast_model()) as passes:
        analysis.cam("groupcam", target=717)
    card = next(card for card in methods() if card.id == "groupcam")
    scores = analysis.mask_scores(card.mask_spec(explainer.default_layer, card.resolve_params({}), 717))
    masked = len(scores.maps) - int(scores.skipped.sum())
    forwards = 1 + -(-masked // pass_chunk(explainer.fast_model()))
    assert len(passes) == forwards, f"a new class ran {len(passes)} passes, not a baseline and {masked} masked inputs"
    with count_passes(explainer.fast_model()) as passes:
        analysis.cam("groupcam", target=717)
        analysis.cam("groupcam")
    assert passes == []


def test_clustering_is_deterministic_with_a_seed(mobilenet, chelsea):
    maps = []
    for _ in range(2):
        analysis = fresh_analysis(mobilenet, chelsea)
        maps.append(analysis.cam("clustercam", groups=6, seed=3))
        maps.append(analysis.cam("cosinecam", groups=6, seed=3))
    np.testing.assert_array_equal(maps[0].raw, maps[2].raw)
    np.testing.assert_array_equal(maps[1].raw, maps[3].raw)


def test_ablation_through_the_head_equals_full_forward_passes(mobilenet, chelsea):
    analysis = mobilenet.analyze(chelsea)
    head_only = analysis.ablation_scores()
    assert head_only.head_only and head_only.logits.shape == (1280, 1000)
    full = mobilenet.ablate_full(analysis.input, mobilenet.default_layer, 48, batch_size=16)
    np.testing.assert_allclose(head_only.logits[:48].numpy(), full.numpy(), rtol=1e-4, atol=1e-4)


def test_partial_maps_arrive_and_converge(mobilenet, coffee):
    analysis = fresh_analysis(mobilenet, coffee)
    partials, progress = [], []
    final = analysis.cam("scorecam", layer="features.16", batch_size=16, partial=partials.append,
                         progress=lambda done, total: progress.append((done, total)))
    assert len(partials) >= 3 and progress[-1][0] == progress[-1][1]
    agreement = [pearson(p.saliency, final.saliency, "a partial map and the final one") for p in partials]
    assert agreement[-1] > 0.95 and agreement[0] > 0.5, agreement
    half = len(agreement) // 2
    assert np.mean(agreement[half:]) >= np.mean(agreement[:half]), agreement


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"groups": 1}, "groups must be between 2 and 256"),
        ({"groups": 2.5}, "groups must be a whole number"),
        ({"grouping": "random"}, "grouping must be one of contiguous, kmeans"),
        ({"baseline": "noise"}, "baseline must be one of blur, zero"),
    ],
)
def test_bad_parameters_name_the_valid_range(mobilenet, chelsea, params, message):
    with pytest.raises(CamError, match=message):
        mobilenet.analyze(chelsea).cam("groupcam", **params)
