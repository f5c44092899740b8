"""Score-CAM and Ablation-CAM against pytorch-grad-cam (grad-cam==1.5.7), where the peer's definition is ours."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from pytorch_grad_cam import AblationCAM, ScoreCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from cam_core import Explainer
from tests.conftest import pearson


def peer_copy(module: torch.nn.Module) -> torch.nn.Module:
    """The peer's own deep copy of the network, its weights laid out channels-last: the peers run one NCHW batch after
    another, which oneDNN then computes on its fast path (the same arithmetic, about twice as fast on CPU)."""
    return copy.deepcopy(module).to(memory_format=torch.channels_last)


LAYER = "features.10"  # 64 channels at 14×14: the peers' one-pass-per-channel loops stay short


def peer_map(peer_class, explainer: Explainer, analysis, target: int, layer_name: str = LAYER, **kwargs) -> np.ndarray:
    model = peer_copy(explainer.model.module)
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
    assert pearson(np.maximum(ours.raw, 0), theirs, f"Score-CAM class {target}") >= 0.95


RELU_LAYER = "features.1.conv.0"  # 32 channels after a ReLU6


@pytest.mark.parametrize("target", [285, 282])
def test_ablationcam_matches_pytorch_grad_cam(mobilenet, chelsea, target):
    """Both set the channel to zero where the layer's minimum is 0 (after a ReLU); on layers with negative values
    the peer uses min − 1e7 instead, a definition of its own, so the comparison is made after a ReLU. At this early
    layer the summed map can be negative everywhere (blank after ReLU), so the channel weights are compared."""
    analysis = mobilenet.analyze(chelsea)
    assert float(analysis.activations(RELU_LAYER).min()) == 0.0
    ours = analysis.cam("ablationcam", target=target, layer=RELU_LAYER)
    assert not analysis.ablation_scores(RELU_LAYER).head_only
    model = peer_copy(mobilenet.model.module)
    layer = dict(model.named_modules())[RELU_LAYER]
    peer = AblationCAM(model=model, target_layers=[layer], batch_size=32)
    theirs = peer.get_cam_weights(analysis.input, layer, [ClassifierOutputTarget(target)],
                                  analysis.activations(RELU_LAYER)[None].numpy(), None)[0]
    assert pearson(ours.weights, theirs, f"Ablation-CAM weights class {target}") >= 0.95
    np.testing.assert_allclose(ours.weights, theirs, rtol=1e-3, atol=1e-4)
