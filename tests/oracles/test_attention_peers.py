"""Peers of the attention methods: there are none installed, and what stands in the way of the one that is close.

- Attention rollout and Chefer et al.'s gradient-weighted relevance exist in none of the peers (pytorch-grad-cam
  1.5.7, torchcam 0.5.0, captum 0.9.0), so tests/references/test_attention_papers.py checks them against the papers
  (a hand-built transformer worked out on paper, and plain-torch re-implementations on random ViT/DeiT).
- torchcam 0.5.0 has LeGrad (Bousselham et al. 2024), but only for blocks with a `self_attention` child that is a
  torch.nn.MultiheadAttention (torchvision's VisionTransformer): timm's ViT blocks have `attn`, timm's own Attention,
  so the oracle cannot run on vit_small_patch16_224 and LeGrad is not offered here (the brief's condition).
These tests fail when that changes (a peer gains either method, or torchcam's LeGrad accepts timm's ViT), which is
the signal to add the oracle."""

from __future__ import annotations

import captum.attr
import pytest
import pytorch_grad_cam
import torch
import torchcam.methods

from cam_core import Explainer, methods
from tests.oracles.conftest import trainable_copy

PEER_NAMESPACES = {"pytorch-grad-cam": pytorch_grad_cam, "torchcam": torchcam.methods, "captum": captum.attr}
ABSENT = ("rollout", "chefer", "relevance", "transformerattribution")


def test_no_peer_has_attention_rollout_or_chefers_relevance():
    for library, namespace in PEER_NAMESPACES.items():
        names = [name.lower() for name in dir(namespace)]
        assert not [name for name in names if any(word in name for word in ABSENT)], library
    assert not any(peer for card in methods() if card.id in ("rollout", "chefer") for peer in card.peers)


def test_torchcams_legrad_cannot_run_on_timms_vit():
    torch.manual_seed(0)
    explainer = Explainer("vit_small_patch16_224", weights="random")
    model = trainable_copy(explainer.model.module)
    assert not hasattr(model.blocks[0], "self_attention")
    with pytest.raises(TypeError, match="self_attention: nn.MultiheadAttention"):
        torchcam.methods.LeGrad(model, ["blocks.10", "blocks.11"], score_projection=lambda tokens: model.head(
            model.norm(tokens)[:, 0]))
    assert not any(card.id == "legrad" for card in methods())
