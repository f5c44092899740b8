"""A class switch pays only for what depends on the class: the pyramid's gradients come from one backward per pass,
a new class runs no new pass, KPCA-CAM's kernel PCA, attention rollout and LIME's regression design (which read no
class) run once per image and settings, FullGrad upsamples once per resolution, and the specificity caption's
candidate layers share their backwards."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import Ridge

import cam_core.engine.analysis as analysis_module
from cam_core import Explainer
from cam_core.inputs.input_perturbations import InputScores
from cam_core.methods.attention import rollout_blocks
from cam_core.methods.perturbation import kernel_weights, ridge_design
from cam_core.registry import CamInputs, get_method
from cam_core.scaling import min_max
from cam_core.views.specificity import layer_correlations, map_correlation
from tests.conftest import fresh_analysis

attention_module = sys.modules[rollout_blocks.__module__]  # cam_core.methods is also a function's name
perturbation_module = sys.modules[ridge_design.__module__]

CAT, OTHER, THIRD = 281, 285, 282  # tabby, Egyptian cat, tiger cat


def counting(monkeypatch, owner: object, name: str) -> list:
    """Replaces owner.name by a wrapper that records each call's positional arguments."""
    calls: list = []
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


def test_pyramid_gradients_from_one_backward_equal_each_layers_own(mobilenet, chelsea):
    analysis = fresh_analysis(mobilenet, chelsea)
    pyramid = mobilenet.pyramid()
    joint = analysis.stack_gradients(CAT, pyramid)
    for name, grad in zip(pyramid, joint, strict=True):
        state = analysis._layer(name)
        (alone,) = torch.autograd.grad(state.logits[0, CAT], state.activation, retain_graph=True)
        alone = mobilenet.layout.to_map(alone)[0]
        scale = float(alone.abs().max())
        assert scale > 0, name
        assert torch.allclose(grad, alone, rtol=1e-5, atol=1e-6 * scale), f"{name}: {float((grad - alone).abs().max())}"
        assert analysis.gradients(CAT, name) is grad, f"{name}: gradients() does not return the cached tensor"


def test_a_pyramid_class_switch_runs_no_pass_and_one_backward_per_pass(mobilenet, chelsea, monkeypatch):
    analysis = fresh_analysis(mobilenet, chelsea)
    first = analysis.cam("zoomcam", target=CAT)
    passes = counting(monkeypatch, analysis.explainer, "run")
    backwards = counting(monkeypatch, torch.autograd, "grad")
    switched = analysis.cam("zoomcam", target=OTHER)
    assert passes == [], "a new class ran a model pass"
    captured_by = {id(analysis._layer(name).logits) for name in first.layers}
    assert len(backwards) == len(captured_by) < len(first.layers), \
        f"{len(backwards)} backwards for {len(first.layers)} layers captured in {len(captured_by)} passes"
    assert not np.allclose(first.raw, switched.raw)
    again = analysis.cam("layercam", target=OTHER, layers=first.layers)
    assert len(backwards) == len(captured_by), "Layer-CAM over the same layers and class ran another backward"
    assert again.raw.shape == switched.raw.shape


def test_kpcacam_runs_the_kernel_pca_once_and_keeps_its_map(mobilenet, chelsea, monkeypatch):
    analysis = fresh_analysis(mobilenet, chelsea)
    runs = counting(monkeypatch, analysis_module, "kernel_component")
    maps = [analysis.cam("kpcacam", target=target).raw for target in (CAT, OTHER, THIRD)]
    returned = analysis.cam("kpcacam", target=OTHER, sign_rule="as returned").raw
    assert len(runs) == 1, f"the kernel PCA ran {len(runs)} times for one layer and kernel"
    analysis.cam("kpcacam", target=OTHER, kernel="rbf")
    assert len(runs) == 2, "another kernel did not run its own kernel PCA"
    computed_in_place = get_method("kpcacam").apply(CamInputs(activations=analysis.activations(), target=CAT)).raw
    for found in maps:
        np.testing.assert_array_equal(found, computed_in_place.float().numpy())
    assert np.allclose(np.abs(returned), np.abs(maps[0]))


def per_layer_fullgrad(full, scaling: str, corners: bool) -> torch.Tensor:
    """FullGrad as first written: every part min-max scaled in full, upsampled on its own, then added."""
    size = tuple(full.input.shape[-2:])

    def psi(term):
        return (min_max(term.abs()) if scaling == "layer" else min_max(term.abs(), dims=(1, 2))).sum(dim=0)

    parts = [psi(full.input_gradient * full.input)]
    for item in full.layers:
        part = psi(item.gradient * item.bias[:, None, None])
        parts.append(part if tuple(part.shape) == size else
                     F.interpolate(part[None, None], size=size, mode="bilinear", align_corners=corners)[0, 0])
    return torch.stack(parts).sum(dim=0)


