"""Attention rollout (Abnar & Zuidema 2020) and Chefer et al.'s relevance (ICCV 2021) against their papers.

1. A tiny transformer built by hand (timm's ViT with 2 blocks of 2 heads, a 2×2 patch grid and a class token): its
   attention probabilities are set by hand and every block is linear, so the rollout and the gradients with respect
   to the attention are worked out on paper (below), and the relevance follows from them.
2. Random-weight timm vit_small_patch16_224 and deit_small_patch16_224 (no trained weights exist offline) against a
   plain-torch reference: each block's attention recomputed from its qkv projection (softmax(q kᵀ/√d)), the
   gradients by autograd, the rollout and the relevance by the papers' equations; the three two-object photos ×
   three classes (top, second object, lowest logit) for the relevance, one map per photo for the rollout."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cam_core import Explainer
from tests.conftest import TWO_OBJECT_PHOTOS, photo_classes, two_object_photo
from tests.references.conftest import CLASS_KINDS, check

REFERENCED = {"rollout", "chefer"}
TRANSFORMERS = ("vit_small_patch16_224", "deit_small_patch16_224")

# --- 1. the tiny transformer, by hand -------------------------------------------------------------------------------

TINY_TABLE = """models:
  tiny_vit:
    title: a hand-built ViT
    source: timm
    architecture: vit_small_patch16_224
    kwargs: {img_size: 32, patch_size: 16, embed_dim: 2, depth: 2, num_heads: 2, mlp_ratio: 1.0}
    weights: {download: timm}
    preprocessing: {input_size: 32, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]}
    labels: imagenet1k
    layout: tokens
    target_layer: blocks.1.norm1
    layers: [blocks.1.norm1]
"""
TOKENS = 5  # the class token, then patches 1-4 of the 2×2 grid, row by row


def rows(class_row: list[float]) -> torch.Tensor:
    """An attention matrix whose class row is given and whose patches attend to themselves."""
    table = torch.eye(TOKENS)
    table[0] = torch.tensor(class_row)
    return table


# Block 1: head 0 sends the class token's attention to patch 1, head 1 keeps it on the class token.
# Block 2: head 0 sends it to patch 4, head 1 spreads it evenly.
ATTENTION = (torch.stack([rows([0, 1, 0, 0, 0]), rows([1, 0, 0, 0, 0])]),
             torch.stack([rows([0, 0, 0, 0, 1]), rows([0.2] * 5)]))
# On paper: block 1's heads average to the class row (0.5, 0.5, 0, 0, 0); with the identity and renormalised,
# (0.75, 0.25, 0, 0, 0). Block 2: (0.1, 0.1, 0.1, 0.1, 0.6) → (0.55, 0.05, 0.05, 0.05, 0.3). The rolled class row
# is 0.55·(0.75, 0.25, 0, 0, 0) + 0.05·e₁ + 0.05·e₂ + 0.05·e₃ + 0.3·e₄ = (0.4125, 0.1875, 0.05, 0.05, 0.3).
ROLLOUT_ON_PAPER = np.array([[0.1875, 0.05], [0.05, 0.3]])
# Each token's two channels (one per head: head h carries channel h), and the head's weights of three classes.
TOKENS_IN = torch.tensor([[1.0, 0.0], [2.0, -1.0], [-1.0, 2.0], [0.5, 1.0], [3.0, 0.5]])
HEAD = {0: (1.0, 0.5), 1: (-1.0, 2.0), 2: (0.5, -0.5)}


class HandSet(nn.Module):
    """Attention probabilities set by hand: the output of a block's attn_drop, whatever its input."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.register_buffer("table", table)

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        return self.table.expand_as(scores)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Explainer:
    """The tiny ViT made linear: no norms, no MLP, v and the projection the identity, the tokens given by the
    position table (the patch embedding is zero), so a block maps channel h to (I + A_h)·x_h."""
    table = tmp_path_factory.mktemp("tiny") / "models.yaml"
    table.write_text(TINY_TABLE)
    built = Explainer("tiny_vit", weights="random", models_file=table)
    model = built.module_copy()
    with torch.no_grad():
        model.patch_embed.proj.weight.zero_()
        model.patch_embed.proj.bias.zero_()
        model.cls_token.zero_()
        model.pos_embed.copy_(TOKENS_IN[None])
        for block, attention in zip(model.blocks, ATTENTION, strict=True):
            block.norm1, block.norm2 = nn.Identity(), nn.Identity()
            block.attn.qkv.weight[4:] = torch.eye(2)
            block.attn.qkv.bias.zero_()
            block.attn.proj.weight.copy_(torch.eye(2))
            block.attn.proj.bias.zero_()
            block.attn.attn_drop = HandSet(attention)
            block.attn.fused_attn = False
            block.mlp.fc2.weight.zero_()
            block.mlp.fc2.bias.zero_()
        model.norm = nn.Identity()
        model.head.weight.zero_()
        model.head.bias.zero_()
        for target, weights in HEAD.items():
            model.head.weight[target] = torch.tensor(weights)
    return built.with_module(model, "set by hand")


