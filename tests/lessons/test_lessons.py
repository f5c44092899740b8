"""Lessons (cam_core.lessons) on the embedded mobilenet_v2 and chelsea: every method taken apart step by step ends at
its own map, the steps show the API's numbers, and "why does it differ" finds where two methods part.

These lessons read the dashboard's own cached Explainer (tests.conftest.dashboard_explainer), as the Learn page's
tests (tests/ui/test_learn_page.py) do, so the lessons and the page read the same Analysis and every model pass runs
once. Score-CAM runs at features.16 (160 channels) and Poly-CAM on two cheap layers to keep their passes short.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from cam_core import methods, registry
from cam_core.inputs.examples import load_example
from cam_core.lessons import STAGES, Bars, Montage, compare_lessons, lesson
from cam_core.lessons.steps import relu_step, weighted_sum_step, weights_text
from cam_core.methods import common
from cam_core.methods import eigen as eigen_lessons
from cam_core.methods.cluster import cluster_weights
from cam_core.methods.common import principal_component, weighted_sum
from cam_core.registry import CamInputs, get_method
from tests.conftest import CHEAP_LAYER, CHEAP_PYRAMID, cheap_settings, skip_unless_runs_on

SCORE_LAYER = CHEAP_LAYER
IDS = [card.id for card in methods()]
CARDS = {card.id: card for card in methods()}


@pytest.fixture(scope="module")
def explainer(dashboard_explainer):
    return dashboard_explainer


@pytest.fixture(scope="module")
def analysis(explainer):
    return explainer.analyze(load_example("chelsea"))


def api_settings(method: str) -> dict:
    """The API's defaults, except where a method runs one masked pass per channel: layers with fewer channels."""
    return cheap_settings(CARDS[method])


@pytest.fixture(scope="module")
def lessons(analysis):
    """Lessons with the API's defaults (Score-CAM at SCORE_LAYER), computed once each."""
    found = {}

    def get(method: str):
        if method not in found:
            found[method] = lesson(analysis, method, **api_settings(method))
        return found[method]

    return get


def by_stage(story) -> dict:
    return {step.stage: step for step in story.steps}


# ------------------------------------------------------------------------------------------------ the lessons


