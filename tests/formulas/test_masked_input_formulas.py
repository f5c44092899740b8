"""Score-CAM, Ablation-CAM, Group-, Cluster- and Cosine-CAM: arithmetic, cached score matrices, oracles."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from pytorch_grad_cam import AblationCAM, ScoreCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from cam_core import CamError, Explainer
from cam_core.inputs.mask_scores import AblationScores, MaskScores, MaskSpec, group_labels, score_masks
from cam_core.inputs.masking import baseline_input, masked_inputs, normalized_masks
from cam_core.registry import CamInputs, get_method

from .conftest import count_passes

SLOW_METHODS = ("scorecam", "ablationcam", "groupcam", "clustercam", "cosinecam")


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    assert np.ptp(a) > 0 and np.ptp(b) > 0, "a constant map has no correlation"
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def tiny_scores(logits: list[list[float]], baseline: list[float], labels=None) -> MaskScores:
    count = len(logits)
    maps = torch.arange(count * 4, dtype=torch.float32).reshape(count, 2, 2) % 3
    return MaskScores(maps, labels, torch.tensor(logits), torch.tensor(baseline), torch.zeros(count, dtype=bool), 0.0)


def test_scorecam_weightings_by_hand():
    activations = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]]])
    scores = tiny_scores([[0.0, 3.0], [0.0, 1.0]], [0.0, 1.0])
    inputs = CamInputs(activations=activations, target=1, mask_scores=scores)

    def weights(choice: str) -> np.ndarray:
        return get_method("scorecam").apply(inputs, weights=choice, baseline="zero", align_corners=False).weights.numpy()

    # the authors' code: the masked input's probability of class 1, softmax over the two classes
    probability = torch.softmax(torch.tensor([[0.0, 3.0], [0.0, 1.0]]), 1)[:, 1].numpy()
    np.testing.assert_allclose(weights("probability"), probability, rtol=1e-6)
    out = get_method("scorecam").apply(inputs, weights="probability", baseline="zero", align_corners=False)
    np.testing.assert_allclose(out.raw.numpy(), [[probability[0], 0], [0, 2 * probability[1]]], rtol=1e-6)
    # pytorch-grad-cam: softmax over channels of the logits 3 and 1
    w0 = np.exp(3) / (np.exp(3) + np.exp(1))
    np.testing.assert_allclose(weights("logit softmax"), [w0, 1 - w0], rtol=1e-6)
    # the paper's equations: gains over the baseline's probability (1 vs 0 logits → 0.731), then a softmax
    gains = probability - float(torch.softmax(torch.tensor([0.0, 1.0]), 0)[1])
    np.testing.assert_allclose(weights("gain"), gains, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(weights("gain softmax"), np.exp(gains) / np.exp(gains).sum(), rtol=1e-6)


def test_ablationcam_arithmetic_by_hand():
    activations = torch.ones(2, 1, 1)
    ablation = AblationScores(torch.tensor([[0.0, 1.0], [0.0, 3.0]]), torch.tensor([0.0, 4.0]), True, 0.0)
    out = get_method("ablationcam").apply(CamInputs(activations=activations, target=1, ablation=ablation))
    np.testing.assert_allclose(out.weights.numpy(), [0.75, 0.25])
    np.testing.assert_allclose(out.raw.numpy(), [[1.0]])


def test_ablationcam_keeps_the_sign_of_a_negative_logit():
    """Logit −4; zeroing channel 0 drops it to −7 (the channel was evidence for the class), channel 1 raises it to
    −2: the weights are +0.75 and −0.5 (the paper's division by −4 would flip both)."""
    ablation = AblationScores(torch.tensor([[0.0, -7.0], [0.0, -2.0]]), torch.tensor([0.0, -4.0]), True, 0.0)
    out = get_method("ablationcam").apply(CamInputs(activations=torch.ones(2, 1, 1), target=1, ablation=ablation))
    np.testing.assert_allclose(out.weights.numpy(), [0.75, -0.5])


def test_cluster_variants_by_hand():
    labels = torch.tensor([0, 1, 1, 2])
    scores = tiny_scores([[0.0, 2.0], [0.0, 5.0], [0.0, -1.0]], [0.0, 1.0], labels)
    inputs = CamInputs(activations=torch.zeros(4, 2, 2), target=1, mask_scores=scores)
    maps = scores.maps.numpy()
    run = lambda variant: get_method("clustercam").apply(  # noqa: E731
        inputs, groups=3, clustering="kmeans", variant=variant, baseline="blur", score="logit", seed=0)
    gains = np.array([1.0, 4.0, -2.0])
    np.testing.assert_allclose(run("score").raw.numpy(), np.tensordot(gains, maps, 1), rtol=1e-6)
    np.testing.assert_allclose(run("score").weights.numpy(), gains[labels.numpy()])
    np.testing.assert_allclose(run("cognition").raw.numpy(), maps[1] - maps[2])


def test_groupcam_weights_are_positive_probability_gains_by_hand():
    labels = torch.tensor([0, 0, 1, 1])
    scores = tiny_scores([[0.0, 2.0], [0.0, -1.0]], [0.0, 1.0], labels)
    inputs = CamInputs(activations=torch.zeros(4, 2, 2), target=1, mask_scores=scores)
    out = get_method("groupcam").apply(inputs, groups=2, grouping="contiguous", groups_from="gradients", denoise=70.0,
                                    baseline="blur", seed=0)
    probabilities = torch.softmax(torch.tensor([[0.0, 2.0], [0.0, -1.0]]), 1)[:, 1]
    gains = (probabilities - torch.softmax(torch.tensor([0.0, 1.0]), 0)[1]).clamp(min=0).numpy()
    assert gains[0] > 0 and gains[1] == 0
    np.testing.assert_allclose(out.raw.numpy(), gains[0] * scores.maps[0].numpy(), rtol=1e-6)


def test_constant_maps_are_skipped_exactly(mobilenet, chelsea):
    """A constant map's mask is empty, so its masked input is the baseline: the skipped rows equal a real pass."""
    analysis = mobilenet.analyze(chelsea)
    activations = analysis.activations().clone()
    activations[:3] = torch.tensor([0.0, 2.5, -1.0])[:, None, None]
    spec = MaskSpec(mobilenet.default_layer, baseline="blur")
    fast = mobilenet.fast_model()
    scores = score_masks(fast, analysis.input, activations[:40], spec, batch_size=16, precision="float32")
    assert scores.skipped[:3].all() and int(scores.skipped.sum()) == int(
        (activations[:40].flatten(1).amax(1) == activations[:40].flatten(1).amin(1)).sum())
    masks, constant = normalized_masks(activations[:3], 224)
    assert constant.all() and not masks.any()
    base = baseline_input(analysis.input, "blur")
    with torch.inference_mode():
        direct = fast(masked_inputs(analysis.input, base, masks).contiguous(memory_format=torch.channels_last))
    np.testing.assert_allclose(scores.logits[:3].numpy(), direct.numpy(), rtol=1e-4, atol=1e-4)
    assert not torch.equal(scores.logits[5], scores.baseline_logits)




CLASS_AGNOSTIC_PASSES = {"scorecam": {"layer": "features.16"}, "groupcam": {"groups_from": "activations"}}


@pytest.mark.parametrize("method", SLOW_METHODS)
def test_class_switch_runs_no_model_pass(method, chelsea):
    explainer = Explainer("mobilenet_v2")
    analysis = explainer.analyze(chelsea)
    params = CLASS_AGNOSTIC_PASSES.get(method, {})
    first = analysis.cam(method, **params)
    head_modules = [step for step in explainer.model.head.steps if isinstance(step, torch.nn.Module)]
    with count_passes(explainer.model.module, explainer.fast_model(), *head_modules) as passes:
        for target in (282, 281, 1, 717):
            again = analysis.cam(method, target=target, **params)
            assert again.target == target and not np.array_equal(again.raw, first.raw)
    assert passes == [], f"{method}: a class switch ran {len(passes)} model passes"


def test_groupcam_costs_one_batch_of_group_passes_per_new_class(chelsea):
    """The paper's class-specific groups: a new class costs its baseline pass and one batch of its 32 masked
    inputs; a class seen before costs nothing."""
    explainer = Explainer("mobilenet_v2")
    analysis = explainer.analyze(chelsea)
    analysis.cam("groupcam")
    with count_passes(explainer.fast_model()) as passes:
        analysis.cam("groupcam", target=717)
    assert len(passes) == 2, f"a new class ran {len(passes)} passes, not a baseline and one batch"
    with count_passes(explainer.fast_model()) as passes:
        analysis.cam("groupcam", target=717)
        analysis.cam("groupcam")
    assert passes == []


def test_the_cat_maps_peak_on_the_cat(mobilenet, chelsea):
    from PIL import Image

    canvas = Image.new("RGB", (chelsea.width * 2 + 40, chelsea.height + 80), (128, 128, 128))
    canvas.paste(chelsea, (chelsea.width + 20, 40))
    analysis = mobilenet.analyze(canvas)
    for method in ("ablationcam", "groupcam", "clustercam", "cosinecam"):
        saliency = analysis.cam(method).saliency
        inside = saliency[40:40 + chelsea.height, chelsea.width + 20:].sum() / saliency.sum()
        assert inside > 0.6, f"{method}: {inside:.2f} of the map on the cat"


def test_clustering_is_deterministic_with_a_seed(chelsea):
    maps = []
    for _ in range(2):
        analysis = Explainer("mobilenet_v2").analyze(chelsea)
        maps.append(analysis.cam("clustercam", groups=6, seed=3))
        maps.append(analysis.cam("cosinecam", groups=6, seed=3))
    np.testing.assert_array_equal(maps[0].raw, maps[2].raw)
    np.testing.assert_array_equal(maps[1].raw, maps[3].raw)


def test_spectral_clustering_falls_back_on_a_disconnected_graph_and_says_so():
    left = torch.zeros(6, 4, 4)
    left[:3, :, :2] = torch.rand(3, 4, 2) + 0.1
    left[3:, :, 2:] = torch.rand(3, 4, 2) + 0.1
    labels, note = group_labels(left, MaskSpec("x", "spectral", k=2))
    assert "disconnected" in note and "fell back" in note
    assert len(set(labels[:3].tolist())) == 1 and set(labels.tolist()) == {0, 1}
    connected = torch.rand(8, 4, 4) + 0.1
    labels, note = group_labels(connected, MaskSpec("x", "spectral", k=2))
    assert note == "" and set(labels.tolist()) <= {0, 1}


def test_ablation_through_the_head_equals_full_forward_passes(mobilenet, chelsea):
    analysis = mobilenet.analyze(chelsea)
    head_only = analysis.ablation_scores()
    assert head_only.head_only and head_only.logits.shape == (1280, 1000)
    full = mobilenet.ablate_full(analysis.input, mobilenet.default_layer, 48, batch_size=16)
    np.testing.assert_allclose(head_only.logits[:48].numpy(), full.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"groups": 1}, "groups must be between 2 and 256"),
        ({"groups": 2.5}, "groups must be a whole number"),
        ({"grouping": "random"}, "grouping must be one of contiguous, kmeans"),
        ({"baseline": "noise"}, "baseline must be one of blur, zeros"),
    ],
)
def test_bad_parameters_name_the_valid_range(mobilenet, chelsea, params, message):
    with pytest.raises(CamError, match=message):
        mobilenet.analyze(chelsea).cam("groupcam", **params)


