"""Every block's attention probabilities of a timm Vision Transformer, captured in one pass as tensors in the graph,
so that a class logit can be differentiated with respect to them.

timm's `Attention` computes attention with `scaled_dot_product_attention` (`fused_attn`), which never forms the
probabilities. Its own unfused branch does — softmax(q kᵀ · scale), passed through `attn_drop` (the identity in
eval mode), then multiplied with v — so for this pass only, on the pass's own replica, each block's `fused_attn` is
switched off (and restored afterwards) and `attn_drop`'s output is captured. That is the model's own computation,
written out: the logits agree with the fused ones to float32 rounding (tests/engine/test_attention_pass.py), and
nothing is re-implemented beside the model (a hook on `qkv` recomputing the softmax would be a second copy of the
block that could drift from the model's). The shared network is never changed: replicas are separate module
objects over the same tensors (cam_core.sharing.replicas)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

from torch import nn

ATTENTION_PARTS = ("qkv", "attn_drop", "fused_attn", "num_heads")  # what a timm Attention module is known by


@dataclass(frozen=True)
class AttentionBlocks:
    """The attention modules of a model, first block to last, or (problem) why it has no global token-to-token
    attention to read: the end of a sentence that starts with the model's name, such as "has none"."""

    names: tuple[str, ...] = ()
    problem: str = ""

    @property
    def probability_layers(self) -> list[str]:
        """The modules whose outputs are the attention probabilities (the unfused branch's `attn_drop`)."""
        return [f"{name}.attn_drop" for name in self.names]


def find_attention(model: nn.Module, prefix: int) -> AttentionBlocks:
    """The `blocks.*.attn` modules of a timm ViT/DeiT with prefix class tokens, or the problem: no attention, a
    windowed one (Swin), or no class token whose row could be read."""
    kinds = {type(module).__name__ for module in model.modules()}
    if "WindowAttention" in kinds:
        return AttentionBlocks(problem="attends within local windows (Swin's windowed attention, shifted between "
                               "blocks), not from every token to every other, so there is no token-to-token "
                               "attention to follow from the class token back to the patches")
    blocks = getattr(model, "blocks", None)
    found = []
    if isinstance(blocks, nn.Sequential | nn.ModuleList):
        for index, block in enumerate(blocks):
            attention = getattr(block, "attn", None)
            if attention is not None and all(hasattr(attention, part) for part in ATTENTION_PARTS):
                found.append(f"blocks.{index}.attn")
    if not found or len(found) != len(blocks):
        return AttentionBlocks(problem="has none")
    if prefix < 1:
        return AttentionBlocks(problem="has no class token, whose row of the attention the map would be")
    return AttentionBlocks(tuple(found))


@contextlib.contextmanager
def unfused(model: nn.Module, blocks: AttentionBlocks) -> Iterator[nn.Module]:
    """model with each attention module of blocks computing its probabilities explicitly (timm's own unfused
    branch) while inside; the previous setting is restored after. model must be a private replica."""
    modules = [model.get_submodule(name) for name in blocks.names]
    before = [module.fused_attn for module in modules]
    for module in modules:
        module.fused_attn = False
    try:
        yield model
    finally:
        for module, fused in zip(modules, before, strict=True):
            module.fused_attn = fused