@pytest.mark.parametrize("method", IDS)
def test_every_lesson_ends_at_the_methods_own_map(explainer, analysis, lessons, method):
    skip_unless_runs_on(explainer, CARDS[method])
    story = lessons(method)
    result = analysis.cam(method, **api_settings(method))
    scale = max(float(np.abs(result.raw).max()), 1e-12)
    np.testing.assert_allclose(story.raw, result.raw, rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(story.saliency, result.saliency, atol=1e-5)
    assert story.steps[-1].stage == "overlay"
    np.testing.assert_allclose(story.steps[-1].value, result.saliency, atol=1e-5)
    assert get_method(method).lesson is not None, "every method has a lesson of its own"
    assert all(step.stage in STAGES and step.heading and step.text and step.charts for step in story.steps)
    assert len({step.heading for step in story.steps}) == len(story.steps)


def test_layercam_over_the_pyramid_shows_each_layer_and_the_fusion(explainer, analysis):
    pyramid = explainer.model.pyramid()
    story = lesson(analysis, "layercam", layers=pyramid)
    np.testing.assert_allclose(story.raw, analysis.cam("layercam", layers=pyramid).raw, rtol=1e-5, atol=1e-6)
    steps = by_stage(story)
    assert [title.split(" (")[0] for title, _ in steps["layer maps"].charts[0].tiles] == pyramid
    assert "fusion" in steps and story.layers == tuple(pyramid)


def test_gradpolycam_starts_from_gradcams_map_and_refines_it(lessons):
    steps = by_stage(lessons("gradpolycam"))
    np.testing.assert_allclose(steps["weighted sum"].value, by_stage(lessons("gradcam"))["weighted sum"].value,
                               rtol=1e-5, atol=1e-7)
    sizes = [tile.shape for _, tile in steps["refine"].charts[0].tiles]
    assert sizes == [(7, 7), (14, 14), (28, 28), (56, 56)]


def test_a_method_without_a_lesson_gets_the_generic_lesson(analysis, monkeypatch):
    monkeypatch.setitem(registry._METHODS, "xgradcam", replace(get_method("xgradcam"), lesson=None))
    story = lesson(analysis, "xgradcam")
    assert [step.stage for step in story.steps] == ["activations", "weights", "map", "relu", "upsample", "overlay"]
    np.testing.assert_allclose(story.raw, analysis.cam("xgradcam").raw, rtol=1e-6)


def test_gradcams_weight_step_shows_the_apis_weights(analysis, lessons):
    weights = analysis.cam("gradcam").weights
    step = by_stage(lessons("gradcam"))["weights"]
    bars = step.charts[0]
    assert isinstance(bars, Bars) and len(bars.keys) == 12
    np.testing.assert_array_equal(bars.values, weights[list(bars.keys)])
    assert set(bars.keys) == set(np.argsort(-np.abs(weights), kind="stable")[:12].tolist())
    np.testing.assert_array_equal(step.value, weights)
    top = int(np.argmax(weights))
    assert f"The largest is channel {top} with {weights[top]:.3g}" in step.text
    assert "1280 weights" in step.text


def test_gradcampp_shows_alpha_and_its_own_weights(analysis, lessons):
    step = by_stage(lessons("gradcampp"))["weights"]
    np.testing.assert_array_equal(step.value, analysis.cam("gradcampp").weights)
    assert step.charts[1].tiles[0][0].startswith("α, channel")


def test_eigencam_singular_values_descend_and_the_sign_fix_agrees_with_the_mean_map(analysis, lessons):
    steps = by_stage(lessons("eigencam"))
    values = steps["singular values"].value
    assert values[0] > 0 and np.all(np.diff(values) <= 1e-9 * values[0])
    before, after = steps["component"].value, steps["sign fix"].value
    assert np.allclose(before, after) or np.allclose(before, -after)
    mean_map = analysis.activations().mean(dim=0).numpy()
    assert np.corrcoef(after.ravel(), mean_map.ravel())[0, 1] > 0
    assert ("flipped" in steps["sign fix"].text) == (not np.allclose(before, after))


def test_the_sign_fix_turns_an_upside_down_component_back(monkeypatch):
    maps = torch.tensor([[[0.0, 1.0], [2.0, 7.0]], [[0.0, 0.5], [1.0, 3.0]], [[1.0, 0.0], [0.0, 0.5]]])

    def run() -> tuple[torch.Tensor, list]:
        out = get_method("eigencam").apply(CamInputs(activations=maps, target=0), centre=True)
        return out.raw, eigen_lessons.principal_steps(maps, "activation", True, out.raw, out.weights)

    raw, steps = run()
    flipped = lambda centred: tuple(-part for part in principal_component(centred))  # noqa: E731
    monkeypatch.setattr(common, "principal_component", flipped)
    monkeypatch.setattr(eigen_lessons, "principal_component", flipped)
    flipped_raw, flipped_steps = run()
    assert torch.equal(raw, flipped_raw), "whichever sign the decomposition returns, the fixed map is the same"
    texts = {steps[-1].text.split(",")[0], flipped_steps[-1].text.split(",")[0]}
    assert texts == {"It correlates negatively with the channels' mean map", "It already correlates positively with "
                     "the channels' mean map"}
    assert raw[1, 1] == raw.max(), "the map is high where the channels fire"
    np.testing.assert_array_equal(steps[-1].value, raw.numpy())


def test_scorecam_shows_why_the_literal_softmax_flattens_the_map(analysis, lessons):
    steps = by_stage(lessons("scorecam"))
    literal = steps["softmax"].value
    count = literal.size
    assert abs(float(literal.sum()) - 1.0) < 1e-5
    assert literal.max() < 3 / count and literal.min() > 1 / (3 * count), "the literal weights stay near 1/C"
    assert f"1/{count}" in steps["softmax"].text and "correlate at r = " in steps["softmax"].text
    np.testing.assert_allclose(steps["weights"].value, analysis.cam("scorecam", layer=SCORE_LAYER).weights, rtol=1e-6)
    montage = steps["masked inputs"].charts[0]
    assert isinstance(montage, Montage) and [title for title, _ in montage.pictures][0] == "baseline"
    assert all(picture.shape == (224, 224, 3) and picture.dtype == np.uint8 for _, picture in montage.pictures)
    assert [step.stage for step in lessons("scorecam").steps][:7] == ["activations", "masks", "masked inputs",
                                                                     "scores", "softmax", "weights", "weighted sum"]


def test_polycam_refines_its_perturbation_maps_coarse_to_fine(analysis, lessons):
    story = lessons("polycam")
    steps = by_stage(story)
    assert [step.stage for step in story.steps][:5] == ["activations", "masks", "scores", "layer maps", "refine"]
    assert [tile.shape for _, tile in steps["refine"].charts[0].tiles] == [(7, 7), (14, 14)]
    assert story.layers == CHEAP_PYRAMID


def test_ablationcam_shows_the_ablated_scores_against_the_original(analysis, lessons):
    steps = by_stage(lessons("ablationcam"))
    bars = steps["scores"].charts[0]
    ablation = analysis.ablation_scores()
    target = analysis.target(None)
    assert bars.reference == pytest.approx(float(ablation.original[target]))
    np.testing.assert_array_equal(bars.values, ablation.logits[list(bars.keys), target].numpy())


@pytest.mark.parametrize("method", ["groupcam", "clustercam", "cosinecam"])
def test_group_lessons_show_the_groups_masks_scores_and_weighting(lessons, method):
    steps = by_stage(lessons(method))
    assert {"clusters", "masks", "masked inputs", "scores", "weights"} <= set(steps)
    sizes = steps["clusters"].charts[0]
    assert int(sizes.values.sum()) == 1280 and len(sizes.keys) == CARDS[method].params[0].default
    gains = torch.from_numpy(steps["scores"].value)
    expected = {"groupcam": gains.clamp(min=0), "clustercam": cluster_weights(gains, "score"),
                "cosinecam": gains}[method]
    np.testing.assert_array_equal(steps["weights"].value, expected.numpy())


def test_step_texts_carry_the_numbers_of_a_hand_made_example():
    weights = torch.tensor([0.1, -0.5, 0.3, 0.0])
    assert weights_text(weights) == ("4 weights, 2 positive and 1 negative. The largest is channel 2 with 0.3; the "
                                     "most negative is channel 1 with -0.5.")
    maps = torch.tensor([[[1.0, 2.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]], [[2.0, 0.0], [0.0, 0.0]],
                         [[5.0, 5.0], [5.0, 5.0]]])
    raw = weighted_sum(weights, maps)
    torch.testing.assert_close(raw, torch.tensor([[0.7, -0.3], [-0.5, 0.1]]))
    assert "one 2×2 map from -0.5 to 0.7" in weighted_sum_step(weights, maps, raw).text
    assert "2 of the map's 4 positions are negative" in relu_step(raw).text


# ----------------------------------------------------------------------------------------- why does it differ


@pytest.mark.parametrize("first, second, index, shared", [
    ("gradcam", "hirescam", 2, ("activations", "gradients")),
    ("gradcam", "gradcampp", 2, ("activations", "gradients")),
    ("gradcam", "eigencam", 1, ("activations",)),
    ("gradcam", "gradpolycam", 4, ("activations", "gradients", "weights", "weighted sum")),
])
def test_known_partings(lessons, first, second, index, shared):
    parting = compare_lessons(lessons(first), lessons(second))
    assert (parting.index, parting.shared) == (index, shared)
    assert parting.stage == lessons(first).steps[index].stage
    backwards = compare_lessons(lessons(second), lessons(first))
    assert (backwards.index, backwards.shared) == (index, shared)


def test_the_parting_explains_itself(lessons):
    parting = compare_lessons(lessons("gradcam"), lessons("gradcampp"))
    assert parting.stage == parting.other_stage == "weights" and not parting.same_result
    assert parting.summary.startswith("Both use the same activations and gradients; they part at the channel weights.")
    assert "Grad-CAM: the mean of each channel's gradient" in parting.summary
    assert "Grad-CAM++: the positive gradient weighted by α" in parting.summary
    hires = compare_lessons(lessons("gradcam"), lessons("hirescam"))
    assert hires.stage == "weights" and hires.other_stage == "product"
    assert hires.same_result, "at a pooling → linear head HiRes-CAM's map is Grad-CAM's"


def test_a_method_never_parts_from_itself(analysis, lessons):
    for method in ("gradcam", "eigencam", "scorecam", "polycam"):
        assert compare_lessons(lessons(method), lessons(method)) is None
    assert compare_lessons(lesson(analysis, "gradcam"), lessons("gradcam")) is None


def test_the_activations_explain_relu6s_cap_and_sizes_read_width_by_height(analysis):
    story = lesson(analysis, "gradcam")
    acts = analysis.activations()
    assert float(acts.max()) == 6.0, "chelsea at features.18 reaches MobileNetV2's cap"
    assert "ReLU6 clips every activation at 6" in story.steps[0].text
    height, width = analysis.size
    assert height != width
    upsample = next(step for step in story.steps if step.stage == "upsample")
    assert f"{width}×{height} pixels (width × height)" in upsample.text
    overlay = story.steps[-1].charts[0]
    kept = np.maximum(story.raw, 0)
    assert overlay.high == pytest.approx(float(kept.max()), rel=1e-3) and overlay.low >= 0