LAYER = "features.14"  # 160 channels: the peers' one-pass-per-channel loops stay short


def peer_map(peer_class, explainer: Explainer, analysis, target: int, layer_name: str = LAYER, **kwargs) -> np.ndarray:
    model = copy.deepcopy(explainer.model.module)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    layer = dict(model.named_modules())[layer_name]
    width = height = analysis.activations(layer_name).shape[-1]
    peer = peer_class(model=model, target_layers=[layer], **kwargs)
    peer.get_target_width_height = lambda _input: (width, height)
    return peer(input_tensor=analysis.input, targets=[ClassifierOutputTarget(target)])[0]


@pytest.mark.parametrize("target", [285, 282])
def test_scorecam_matches_pytorch_grad_cam(mobilenet, chelsea, target):
    """The peer scores logits, masks the normalised input toward zero, takes a softmax over channels and upsamples
    its masks with aligned corners: with weights="logit softmax", baseline="zero", align_corners=True ours is the same
    definition. (Our default puts cells over their patches instead; at 7×7 that alone moves Pearson to ~0.7,
    because a softmax over logits lets a few channels dominate.)"""
    analysis = mobilenet.analyze(chelsea)
    ours = analysis.cam("scorecam", target=target, layer=LAYER, weights="logit softmax", baseline="zero",
                        align_corners=True, precision="float32")
    theirs = peer_map(ScoreCAM, mobilenet, analysis, target)
    assert pearson(np.maximum(ours.raw, 0), theirs) >= 0.95


