"""The arithmetic of attention rollout and Chefer et al.'s relevance on small hand-computed tensors: three tokens (a
class token and a 1×2 patch grid), two heads, two blocks."""

from __future__ import annotations

import pytest
import torch

from cam_core.methods.attention import (
    chefer,
    chefer_block,
    chefer_blocks,
    discard_lowest,
    fuse_heads,
    rollout,
    rollout_blocks,
    traced_back,
    with_residual,
)
from cam_core.registry import AttentionInputs, CamInputs

# Block 1: head 0 sends the class token's attention to patch 1, head 1 keeps it on the class token; the patches
# attend to themselves. Block 2: head 0 sends it to patch 2, head 1 spreads it evenly.
EYE = torch.eye(3)
BLOCK_1 = torch.stack([torch.tensor([[0.0, 1, 0], [0, 1, 0], [0, 0, 1]]), EYE])
BLOCK_2 = torch.stack([torch.tensor([[0.0, 0, 1], [0, 1, 0], [0, 0, 1]]),
                       torch.tensor([[1 / 3, 1 / 3, 1 / 3], [0, 1, 0], [0, 0, 1]])])


def inputs(gradients=None) -> CamInputs:
    attention = AttentionInputs((BLOCK_1, BLOCK_2), prefix=1, grid=(1, 2), gradients=gradients)
    return CamInputs(activations=torch.zeros(1, 1, 2), target=0, attention=attention)


def test_heads_fuse_by_mean_max_and_min():
    assert torch.equal(fuse_heads(BLOCK_1, "mean")[0], torch.tensor([0.5, 0.5, 0.0]))
    assert torch.equal(fuse_heads(BLOCK_1, "max")[0], torch.tensor([1.0, 1.0, 0.0]))
    assert torch.equal(fuse_heads(BLOCK_1, "min")[0], torch.tensor([0.0, 0.0, 0.0]))


def test_the_residual_adds_the_identity_and_renormalises_each_row():
    # class row (0.5, 0.5, 0) + (1, 0, 0) = (1.5, 0.5, 0), over 2: (0.75, 0.25, 0); the patch rows stay e_i
    mixed = with_residual(fuse_heads(BLOCK_1, "mean"))
    assert torch.allclose(mixed, torch.tensor([[0.75, 0.25, 0.0], [0, 1, 0], [0, 0, 1]]))
    # max fusion: (1, 1, 0) + (1, 0, 0) = (2, 1, 0), over 3
    assert torch.allclose(with_residual(fuse_heads(BLOCK_1, "max"))[0], torch.tensor([2 / 3, 1 / 3, 0.0]))


def test_rollout_multiplies_the_blocks_from_the_first_on_the_right():
    # block 2, mean: class row (1/6, 1/6, 2/3) + e_0 → (7/6, 1/6, 2/3) / 2 = (7/12, 1/12, 1/3)
    # rolled: 7/12 · (0.75, 0.25, 0) + 1/12 · e_1 + 1/3 · e_2 = (7/16, 7/48 + 1/12, 1/3) = (7/16, 11/48, 1/3)
    blocks = rollout_blocks((BLOCK_1, BLOCK_2), "mean", 0.0)
    assert torch.allclose(blocks[0].float(), with_residual(fuse_heads(BLOCK_1, "mean")))
    assert torch.allclose(blocks[1][0].float(), torch.tensor([7 / 12, 1 / 12, 1 / 3]))
    # traced back from the last block: first block 2's class row, then that row times block 1's matrix
    rows = traced_back(blocks)
    assert torch.allclose(rows[0].float(), torch.tensor([7 / 12, 1 / 12, 1 / 3]))
    assert torch.allclose(rows[1].float(), torch.tensor([7 / 16, 11 / 48, 1 / 3]))
    assert torch.allclose(rows[1], (blocks[1] @ blocks[0])[0])
    out = rollout(inputs(), "mean", 0.0)
    assert out.raw.shape == (1, 2) and torch.allclose(out.raw, torch.tensor([[11 / 48, 1 / 3]]))


def test_discarding_zeroes_the_lowest_entries_but_keeps_the_class_tokens_own():
    fused = torch.tensor([[0.1, 0.6, 0.3], [0.2, 0.5, 0.3], [0.05, 0.15, 0.8]])
    kept = discard_lowest(fused, 4 / 9)  # the 4 lowest: 0.05, 0.1 (the class token's own: kept), 0.15, 0.2
    assert torch.equal(kept, torch.tensor([[0.1, 0.6, 0.3], [0.0, 0.5, 0.3], [0.0, 0.0, 0.8]]))
    assert torch.equal(discard_lowest(fused, 0.0), fused)
    assert torch.equal(fused[1, 0], torch.tensor(0.2)), "the input is left as it was"


def test_chefer_keeps_the_positive_gradient_times_attention_averaged_over_heads():
    probabilities = torch.tensor([[[0.5, 0.5], [0.2, 0.8]], [[1.0, 0.0], [0.4, 0.6]]])
    gradients = torch.tensor([[[2.0, -1.0], [0.0, 1.0]], [[-3.0, 4.0], [0.5, 0.5]]])
    # head 0: (1, -0.5; 0, 0.8) → (1, 0; 0, 0.8); head 1: (-3, 0; 0.2, 0.3) → (0, 0; 0.2, 0.3); mean:
    expected = torch.tensor([[0.5, 0.0], [0.1, 0.55]])
    assert torch.allclose(chefer_block(probabilities, gradients), expected)


def test_chefer_relevance_accumulates_from_the_identity():
    # gradient 1 everywhere: Ē is the heads' mean attention. R1 = I + Ē1, R2 = R1 + Ē2·R1 = (I + Ē2)·R1.
    ones = (torch.ones(2, 3, 3), torch.ones(2, 3, 3))
    blocks = chefer_blocks(AttentionInputs((BLOCK_1, BLOCK_2), 1, (1, 2), ones))
    first = torch.tensor([[1.5, 0.5, 0.0], [0, 2, 0], [0, 0, 2]])
    assert torch.allclose(blocks[0].float(), first)
    # Ē2's class row (1/6, 1/6, 2/3): R2's class row = (1.5, 0.5, 0) + 1/6·(1.5, 0.5, 0) + 1/6·(0, 2, 0) + 2/3·(0, 0, 2)
    assert torch.allclose(traced_back(blocks)[-1].float(), torch.tensor([1.75, 0.5 + 1 / 12 + 1 / 3, 4 / 3]))
    assert torch.allclose(chefer(inputs(ones)).raw, torch.tensor([[0.5 + 1 / 12 + 1 / 3, 4 / 3]]))


def test_a_negative_gradient_everywhere_leaves_only_the_identity():
    minus = (-torch.ones(2, 3, 3), -torch.ones(2, 3, 3))
    assert torch.equal(chefer(inputs(minus)).raw, torch.zeros(1, 2))


@pytest.mark.parametrize("fusion", ["mean", "max", "min"])
def test_rollout_rows_stay_distributions(fusion):
    blocks = rollout_blocks((BLOCK_1, BLOCK_2), fusion, 0.5)
    rolled = blocks[1] @ blocks[0]
    assert torch.allclose(rolled.sum(dim=-1), torch.ones(3, dtype=rolled.dtype))
    assert bool((rolled >= 0).all())
    assert torch.allclose(traced_back(blocks)[-1], rolled[0])
