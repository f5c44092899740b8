"""Recipro-CAM's masked copies, FEM's k-sigma masks, KPCA-CAM's component, Deep Feature Factorization's concepts and
the map written back into a layer's output, against numbers worked out by hand on tiny tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cam_core import CamError
from cam_core.inputs.concepts import Concepts, ConceptSpec, concept_maps, factorise
from cam_core.inputs.position_scores import PositionScores, PositionSpec, masked_copies, spatial_weights
from cam_core.methods.common import first_principal_component
from cam_core.models.layouts import Layout
from cam_core.registry import CamInputs, get_method

# Two channels on a 2×2 grid.
A = torch.tensor([[[1.0, 2.0], [0.0, 1.0]], [[0.0, 1.0], [3.0, 0.0]]])


def apply(method: str, inputs: CamInputs, **params):
    return get_method(method).apply(inputs, **params)


def test_gaussian_mask_is_the_kernel_around_the_position_cut_at_the_border():
    corner, centre = spatial_weights(3, 3, slice(0, 1), "gaussian")[0], spatial_weights(3, 3, slice(4, 5),
                                                                                         "gaussian")[0]
    np.testing.assert_allclose(corner, [[1 / 4, 1 / 8, 0], [1 / 8, 1 / 16, 0], [0, 0, 0]])
    np.testing.assert_allclose(centre, [[1 / 16, 1 / 8, 1 / 16], [1 / 8, 1 / 4, 1 / 8], [1 / 16, 1 / 8, 1 / 16]])
    one_hot = spatial_weights(3, 3, slice(5, 6), "one-hot")[0]
    np.testing.assert_array_equal(one_hot, [[0, 0, 0], [0, 0, 1], [0, 0, 0]])


def test_masked_copy_spreads_the_positions_own_vector():
    # position (0, 1): the vector (2, 1), at (0, 1) with weight ¼, beside it with ⅛, diagonally with 1/16
    copy = masked_copies(A, slice(1, 2), "gaussian")[0]
    np.testing.assert_allclose(copy[0], [[2 / 8, 2 / 4], [2 / 16, 2 / 8]])
    np.testing.assert_allclose(copy[1], [[1 / 8, 1 / 4], [1 / 16, 1 / 8]])
    one_hot = masked_copies(A, slice(0, 4), "one-hot")
    np.testing.assert_allclose(one_hot.sum(dim=0), A)
    with pytest.raises(CamError, match="mask must be one of gaussian, one-hot"):
        PositionSpec("layer", "square")


def test_reciprocam_reads_each_positions_probability_for_the_target():
    logits = torch.tensor([[0.0, 0.0], [0.0, math.log(3.0)], [math.log(3.0), 0.0], [0.0, 0.0]])
    scores = PositionScores(logits, True, 0.0)
    raw = apply("reciprocam", CamInputs(activations=A, target=1, position_scores=scores)).raw
    np.testing.assert_allclose(raw, [[0.5, 0.75], [0.25, 0.5]], rtol=1e-6)


def test_fem_masks_above_mean_plus_k_sigma_weighted_by_the_means():
    # channel 0: mean 1, σ = √0.5 ≈ 0.707, k = 1: threshold 1.707, only the 2 passes; channel 1: mean 1, σ = √1.5,
    # threshold 2.22, only the 3 passes
    out = apply("fem", CamInputs(activations=A, target=0), k=1.0, aggregate="masks")
    np.testing.assert_allclose(out.weights, [1.0, 1.0])
    np.testing.assert_allclose(out.raw, [[0.0, 1.0], [1.0, 0.0]])
    peer = apply("fem", CamInputs(activations=A, target=0), k=1.0, aggregate="activations")
    np.testing.assert_allclose(peer.weights, [0.25, 0.25])
    np.testing.assert_allclose(peer.raw, 0.25 * A.sum(dim=0))
    flat = apply("fem", CamInputs(activations=torch.ones(2, 2, 2), target=0), k=2.0, aggregate="masks")
    assert not torch.any(flat.raw) and "above its mean + 2σ" in flat.note


def test_kpcacam_with_the_linear_kernel_is_the_centred_principal_component():
    maps = torch.tensor([[[1.0, 2.0, 0.0], [3.0, 1.0, 0.5]], [[0.0, 1.0, 2.0], [1.0, 0.0, 4.0]],
                         [[2.0, 2.0, 1.0], [0.0, 1.0, 1.0]]])
    ours = apply("kpcacam", CamInputs(activations=maps, target=0), kernel="linear", sign_rule="mean agreement").raw
    pca, _ = first_principal_component(maps, centre=True)
    np.testing.assert_allclose(ours, pca, rtol=1e-4, atol=1e-5)
    flat = apply("kpcacam", CamInputs(activations=torch.ones(3, 2, 3), target=0), kernel="sigmoid",
                 sign_rule="mean agreement")
    assert not torch.any(flat.raw) and flat.note


def test_a_rank_one_matrix_is_one_concept_with_its_vector_at_the_peak():
    # A = u vᵀ with u = (1, 2) over the channels and v = (0, 1, 2, 4) over the positions: one concept, its map v
    # scaled to a peak of 1 and its vector u·4
    u, v = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0, 2.0, 4.0])
    acts = (u[:, None] * v[None, :]).reshape(2, 2, 2)
    maps, vectors, error, note = factorise(acts, ConceptSpec("layer", 1))
    np.testing.assert_allclose(maps[0].flatten(), v / 4, atol=1e-3)
    np.testing.assert_allclose(vectors[0], u * 4, rtol=1e-3)
    assert error < 1e-3 and note == ""
    shifted, _, _, _ = factorise(acts - 1.0, ConceptSpec("layer", 1, shift="channel minimum"))
    assert torch.all(shifted >= 0)
    _, _, _, clipped = factorise(acts - 1.0, ConceptSpec("layer", 1))
    assert "negative" in clipped
    filled = concept_maps(vectors, slice(0, 1), 2, 3)
    np.testing.assert_array_equal(filled[0, 1], torch.full((2, 3), float(vectors[0, 1])))
    with pytest.raises(CamError, match="number of concepts"):
        ConceptSpec("layer", 0)


def test_dff_weights_each_concepts_map_by_its_probability_for_the_target():
    maps = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]])
    logits = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])  # concept 0: class 0 at ¾; concept 1: ½ and ½
    concepts = Concepts(ConceptSpec("layer", 2), maps, torch.zeros(2, 2), logits, True, 0.0)
    out = apply("dff", CamInputs(activations=A, target=1, concepts=concepts))
    np.testing.assert_allclose(out.weights, [0.25, 0.5], rtol=1e-6)
    np.testing.assert_allclose(out.raw, [[0.25, 0.0], [0.0, 0.5]], rtol=1e-6)
    assert concepts.top_classes(0, 1) == [(0, pytest.approx(0.75))]


@pytest.mark.parametrize("layout, output", [
    (Layout("nchw"), torch.arange(24.0).reshape(2, 3, 2, 2)),
    (Layout("tokens", prefix=1, grid=(2, 2)), torch.arange(30.0).reshape(2, 5, 3)),
    (Layout("nhwc"), torch.arange(24.0).reshape(2, 2, 2, 3)),
])
def test_a_map_written_back_into_a_layer_output_is_read_out_again(layout, output):
    maps = layout.to_map(output)
    np.testing.assert_array_equal(layout.replace_map(output, maps), output)
    changed = layout.replace_map(output, torch.zeros_like(maps))
    assert not torch.any(layout.to_map(changed))
    if layout.prefix:
        np.testing.assert_array_equal(changed[:, :1], output[:, :1])
