"""Smooth Grad-CAM++, Integrated Grad-CAM, multi-layer Layer-CAM, Zoom-CAM, Poly-CAM and the guided methods on the
embedded MobileNetV2: seeds, cheap class switches, one shared pass for a cold multi-layer call, clear errors, the
multi-layer defaults, and a shared model that the guided copy never touches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cam_core import CamError, Explainer
from cam_core.methods.common import upsample
from cam_core.scaling import min_max
from tests.conftest import NEW_METHODS, bits, count_passes, fresh_analysis, global_hooks, hook_counts, module_state

EGYPTIAN_CAT, TABBY, TIGER_CAT = 285, 281, 282
PYRAMID_SIZE = (56, 56)


# ------------------------------------------------------------------------------------------ seeds and switches


def test_smoothgradcampp_same_seed_same_map_other_seed_other_map(mobilenet, chelsea):
    # features.17 is followed by a ReLU6 block, so its gradient depends on the (noisy) input; at features.18 it
    # would not (see the next test).
    params = {"layer": "features.17", "samples": 4, "sigma": 0.2}
    first = fresh_analysis(mobilenet, chelsea).cam("smoothgradcampp", seed=11, **params)
    again = fresh_analysis(mobilenet, chelsea).cam("smoothgradcampp", seed=11, **params)
    other = fresh_analysis(mobilenet, chelsea).cam("smoothgradcampp", seed=12, **params)
    np.testing.assert_array_equal(first.raw, again.raw)
    np.testing.assert_array_equal(first.weights, again.weights)
    assert np.abs(first.raw - other.raw).max() > 1e-3 * np.abs(first.raw).max()
    # Noise changes the weights but not what the map is about.
    assert np.corrcoef(first.raw.ravel(), other.raw.ravel())[0, 1] > 0.8


def test_before_a_gap_linear_head_the_path_methods_reduce_to_their_one_pass_forms(mobilenet, chelsea):
    """At features.18 the gradient is W[c]/49 whatever the input, so averaging it over noisy copies or along a path
    changes nothing: Smooth Grad-CAM++ is Grad-CAM++, and Integrated Grad-CAM's weights are Grad-CAM's."""
    analysis = mobilenet.analyze(chelsea)
    smooth = analysis.cam("smoothgradcampp", samples=3, sigma=0.3, seed=2)
    plain = analysis.cam("gradcampp")
    np.testing.assert_allclose(smooth.weights, plain.weights, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(smooth.raw, plain.raw, rtol=1e-4, atol=1e-5)
    integrated = analysis.cam("intgradcam", steps=3)
    np.testing.assert_allclose(integrated.weights, analysis.cam("gradcam").weights, rtol=1e-4, atol=1e-9)
    # … but its map weighs the change from the blurred baseline, not the activations themselves.
    assert np.corrcoef(integrated.raw.ravel(), analysis.cam("gradcam").raw.ravel())[0, 1] < 0.99


@pytest.mark.parametrize("method", NEW_METHODS)
def test_a_class_switch_runs_no_forward_pass(mobilenet, chelsea, method):
    """A class switch reuses every cached pass (only backwards run); its speed is measured in bench/new_methods.py,
    not here, where other processes share the CPU."""
    analysis = fresh_analysis(mobilenet, chelsea)
    params = {"samples": 8} if method == "smoothgradcampp" else {}
    first = analysis.cam(method, **params)
    assert first.target == EGYPTIAN_CAT
    paths, layers, guided = analysis._paths.snapshot(), dict(analysis._layers), analysis._guided.peek(None)
    modules = [mobilenet.model.module] + ([mobilenet.guided_model().module] if guided is not None else [])
    with count_passes(*modules) as passes:
        for target in (TABBY, TIGER_CAT):
            switched = analysis.cam(method, target=target, **params)
            assert switched.target == target
            assert not np.array_equal(switched.raw, first.raw), "the map of another class must be computed anew"
    assert passes == [], f"{method}: a class switch ran {len(passes)} forward passes"
    now = analysis._paths.snapshot()
    assert now.keys() == paths.keys() and all(now[k] is v for k, v in paths.items())
    assert analysis._layers == layers and analysis._guided.peek(None) is guided
    if method in ("smoothgradcampp", "intgradcam"):
        assert len(now) == 1
    if method in ("guidedbackprop", "guidedgradcam"):
        assert guided is not None and len(guided.gradients.snapshot()) == 3


@pytest.mark.parametrize("method", ["layercam", "zoomcam", "gradpolycam"])
def test_a_cold_multi_layer_call_hooks_every_missing_layer_in_one_pass(mobilenet, chelsea, method):
    """The pyramid's layers not yet cached come from one shared forward pass (its graph counted once), and give the
    same activations, gradients and map as one pass per layer."""
    pyramid = mobilenet.model.pyramid()
    shared = fresh_analysis(mobilenet, chelsea)
    before = shared.nbytes
    with count_passes(mobilenet.model.module) as passes:
        together = shared.cam(method, layers=pyramid)
    assert len(passes) == 1, f"{method}: a cold call ran {len(passes)} forward passes"
    apart = fresh_analysis(mobilenet, chelsea)
    for name in pyramid:
        apart.activations(name)
    assert np.array_equal(together.raw, apart.cam(method, layers=pyramid).raw)
    for name in pyramid:
        assert torch.equal(shared.activations(name), apart.activations(name))
        assert torch.equal(shared.gradients(EGYPTIAN_CAT, name), apart.gradients(EGYPTIAN_CAT, name))
    graphs = [shared._layers[name].graph_bytes for name in pyramid if name != mobilenet.default_layer]
    assert sum(1 for size in graphs if size) == 1, "one shared graph is counted once"
    assert shared.nbytes - before < apart.nbytes - before


# ------------------------------------------------------------------------------------------------------ errors


def test_unsigned_methods_have_no_negative_map(mobilenet, chelsea):
    """The guided methods' maps are gradient magnitudes; Zoom-CAM's authors rectify every layer's map before the
    fusion."""
    analysis = mobilenet.analyze(chelsea)
    for method in ("guidedbackprop", "guidedgradcam", "zoomcam"):
        with pytest.raises(CamError, match="no negative map"):
            analysis.cam(method, sign="negative")
    # The signed methods still give one.
    assert analysis.cam("layercam", sign="negative", layers=["features.14", "features.18"]).sign == "negative"


def test_layers_are_checked(mobilenet, chelsea):
    analysis = mobilenet.analyze(chelsea)
    with pytest.raises(CamError, match="Grad-CAM works on one layer"):
        analysis.cam("gradcam", layers=["features.14", "features.18"])
    with pytest.raises(CamError, match="layers must be different"):
        analysis.cam("layercam", layers=["features.14", "features.18", "features.14"])
    with pytest.raises(CamError, match=r"no layer 'features\.99'.*did you mean"):
        analysis.cam("zoomcam", layers=["features.14", "features.99"])
    # One layer in layers= is the same as layer=.
    one = analysis.cam("gradcam", layers=["features.14"])
    np.testing.assert_array_equal(one.raw, analysis.cam("gradcam", layer="features.14").raw)
    assert one.layers == ("features.14",) and one.layer == "features.14"


# -------------------------------------------------------------------------------------------- multi-layer maps


@pytest.mark.parametrize("method", ["zoomcam", "gradpolycam"])
def test_pyramid_methods_default_to_the_pyramid(mobilenet, chelsea, method):
    pyramid = mobilenet.model.pyramid()
    assert len(pyramid) >= 3 and pyramid[-1] == mobilenet.default_layer
    result = mobilenet.analyze(chelsea).cam(method)
    assert result.layers == tuple(pyramid)
    assert result.layer == mobilenet.default_layer
    assert result.raw.shape == PYRAMID_SIZE
    assert result.saliency.shape == (chelsea.height, chelsea.width)


def test_layercam_fuses_only_when_given_layers(mobilenet, chelsea):
    analysis = mobilenet.analyze(chelsea)
    single = analysis.cam("layercam")
    assert single.raw.shape == (7, 7) and single.layers == ("features.18",)
    fused = analysis.cam("layercam", layers=mobilenet.model.pyramid())
    assert fused.raw.shape == PYRAMID_SIZE and fused.layers == tuple(mobilenet.model.pyramid())
    # Fused maps are differences of [0, 1] maps.
    assert -1.0 - 1e-6 <= fused.raw.min() and fused.raw.max() <= 1.0 + 1e-6 and fused.raw.max() > 0.5


def test_gradpolycam_with_the_deepest_layer_alone_is_gradcam(mobilenet, chelsea):
    analysis = mobilenet.analyze(chelsea)
    alone = analysis.cam("gradpolycam", layers=["features.18"])
    assert "nothing to refine" in alone.note
    np.testing.assert_allclose(alone.raw, analysis.cam("gradcam").raw, rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------------------------------- guided methods


def test_guidedgradcam_is_guided_backprop_gated_by_the_gradcam_map(mobilenet, chelsea):
    analysis = mobilenet.analyze(chelsea)
    guided = analysis.cam("guidedbackprop", target=TABBY)
    gated = analysis.cam("guidedgradcam", target=TABBY)
    gradcam = analysis.cam("gradcam", target=TABBY)
    assert guided.rgb.shape == gated.rgb.shape == (3, 224, 224)
    gate = min_max(upsample(torch.from_numpy(gradcam.raw).clamp(min=0), (224, 224))).numpy()
    np.testing.assert_allclose(gated.rgb, guided.rgb * gate, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(guided.raw, np.abs(guided.rgb).max(axis=0), rtol=1e-6)
    np.testing.assert_allclose(gated.weights, gradcam.weights, rtol=1e-6)


def test_intgradcam_with_an_unblurred_baseline_is_blank(mobilenet, chelsea):
    analysis = mobilenet.analyze(chelsea)
    usual = analysis.cam("intgradcam", steps=2)
    unblurred = analysis.cam("intgradcam", steps=2, blur=0.0)
    assert np.abs(unblurred.raw).max() < 1e-3 * np.abs(usual.raw).max()


@pytest.fixture(scope="module")
def random_resnet18():
    torch.manual_seed(4)
    return Explainer("resnet18", weights="random")


@pytest.mark.parametrize("model", ["mobilenet_v2", "resnet18"])
def test_the_guided_copy_leaves_the_shared_model_untouched(model, chelsea, coffee, random_resnet18):
    explainer = random_resnet18 if model == "resnet18" else Explainer("mobilenet_v2")
    shared = explainer.model.module
    before, globals_before = module_state(shared), global_hooks()
    if model == "resnet18":
        assert any(inplace for _, inplace in before["inplace"]), "torchvision's ResNet uses ReLU(inplace=True)"
    analysis = explainer.analyze(chelsea)
    logits = analysis.logits.clone()
    for target in (None, TABBY):
        analysis.cam("guidedbackprop", target=target)
        analysis.cam("guidedgradcam", target=target)
    explainer.analyze(coffee).cam("guidedgradcam")
    analysis.cam("gradcam")
    after = module_state(shared)
    assert after["types"] == before["types"]
    assert after["inplace"] == before["inplace"]
    assert after["requires_grad"] == before["requires_grad"]
    assert after["tensors"].keys() == before["tensors"].keys()
    for name, tensor in before["tensors"].items():
        assert torch.equal(bits(after["tensors"][name]), bits(tensor)), name
    assert hook_counts(shared) == {}
    assert global_hooks() == globals_before
    copy = explainer.guided_model()
    assert copy.module is not shared and copy.guided > 0
    assert not set(copy.parameter_storages) & {t.untyped_storage().data_ptr() for t in shared.state_dict().values()}
    # The shared model still computes what it did.
    with torch.no_grad():
        np.testing.assert_allclose(shared(analysis.input)[0].numpy(), logits.numpy(), rtol=1e-6, atol=1e-6)


def test_guided_gradients_on_a_relu_inplace_network_differ_from_the_plain_gradient(random_resnet18, chelsea):
    analysis = random_resnet18.analyze(chelsea)
    result = analysis.cam("guidedbackprop")
    guided = analysis.guided_gradients(result.target).numpy()
    assert np.isfinite(guided).all() and np.abs(guided).max() > 0
    assert result.note == ""
    assert random_resnet18.guided_model().guided == 9  # the stem's ReLU and one (reused) ReLU per basic block
    found = random_resnet18.input_gradients(analysis.input, guided=False)
    (plain,) = torch.autograd.grad(found.logits[0, result.target], found.input)
    plain = plain[0].numpy()
    assert np.isfinite(plain).all() and np.abs(plain).max() > 0
    difference = np.linalg.norm(guided - plain) / np.linalg.norm(plain)
    assert difference > 0.1, difference
    plain_map, guided_map = np.abs(plain).max(axis=0), np.abs(guided).max(axis=0)
    assert np.corrcoef(plain_map.ravel(), guided_map.ravel())[0, 1] < 0.95
    np.testing.assert_allclose(result.raw, guided_map, rtol=1e-6)