RELU_LAYER = "features.2.conv.0"  # 96 channels after a ReLU6


@pytest.mark.parametrize("target", [285, 282])
def test_ablationcam_matches_pytorch_grad_cam(mobilenet, chelsea, target):
    """Both set the channel to zero where the layer's minimum is 0 (after a ReLU); on layers with negative values
    the peer uses min − 1e7 instead, a definition of its own, so the comparison is made after a ReLU. At this early
    layer the summed map can be negative everywhere (blank after ReLU), so the channel weights are compared."""
    analysis = mobilenet.analyze(chelsea)
    assert float(analysis.activations(RELU_LAYER).min()) == 0.0
    ours = analysis.cam("ablationcam", target=target, layer=RELU_LAYER)
    assert not analysis.ablation_scores(RELU_LAYER).head_only
    model = copy.deepcopy(mobilenet.model.module)
    layer = dict(model.named_modules())[RELU_LAYER]
    peer = AblationCAM(model=model, target_layers=[layer], batch_size=32)
    theirs = peer.get_cam_weights(analysis.input, layer, [ClassifierOutputTarget(target)],
                                  analysis.activations(RELU_LAYER)[None].numpy(), None)[0]
    assert pearson(ours.weights, theirs) >= 0.95
    np.testing.assert_allclose(ours.weights, theirs, rtol=1e-3, atol=1e-4)


def test_partial_maps_arrive_and_converge(mobilenet, coffee):
    analysis = Explainer("mobilenet_v2").analyze(coffee)
    partials, progress = [], []
    final = analysis.cam("scorecam", layer="features.16", batch_size=16, partial=partials.append,
                         progress=lambda done, total: progress.append((done, total)))
    assert len(partials) >= 3 and progress[-1][0] == progress[-1][1]
    agreement = [pearson(p.saliency, final.saliency) for p in partials]
    assert agreement[-1] > 0.95 and agreement[0] > 0.5, agreement
    half = len(agreement) // 2
    assert np.mean(agreement[half:]) >= np.mean(agreement[:half]), agreement
