"""The arithmetic of Score-CAM, Ablation-CAM, Group-, Cluster- and Cosine-CAM against numbers worked out by hand on
tiny score matrices; constant maps skipped exactly; the spectral clustering's fallback."""

from __future__ import annotations

import numpy as np
import torch

from cam_core.inputs.mask_scores import AblationScores, MaskScores, MaskSpec, group_labels, score_masks
from cam_core.inputs.masking import baseline_input, masked_inputs, normalized_masks
from cam_core.registry import CamInputs, get_method


def tiny_scores(logits: list[list[float]], baseline: list[float], labels=None) -> MaskScores:
    count = len(logits)
    maps = torch.arange(count * 4, dtype=torch.float32).reshape(count, 2, 2) % 3
    return MaskScores(maps, labels, torch.tensor(logits), torch.tensor(baseline), torch.zeros(count, dtype=bool), 0.0)


def test_scorecam_weightings_by_hand():
    activations = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]]])
    scores = tiny_scores([[0.0, 3.0], [0.0, 1.0]], [0.0, 1.0])
    inputs = CamInputs(activations=activations, target=1, mask_scores=scores)

    def weights(choice: str) -> np.ndarray:
        out = get_method("scorecam").apply(inputs, weights=choice, baseline="zero", align_corners=False)
        return out.weights.numpy()

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