def gradients_on_paper(target: int) -> tuple[torch.Tensor, torch.Tensor]:
    """∂y/∂A of both blocks: with u_h = (I + A1_h)·x_h and y = Σ_h w_h · [(I + A2_h)·u_h]₀,
    ∂y/∂A2_h[i, j] = w_h · δ_i0 · u_h[j] and ∂y/∂A1_h[i, j] = w_h · (I + A2_h)[0, i] · x_h[j]."""
    first, second = ATTENTION
    second_grad, first_grad = torch.zeros(2, TOKENS, TOKENS), torch.zeros(2, TOKENS, TOKENS)
    for head, weight in enumerate(HEAD[target]):
        x = TOKENS_IN[:, head]
        u = (torch.eye(TOKENS) + first[head]) @ x
        second_grad[head, 0] = weight * u
        first_grad[head] = weight * torch.outer((torch.eye(TOKENS) + second[head])[0], x)
    return first_grad, second_grad


def relevance_reference(attentions, gradients, prefix: int, grid) -> torch.Tensor:
    """Chefer et al. 2021: R = I; per block R ← R + E_h[(∇A ⊙ A)⁺]·R; the class token's row over the patches."""
    relevance = torch.eye(attentions[0].shape[-1], dtype=torch.float64)
    for attention, gradient in zip(attentions, gradients, strict=True):
        weighted = (gradient.double() * attention.double()).clamp(min=0).mean(dim=0)
        relevance = relevance + weighted @ relevance
    return relevance[0, prefix:].reshape(grid)


def rollout_reference(attentions, prefix: int, grid) -> torch.Tensor:
    """Abnar & Zuidema 2020: per layer 0.5·(heads' mean) + 0.5·I, multiplied from the first layer up; the class
    token's row over the patches."""
    rolled = torch.eye(attentions[0].shape[-1], dtype=torch.float64)
    for attention in attentions:
        rolled = (0.5 * attention.double().mean(dim=0) + 0.5 * torch.eye(rolled.shape[0], dtype=torch.float64)) @ rolled
    return rolled[0, prefix:].reshape(grid)


def test_the_tiny_transformers_attention_is_the_hand_set_one(tiny, chelsea):
    analysis = tiny.analyze(chelsea)
    for found, expected in zip(analysis.attention(), ATTENTION, strict=True):
        assert torch.equal(found, expected)
    logits = analysis.logits
    # y_c = Σ_h w_h · [(I + A2_h)(I + A1_h) x_h]₀ by hand. Channel 0, x = (1, 2, −1, 0.5, 3): block 1 adds patch 1
    # to the class token, u = (3, 4, −2, 1, 6); block 2 adds patch 4: 3 + 6 = 9. Channel 1, x = (0, −1, 2, 1, 0.5):
    # u = (0, −2, 4, 2, 1); block 2 adds the mean of all: 0 + 0.2 · 5 = 1. Class 0: 1 · 9 + 0.5 · 1.
    assert float(logits[0]) == pytest.approx(9.5, rel=1e-6)


def test_the_tiny_transformers_rollout_is_the_one_on_paper(tiny, chelsea):
    result = tiny.analyze(chelsea).cam("rollout")
    np.testing.assert_allclose(result.raw, ROLLOUT_ON_PAPER, rtol=1e-6)
    np.testing.assert_allclose(rollout_reference(ATTENTION, 1, (2, 2)).numpy(), ROLLOUT_ON_PAPER, rtol=1e-6)