def test_fullgrad_summed_per_resolution_equals_every_layer_upsampled_alone(mobilenet, chelsea):
    analysis = fresh_analysis(mobilenet, chelsea)
    full = analysis.full_gradients(CAT)
    assert len({tuple(item.gradient.shape[-2:]) for item in full.layers}) < len(full.layers)
    for scaling in ("layer", "channel"):
        for corners in (True, False):
            ours = get_method("fullgrad").apply(CamInputs(activations=analysis.activations(), target=CAT,
                                                          full_gradients=full), scaling=scaling,
                                                align_corners=corners).raw
            expected = per_layer_fullgrad(full, scaling, corners)
            assert torch.allclose(ours, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max())), \
                f"{scaling}, align_corners={corners}: {float((ours - expected).abs().max())}"


TINY_VIT = """models:
  tiny_vit:
    title: a small random ViT
    source: timm
    architecture: vit_small_patch16_224
    kwargs: {img_size: 32, patch_size: 16, embed_dim: 8, depth: 3, num_heads: 2, mlp_ratio: 1.0}
    weights: {download: timm}
    preprocessing: {input_size: 32, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]}
    labels: imagenet1k
    layout: tokens
    target_layer: blocks.2.norm1
    layers: [blocks.2.norm1]
"""


def test_rollout_is_rolled_out_once_per_image_and_settings(tmp_path, chelsea, monkeypatch):
    table = tmp_path / "models.yaml"
    table.write_text(TINY_VIT)
    analysis = Explainer("tiny_vit", weights="random", models_file=table).analyze(chelsea)
    runs = counting(monkeypatch, attention_module, "rollout_blocks")
    maps = [analysis.cam("rollout", target=target).raw for target in (CAT, OTHER, THIRD)]
    assert len(runs) == 1, f"the rollout ran {len(runs)} times for three classes"
    analysis.cam("rollout", target=OTHER, discard_ratio=0.5)
    assert len(runs) == 2, "another discard ratio did not roll out on its own"
    fresh = get_method("rollout").apply(CamInputs(activations=analysis.activations(), target=OTHER,
                                                  attention=analysis.attention_inputs())).raw
    for found in maps:
        np.testing.assert_array_equal(found, fresh.float().numpy())


LIME_SETTINGS = {"samples": 24, "segments": 12, "seed": 3}


def test_lime_builds_its_regression_once_and_fits_as_scikit_learn_does(mobilenet, chelsea, monkeypatch):
    analysis = fresh_analysis(mobilenet, chelsea)
    designs = counting(monkeypatch, perturbation_module, "ridge_design")
    results = {target: analysis.cam("lime", target=target, **LIME_SETTINGS) for target in (CAT, OTHER, THIRD)}
    assert len(designs) == 1, f"the regression design was built {len(designs)} times for three classes"
    analysis.cam("lime", target=OTHER, alpha=0.5, **LIME_SETTINGS)
    assert len(designs) == 2, "another penalty did not build its own design"
    spec = get_method("lime").card.input_spec(get_method("lime").card.resolve_params(LIME_SETTINGS))
    scores = analysis.input_scores(spec)
    samples = scores.plan.samples.double().numpy()
    weights = kernel_weights(scores.plan.samples, 0.25).numpy()
    for target, result in results.items():
        model = Ridge(alpha=1.0).fit(samples, torch.softmax(scores.logits, dim=1)[:, target].double().numpy(),
                                     sample_weight=weights)
        np.testing.assert_allclose(result.weights, model.coef_, rtol=1e-4, atol=1e-6 * np.abs(model.coef_).max())


def test_perturbed_probabilities_equal_the_softmax():
    logits = torch.randn(50, 1000, generator=torch.Generator().manual_seed(0)) * 6
    scores = InputScores(None, logits, logits[0], logits[1], 0.0)
    for target in (0, 7, 999):
        assert torch.allclose(scores.scores(target), torch.softmax(logits, dim=1)[:, target], rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("method", ["gradcampp", "layercam"])
def test_specificity_layers_share_one_backward_per_pass_and_class(mobilenet, chelsea, monkeypatch, method):
    analysis = fresh_analysis(mobilenet, chelsea)
    backwards = counting(monkeypatch, torch.autograd, "grad")
    found = layer_correlations(analysis, method, CAT, OTHER)
    layers = mobilenet.model.layer_choices()
    passes = {id(analysis._layer(name).logits) for name in layers}
    assert set(found) == set(layers)
    assert len(backwards) == 2 * len(passes) < 2 * len(layers), \
        f"{len(backwards)} backwards for {len(layers)} layers in {len(passes)} passes and two classes"
    alone = fresh_analysis(mobilenet, chelsea)
    for layer, r in found.items():
        where = {"layers": [layer]} if method == "layercam" else {"layer": layer}
        assert r == pytest.approx(map_correlation(alone, method, CAT, OTHER, **where), abs=1e-6), layer


def test_only_a_method_whose_masks_follow_the_class_runs_passes_for_each_new_class():
    from cam_core.registry import get_method

    def per_class(method: str, **params) -> bool:
        return get_method(method).card.passes_per_class(params)

    assert per_class("groupcam") and per_class("groupcam", layer="features.13")
    assert not per_class("groupcam", groups_from="activations")
    assert not any(per_class(method) for method in ("gradcam", "scorecam", "clustercam", "cosinecam", "rise",
                                                     "ablationcam", "zoomcam"))
