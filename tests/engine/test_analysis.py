"""The per-image cache: one forward pass per image and layer, cheap switches, bounded memory, thread safety."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
from skimage import data

from cam_core import CamError, Explainer, methods
from cam_core.engine import explainer as explainer_module
from cam_core.engine.lru import ByteLRU
from tests.conftest import count_passes


def count_forward_passes(explainer: Explainer):
    """Counts calls of the whole model's forward (or a replica's) while inside."""
    return count_passes(explainer.model.module)


def all_hooks(explainer: Explainer) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in explainer.model.module.modules())


def test_switching_method_or_class_runs_no_forward_pass(chelsea):
    explainer = Explainer("mobilenet_v2")
    with count_forward_passes(explainer) as passes:
        analysis = explainer.analyze(chelsea)
        analysis.cam("gradcam")
        assert len(passes) == 1
        for card in methods():
            if not card.needs <= {"gradients", "class_weights"}:
                continue  # methods that run masked inputs have their own test (tests/engine/test_mask_scores.py)
            for target in (None, 282, 1, 999):
                analysis.cam(card.id, target=target)
        assert explainer.analyze(chelsea) is analysis
        assert explainer.analyze(np.asarray(chelsea)) is analysis
        assert len(passes) == 1
        analysis.cam("gradcam", layer="features.14")
        analysis.cam("layercam", layer="features.14", target=7)
        assert len(passes) == 2
    assert all_hooks(explainer) == 0


def test_gradients_are_cached_per_class_and_layer(mobilenet, chelsea):
    analysis = mobilenet.analyze(chelsea)
    first = analysis.gradients(282)
    assert analysis.gradients(282) is first
    assert not np.allclose(analysis.gradients(281).numpy(), first.numpy())
    assert analysis.gradients(282, layer="features.16").shape[0] == 160


def test_identities_of_a_gap_linear_head(mobilenet, chelsea):
    """For global-average-pool → linear, the gradient is W[c]/(h·w) everywhere: Grad-CAM ∝ CAM, HiRes-CAM = Grad-CAM."""
    analysis = mobilenet.analyze(chelsea)
    gradients = analysis.gradients(285).numpy()
    np.testing.assert_allclose(gradients, np.broadcast_to(gradients[:, :1, :1], gradients.shape), rtol=1e-5)
    cam, gradcam, hires = (analysis.cam(m, target=285) for m in ("cam", "gradcam", "hirescam"))
    np.testing.assert_allclose(gradcam.raw * 49, cam.raw, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(hires.raw, gradcam.raw, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cam.saliency, gradcam.saliency, atol=1e-4)


def test_result_fields(mobilenet, chelsea):
    analysis = mobilenet.analyze(chelsea)
    result = analysis.cam("gradcam", target=282)
    assert result.saliency.shape == (chelsea.height, chelsea.width) and result.saliency.dtype == np.float32
    assert 0.0 <= result.saliency.min() and result.saliency.max() == pytest.approx(1.0)
    assert result.raw.shape == (7, 7) and result.weights.shape == (1280,)
    assert (result.target, result.label, result.layer) == (282, "tiger cat", "features.18")
    assert result.probability == pytest.approx(float(analysis.probabilities[282]))
    assert analysis.cam("eigencam").weights.shape == (1280,)
    assert analysis.cam("hirescam").weights is None
    positive = analysis.cam("gradcam", target=1)
    negative = analysis.cam("gradcam", target=1, sign="negative")
    assert positive.raw.min() < 0 < positive.raw.max(), "goldfish on the cat should have evidence both ways"
    np.testing.assert_array_equal(negative.raw, positive.raw)
    assert np.corrcoef(negative.saliency.ravel(), positive.saliency.ravel())[0, 1] < 0


def test_other_layers_have_their_own_resolution(mobilenet, chelsea):
    analysis = mobilenet.analyze(chelsea)
    result = analysis.cam("layercam", layer="features.7")
    assert result.raw.shape == (14, 14) and result.saliency.shape == (chelsea.height, chelsea.width)
    assert analysis.activations("features.4").shape == (32, 28, 28)


def test_top_k(mobilenet, coffee):
    top = mobilenet.analyze(coffee).top_k(5)
    assert len(top) == 5 and top[0][1] == "espresso"
    assert [p for *_, p in top] == sorted((p for *_, p in top), reverse=True)
    assert sum(p for *_, p in mobilenet.analyze(coffee).top_k(1000)) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a: a.cam("nope"), "unknown method 'nope'; valid: cam, gradcam"),
        (lambda a: a.cam("gradcam", target=1000), "out of range 0..999"),
        (lambda a: a.cam("gradcam", target=-1), "out of range 0..999"),
        (lambda a: a.cam("gradcam", target="cat"), "must be an integer"),
        (lambda a: a.cam("gradcam", layer="features.99"), "did you mean"),
        (lambda a: a.cam("gradcam", layer="classifier.1"), "so pick another layer"),
        (lambda a: a.cam("gradcam", steps=3), "has no parameter steps"),
        (lambda a: a.cam("gradcam", sign="both"), "sign must be one of positive, negative"),
        (lambda a: a.cam("cam", layer="features.14"), "vanilla CAM is not defined at features.14"),
    ],
)
def test_bad_requests_get_clear_errors_and_leave_no_hooks(mobilenet, chelsea, call, message):
    analysis = mobilenet.analyze(chelsea)
    with pytest.raises(CamError, match=message.replace("(", r"\(").replace(".", r"\.")):
        call(analysis)
    assert all_hooks(mobilenet) == 0


class Block:
    """A cache value of a given size."""

    def __init__(self, nbytes: int):
        self.nbytes = nbytes


def test_the_lru_releases_what_it_drops_before_it_calls_on_drop():
    released = []
    alive = []

    def on_drop():
        released.append([ref() is None for ref in alive])

    cache = ByteLRU(100, on_drop=on_drop)
    for key in "abc":
        block = Block(40)
        alive.append(weakref.ref(block))
        cache.put(key, block)
        del block
    assert released == [[True, False, False]], "a dropped value must be freed when on_drop runs"
    assert [key for key in "abc" if cache.get(key)] == ["b", "c"]
    cache.trim()
    assert len(released) == 1, "on_drop runs only after a trim that dropped something"
    cache.put("d", Block(100))
    assert released[-1] == [True, True, True] and [key for key in "abcd" if cache.get(key)] == ["d"]


def test_an_explainer_returns_freed_memory_when_its_cache_drops_an_analysis(chelsea, coffee, monkeypatch):
    calls = []
    monkeypatch.setattr(explainer_module, "return_free_memory", lambda: calls.append(1))
    explainer = Explainer("mobilenet_v2", cache_bytes=1)
    explainer.analyze(chelsea)
    assert calls == []
    explainer.analyze(coffee)
    assert calls == [1] and len(explainer.cache) == 1


def test_cache_is_bounded_in_bytes(chelsea):
    explainer = Explainer("mobilenet_v2", cache_bytes=3_000_000)
    photos = [data.coffee(), data.astronaut(), data.rocket(), np.asarray(chelsea)]
    for photo in photos:
        explainer.analyze(photo).cam("gradcam")
    assert explainer.cache.nbytes <= 3_000_000
    assert 1 <= len(explainer.cache) < len(photos)
    newest = explainer.analyze(chelsea)
    assert explainer.cache.get(newest.key) is newest
    single = Explainer("mobilenet_v2", cache_bytes=1)
    single.analyze(chelsea)
    single.analyze(data.coffee())
    assert len(single.cache) == 1