@pytest.mark.parametrize("target", sorted(HEAD))
def test_the_tiny_transformers_gradients_and_relevance_are_the_ones_on_paper(tiny, chelsea, target):
    analysis = tiny.analyze(chelsea)
    expected = gradients_on_paper(target)
    for found, on_paper in zip(analysis.attention_gradients(target), expected, strict=True):
        torch.testing.assert_close(found, on_paper, rtol=1e-6, atol=1e-6)
    result = analysis.cam("chefer", target=target)
    reference = relevance_reference(ATTENTION, expected, 1, (2, 2))
    np.testing.assert_allclose(result.raw, reference.numpy(), rtol=1e-6, atol=1e-7)
    check(result.raw, reference, f"chefer tiny {target}")


# --- 2. random timm ViT and DeiT against plain torch ----------------------------------------------------------------


def plain_attention(attention: nn.Module, x: torch.Tensor, kept: list, attn_mask=None, is_causal=False) -> torch.Tensor:
    """A block's attention written out from its qkv projection: softmax(q kᵀ / √d) v, then the projection; the
    probabilities are kept (the blocks of a classifier pass no mask)."""
    assert attn_mask is None and not is_causal
    batch, tokens, channels = x.shape
    heads = attention.num_heads
    qkv = F.linear(x, attention.qkv.weight, attention.qkv.bias).reshape(batch, tokens, 3, heads, channels // heads)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    probabilities = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    kept.append(probabilities)
    return attention.proj((probabilities @ v).transpose(1, 2).reshape(batch, tokens, channels))


class Reference:
    """A reference copy of a random transformer whose blocks compute their attention in plain torch."""

    def __init__(self, explainer: Explainer):
        self.model = explainer.module_copy().eval()
        self.prefix = explainer.layout.prefix
        self.grid = tuple(explainer.layout.grid)
        for block in self.model.blocks:
            assert isinstance(block.attn.q_norm, nn.Identity) and isinstance(block.attn.norm, nn.Identity)
        self.memo: dict = {}

    def attention(self, model_input: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The logits (in the graph) and every block's attention probabilities."""
        kept: list[torch.Tensor] = []
        for block in self.model.blocks:
            block.attn.forward = partial(plain_attention, block.attn, kept=kept)
        try:
            logits = self.model(model_input.clone().requires_grad_(True))
        finally:
            for block in self.model.blocks:
                del block.attn.forward
        return logits, kept


@pytest.fixture(scope="module", params=TRANSFORMERS)
def transformer(request) -> tuple[Explainer, Reference]:
    torch.manual_seed(0)
    explainer = Explainer(request.param, weights="random")
    return explainer, Reference(explainer)


def test_rollout_matches_the_paper_on_random_transformers(transformer):
    explainer, reference = transformer
    for name in TWO_OBJECT_PHOTOS:
        analysis = explainer.analyze(two_object_photo(name))
        _, attentions = reference.attention(analysis.input)
        expected = rollout_reference([a.detach()[0] for a in attentions], reference.prefix, reference.grid)
        check(analysis.cam("rollout").raw, expected, f"rollout {explainer.name}/{name} all")


def test_chefer_matches_the_paper_on_random_transformers(transformer):
    explainer, reference = transformer
    for name in TWO_OBJECT_PHOTOS:
        analysis = explainer.analyze(two_object_photo(name))
        classes = photo_classes(analysis, name)
        logits, attentions = reference.attention(analysis.input)
        torch.testing.assert_close(logits.detach()[0], analysis.logits, rtol=1e-4, atol=1e-4)
        probabilities = [a.detach()[0] for a in attentions]
        for kind in CLASS_KINDS:
            gradients = torch.autograd.grad(logits[0, classes[kind]], attentions, retain_graph=True)
            expected = relevance_reference(probabilities, [g[0] for g in gradients], reference.prefix,
                                           reference.grid)
            check(analysis.cam("chefer", target=classes[kind]).raw, expected,
                  f"chefer {explainer.name}/{name} {kind}")
