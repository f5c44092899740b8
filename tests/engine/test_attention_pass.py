"""The attention pass on random-weight ViT and DeiT: the probabilities of every block in the graph, the model's own
logits, the shared model left as it was, one backward per class, and the models without such attention refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cam_core import CamError, Explainer
from cam_core.lessons import lesson
from cam_core.registry import get_method
from tests.conftest import count_passes, fresh_analysis, hook_counts, module_state, run_threads

TRANSFORMERS = ("vit_small_patch16_224", "deit_small_patch16_224")
ATTENTION_METHODS = ("rollout", "chefer")


@pytest.fixture(scope="module", params=TRANSFORMERS)
def transformer(request) -> Explainer:
    torch.manual_seed(0)
    return Explainer(request.param, weights="random")


def test_the_pass_gives_the_models_own_logits_and_every_blocks_probabilities(transformer, chelsea):
    analysis = fresh_analysis(transformer, chelsea)
    found = transformer.attention_pass(analysis.input)
    with torch.no_grad():
        ordinary = transformer.model.module(analysis.input)[0]
    scale = float(ordinary.abs().max())
    torch.testing.assert_close(found.logits.detach()[0], ordinary, rtol=1e-5, atol=1e-5 * scale)
    probabilities = list(found.activations.values())
    assert list(found.activations) == [f"blocks.{i}.attn.attn_drop" for i in range(12)]
    for block in probabilities:
        assert block.shape == (1, 6, 197, 197) and block.requires_grad
        torch.testing.assert_close(block.detach().sum(dim=-1), torch.ones(1, 6, 197))
    gradients = torch.autograd.grad(found.logits[0, 3], probabilities)
    assert all(torch.any(gradient) for gradient in gradients), "every block's attention reaches the logits"


def test_the_shared_model_keeps_its_fused_attention_and_no_hook(transformer, chelsea):
    shared = transformer.model.module
    before = module_state(shared)
    analysis = fresh_analysis(transformer, chelsea)
    analysis.cam("chefer", target=7)
    analysis.cam("rollout")
    assert all(block.attn.fused_attn for block in shared.blocks)
    after = module_state(shared)
    assert after["types"] == before["types"] and after["requires_grad"] == before["requires_grad"]
    assert all(torch.equal(tensor, after["tensors"][name]) for name, tensor in before["tensors"].items())
    assert hook_counts(shared) == {}


def test_a_class_switch_runs_no_forward_pass_and_each_class_one_backward(transformer, chelsea):
    analysis = fresh_analysis(transformer, chelsea)
    first = analysis.cam("chefer", target=1)
    before = analysis.nbytes
    with count_passes(transformer.model.module) as passes:
        second = analysis.cam("chefer", target=2)
        again = analysis.attention_gradients(2)
        analysis.cam("rollout")
        analysis.cam("rollout", fusion="max", discard_ratio=0.5)
    assert passes == []
    assert again is analysis.attention_gradients(2)
    assert analysis.nbytes > before, "the second class's gradients are counted in the cache"
    assert not np.allclose(first.raw, second.raw)


def test_rollout_is_one_map_for_every_class_and_chefer_one_per_class(transformer, chelsea):
    analysis = transformer.analyze(chelsea)
    assert np.array_equal(analysis.cam("rollout", target=0).raw, analysis.cam("rollout", target=999).raw)
    maps = [analysis.cam("chefer", target=target).raw for target in (0, 999)]
    assert maps[0].shape == (14, 14) and not np.allclose(*maps)
    assert min(float(m.min()) for m in maps) >= 0.0


def test_threads_asking_for_several_classes_get_their_solo_maps(transformer, chelsea):
    alone = fresh_analysis(transformer, chelsea)
    solo = {target: alone.cam("chefer", target=target).raw for target in (5, 6, 7)}
    shared = fresh_analysis(transformer, chelsea)
    together = run_threads(lambda target: shared.cam("chefer", target=target).raw, [5, 6, 7, 5], timeout=120)
    for target, found in zip([5, 6, 7, 5], together, strict=True):
        np.testing.assert_allclose(found, solo[target], rtol=1e-5, atol=1e-6 * float(np.abs(solo[target]).max()))


@pytest.mark.parametrize("method", ATTENTION_METHODS)
def test_each_lesson_ends_at_its_methods_own_map(transformer, chelsea, method):
    analysis = transformer.analyze(chelsea)
    story = lesson(analysis, method, target=3)
    result = analysis.cam(method, target=3)
    np.testing.assert_allclose(story.raw, result.raw, rtol=1e-6)
    stages = [step.stage for step in story.steps]
    expected = {"rollout": ["attention", "rollout", "class row"],
                "chefer": ["attention", "attention gradients", "relevance", "class row"]}[method]
    assert stages == [*expected, "upsample", "overlay"]
    np.testing.assert_allclose(story.steps[len(expected) - 1].value, result.raw, rtol=1e-6)
    assert "12 blocks of 6 heads" in story.steps[0].text


@pytest.mark.parametrize("method", ATTENTION_METHODS)
def test_a_cnn_refuses_the_attention_methods_by_name(mobilenet, chelsea, method):
    card = get_method(method).card
    assert mobilenet.unmet(card) == f"{card.name} needs a vision transformer's attention; mobilenet_v2 has none"
    assert mobilenet.unmet(get_method("gradcam").card) == ""
    with pytest.raises(CamError, match="needs a vision transformer's attention; mobilenet_v2 has none"):
        mobilenet.analyze(chelsea).cam(method)
    with pytest.raises(CamError, match="discard_ratio must be between"):
        mobilenet.analyze(chelsea).cam("rollout", discard_ratio=2.0)


def test_swins_windowed_attention_is_refused_saying_why(chelsea):
    swin = Explainer("swin_tiny_patch4_window7_224", weights="random")
    assert swin.attention_blocks.names == ()
    for method in ATTENTION_METHODS:
        with pytest.raises(CamError, match="local windows .*not from every token to every other"):
            swin.analyze(chelsea).cam(method)
    with pytest.raises(CamError, match="windowed attention"):
        swin.attention_pass(torch.zeros(1, 3, 224, 224))


def test_the_attention_methods_need_no_layer(transformer):
    for method in ATTENTION_METHODS:
        card = get_method(method).card
        assert card.reads_every_block and card.requires == {"attention"} and transformer.unmet(card) == ""
        assert "layer choice does not apply" in card.explanation
