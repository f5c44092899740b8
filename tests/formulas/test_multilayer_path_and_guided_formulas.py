"""The arithmetic of Smooth Grad-CAM++, Integrated Grad-CAM, multi-layer Layer-CAM, Zoom-CAM, Poly-CAM and the guided
methods against numbers worked out by hand on tiny tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cam_core.inputs.mask_scores import MaskScores
from cam_core.inputs.masking import normalized_masks
from cam_core.inputs.perturbed import PathSpec, path_inputs
from cam_core.methods.multilayer import local_normalise, pcam_layer_map, pcam_refine, pcam_weights, refine
from cam_core.registry import CamInputs, LayerInputs, PathInputs, get_method
from cam_core.render.saliency import saliency_map


def run(method: str, inputs: CamInputs, **params):
    chosen = get_method(method)
    values = {param.name: param.default for param in chosen.card.params}
    values.update(params)
    return chosen.apply(inputs, **values)


# Bilinear 2 → 4 upsampling with align_corners=False, worked out by hand: output i samples source (i + .5)/2 − .5 =
# −.25 (clamped to 0), .25, .75, 1.25 (clamped to 1), so source 0 contributes 1, .75, .25, 0 and source 1 the rest.
FROM_0 = np.array([1.0, 0.75, 0.25, 0.0])
FROM_1 = np.array([0.0, 0.25, 0.75, 1.0])


def up_2_to_4(values) -> np.ndarray:
    """A 2×2 map bilinearly upsampled to 4×4, from the hand-derived weights above."""
    v = np.asarray(values, dtype=np.float64)
    rows = (FROM_0, FROM_1)
    return sum(v[a, b] * np.outer(rows[a], rows[b]) for a in range(2) for b in range(2))


def test_the_hand_derived_bilinear_weights_match_torch():
    values = torch.tensor([[1.0, -2.0], [3.0, 5.0]])
    got = torch.nn.functional.interpolate(values[None, None], size=(4, 4), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(got[0, 0].numpy(), up_2_to_4(values), rtol=1e-6)


# ---------------------------------------------------------------------------------------------- Smooth Grad-CAM++

# Two channels on a 1×2 grid; channel sums 4 and 2.
SA = torch.tensor([[[1.0, 3.0]], [[2.0, 0.0]]])
# Two noisy copies' gradients, (n, C, h, w).
SG = torch.tensor(
    [
        [[[1.0, -1.0]], [[2.0, 1.0]]],
        [[[1.0, 3.0]], [[0.0, -1.0]]],
    ]
)


def test_smoothgradcampp_alpha_and_weights_by_hand():
    path = PathInputs(activations=SA[None].repeat(2, 1, 1, 1) * 100.0, gradients=SG)
    out = run("smoothgradcampp", CamInputs(activations=SA, target=0, path=path), samples=2, sigma=0.1, seed=0,
              normalise_alpha=False)
    # channel 0 (ΣA = 4)
    #   position 0: g = 1, 1  → D1 = 1, D2 = 1, D3 = 1       → α = 1/(2 + 4·1) = 1/6,   ReLU(D1) = 1
    #   position 1: g = −1, 3 → D1 = 1, D2 = 5, D3 = 13      → α = 5/(10 + 4·13) = 5/62, ReLU(D1) = 1
    #   w0 = 1/6 + 5/62 = 23/93
    # channel 1 (ΣA = 2)
    #   position 0: g = 2, 0  → D1 = 1, D2 = 2, D3 = 4       → α = 2/(4 + 2·4) = 1/6,   ReLU(D1) = 1
    #   position 1: g = 1, −1 → D1 = 0                       → contributes nothing
    #   w1 = 1/6
    w0, w1 = 23 / 93, 1 / 6
    np.testing.assert_allclose(out.weights.numpy(), [w0, w1], rtol=1e-5)
    # The map uses the clean activations (not the noisy copies', which are 100× larger here).
    np.testing.assert_allclose(out.raw.numpy(), [[w0 * 1 + w1 * 2, w0 * 3]], rtol=1e-5)
    # Grad-CAM++ on the mean gradient alone would give channel 0 position 1 α = 1/(2 + 4) instead of 5/62.
    mean_only = run("gradcampp", CamInputs(activations=SA, target=0, gradients=SG.mean(dim=0)), normalise_alpha=False)
    # Normalised as the Grad-CAM++ authors' code does: w0 = (1/6 + 5/62) / (1/6 + 5/62) · ... = Σ α ReLU(D1) / Σ α.
    normalised = run("smoothgradcampp", CamInputs(activations=SA, target=0, path=path), samples=2, sigma=0.1, seed=0)
    np.testing.assert_allclose(normalised.weights.numpy(), [1.0, 1.0], rtol=1e-5)
    assert abs(float(mean_only.weights[0]) - w0) > 0.05


def test_smoothgradcampp_alpha_is_zero_where_no_copy_has_a_gradient():
    grads = torch.zeros(3, 1, 1, 2)
    grads[:, 0, 0, 1] = torch.tensor([2.0, 2.0, 2.0])
    acts = torch.tensor([[[5.0, 1.0]]])
    out = run("smoothgradcampp", CamInputs(activations=acts, target=0, path=PathInputs(acts[None], grads)),
              samples=3, sigma=0.1, seed=0, normalise_alpha=False)
    # Only position 1 counts: D = 2, 4, 8, ΣA = 6 → α = 4/(8 + 48) = 1/14, w = 2/14.
    assert torch.isfinite(out.raw).all()
    np.testing.assert_allclose(out.weights.numpy(), [2 / 14], rtol=1e-5)


def test_smoothgradcampp_with_identical_copies_is_gradcampp():
    acts = torch.tensor([[[1.0, 2.0], [0.0, 1.0]], [[0.0, 1.0], [3.0, 0.0]]])
    grads = torch.tensor([[[0.5, -0.5], [1.0, 0.0]], [[-1.0, 0.0], [0.0, 2.0]]])
    path = PathInputs(activations=acts[None].repeat(4, 1, 1, 1), gradients=grads[None].repeat(4, 1, 1, 1))
    smooth = run("smoothgradcampp", CamInputs(activations=acts, target=0, path=path), samples=4, sigma=0.0, seed=0)
    plain = run("gradcampp", CamInputs(activations=acts, target=0, gradients=grads))
    np.testing.assert_allclose(smooth.weights.numpy(), plain.weights.numpy(), rtol=1e-6)
    np.testing.assert_allclose(smooth.raw.numpy(), plain.raw.numpy(), rtol=1e-6)
    np.testing.assert_allclose(plain.weights.numpy(), [0.7, 2.0], rtol=1e-5)  # test_formulas' numbers


# ------------------------------------------------------------------------------------------- Integrated Grad-CAM


def replace_baseline(path: PathInputs, baseline: torch.Tensor) -> PathInputs:
    return PathInputs(path.activations, path.gradients, baseline)


def test_intgradcam_weights_are_the_path_mean_and_the_baseline_is_subtracted():
    acts = torch.tensor([[[1.0, 3.0]], [[2.0, 0.0]]])
    baseline = torch.tensor([[[1.0, 1.0]], [[0.0, 0.0]]])
    grads = torch.tensor(
        [
            [[[1.0, 3.0]], [[2.0, -2.0]]],
            [[[0.0, 0.0]], [[4.0, 2.0]]],
        ]
    )
    path = PathInputs(activations=torch.full((2, 2, 1, 2), 50.0), gradients=grads, baseline=baseline)
    out = run("intgradcam", CamInputs(activations=acts, target=0, path=path), steps=2, blur=4.0)
    # w0 = (1 + 3 + 0 + 0)/4 = 1, w1 = (2 − 2 + 4 + 2)/4 = 1.5
    np.testing.assert_allclose(out.weights.numpy(), [1.0, 1.5])
    # A − A' = [[0, 2]] and [[2, 0]] → 1·[0, 2] + 1.5·[2, 0] = [3, 2]
    np.testing.assert_allclose(out.raw.numpy(), [[3.0, 2.0]])
    # A baseline equal to the image leaves nothing to explain.
    same = run("intgradcam", CamInputs(activations=acts, target=0, path=replace_baseline(path, acts)), steps=2,
               blur=0.0)
    np.testing.assert_allclose(same.raw.numpy(), [[0.0, 0.0]])


def test_blur_path_runs_from_the_baseline_to_the_image_in_even_steps():
    torch.manual_seed(0)
    image = torch.randn(1, 3, 16, 16)
    rows = path_inputs(image, PathSpec("blur", "x", 4, 2.0))
    assert rows.shape == (5, 3, 16, 16)
    baseline = rows[0]
    assert float((baseline - image[0]).abs().max()) > 0.1, "the baseline is not blurred"
    assert float(baseline.std()) < float(image.std())
    for m in range(1, 5):
        np.testing.assert_allclose(rows[m].numpy(), (baseline + m / 4 * (image[0] - baseline)).numpy(), atol=1e-5)
    np.testing.assert_allclose(rows[-1].numpy(), image[0].numpy(), atol=1e-5)


def test_noise_copies_follow_the_seed_and_sigma_times_the_value_range():
    image = torch.linspace(-2, 2, 3 * 32 * 32).reshape(1, 3, 32, 32)  # value range 4
    first = path_inputs(image, PathSpec("noise", "x", 6, 0.25, seed=7))
    again = path_inputs(image, PathSpec("noise", "x", 6, 0.25, seed=7))
    other = path_inputs(image, PathSpec("noise", "x", 6, 0.25, seed=8))
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)
    noise = first - image
    assert float(noise.std()) == pytest.approx(0.25 * 4, rel=0.05)
    assert not torch.allclose(noise[0], noise[1]), "every copy needs its own noise"


# --------------------------------------------------------------------------------------- Layer-CAM and Zoom-CAM

# A coarse 2×2 layer (one channel) and a fine 4×4 layer (one channel).
COARSE_A = torch.tensor([[[1.0, 2.0], [3.0, -1.0]]])
COARSE_G = torch.tensor([[[-1.0, 0.5], [0.0, 2.0]]])
FINE_A = torch.zeros(1, 4, 4)
FINE_A[0, 3, 0], FINE_A[0, 0, 0], FINE_A[0, 0, 3] = 4.0, 2.0, -1.0
FINE_G = torch.ones(1, 4, 4)
STACK = (LayerInputs("fine", FINE_A, FINE_G), LayerInputs("coarse", COARSE_A, COARSE_G))


def stack_inputs(stack=STACK) -> CamInputs:
    return CamInputs(activations=stack[-1].activations, target=0, gradients=stack[-1].gradients, stack=stack)


def fine_parts() -> tuple[np.ndarray, np.ndarray]:
    """The fine layer's map is FINE_A itself (gradient 1): positive part min-max scaled → 2/4 at (0,0), 1 at (3,0);
    negative part → 1 at (0,3)."""
    positive = np.zeros((4, 4))
    positive[0, 0], positive[3, 0] = 0.5, 1.0
    negative = np.zeros((4, 4))
    negative[0, 3] = 1.0
    return positive, negative


def test_layercam_on_one_layer_is_unchanged_by_the_stack():
    # Σ ReLU(g)·A = [[0·1, .5·2], [0·3, 2·(−1)]]
    alone = run("layercam", CamInputs(activations=COARSE_A, target=0, gradients=COARSE_G))
    np.testing.assert_allclose(alone.raw.numpy(), [[0.0, 1.0], [0.0, -2.0]])
    one = run("layercam", stack_inputs(STACK[1:]))
    np.testing.assert_allclose(one.raw.numpy(), alone.raw.numpy())
    for fusion in ("max", "mean"):
        assert torch.equal(run("layercam", stack_inputs(STACK[1:]), fusion=fusion, gamma=5.0).raw, alone.raw)


def test_layercam_fused_by_max_after_tanh():
    gamma = 2.0
    out = run("layercam", stack_inputs(), fusion="max", gamma=gamma)
    assert out.raw.shape == (4, 4)
    t = math.tanh(gamma)
    # coarse map [[0, 1], [0, −2]]: positive part min-max → [[0, 1], [0, 0]], negative part → [[0, 0], [0, 1]]
    fine_pos, fine_neg = fine_parts()
    positive = np.maximum(up_2_to_4([[0, t], [0, 0]]), np.tanh(gamma * fine_pos))
    negative = np.maximum(up_2_to_4([[0, 0], [0, t]]), np.tanh(gamma * fine_neg))
    np.testing.assert_allclose(out.raw.numpy(), positive - negative, rtol=1e-5, atol=1e-6)
    # The layers' order does not matter.
    swapped = run("layercam", stack_inputs(STACK[::-1]), fusion="max", gamma=gamma)
    np.testing.assert_allclose(swapped.raw.numpy(), out.raw.numpy(), rtol=1e-6)
    # Spot values: at (0, 3) the coarse layer's evidence for (t, from its top-right cell) and the fine layer's against
    # (tanh(2·1) = t) cancel; at (3, 0) only the fine layer's strongest evidence for is left.
    assert abs(float(out.raw[0, 3])) < 1e-6
    assert float(out.raw[3, 0]) == pytest.approx(t, rel=1e-5)


def test_layercam_fused_by_mean_without_tanh():
    out = run("layercam", stack_inputs(), fusion="mean", gamma=2.0)
    fine_pos, fine_neg = fine_parts()
    positive = (up_2_to_4([[0, 1], [0, 0]]) + fine_pos) / 2
    negative = (up_2_to_4([[0, 0], [0, 1]]) + fine_neg) / 2
    np.testing.assert_allclose(out.raw.numpy(), positive - negative, rtol=1e-5, atol=1e-6)
    # gamma only steers the max fusion
    np.testing.assert_allclose(run("layercam", stack_inputs(), fusion="mean", gamma=7.0).raw.numpy(),
                               out.raw.numpy())


def test_zoomcam_fuses_each_layers_rectified_map_by_max():
    out = run("zoomcam", stack_inputs())
    # The authors' fusion: coarse Σ g·A = [[−1, 1], [0, −2]] → ReLU → [[0, 1], [0, 0]], min-max → the same; the fine
    # layer's rectified, min-max scaled map; the maximum of the two at the finest resolution.
    fine_pos, _ = fine_parts()
    np.testing.assert_allclose(out.raw.numpy(), np.maximum(up_2_to_4([[0, 1], [0, 0]]), fine_pos), rtol=1e-5,
                               atol=1e-6)
    assert out.weights is None and not get_method("zoomcam").card.signed


def test_zoomcam_has_no_evidence_against_the_class():
    negative_only = (
        LayerInputs("fine", -FINE_A.abs(), FINE_G.abs()),
        LayerInputs("coarse", -COARSE_A.abs(), COARSE_G.abs()),
    )
    assert not run("zoomcam", stack_inputs(negative_only)).raw.any()


def test_a_fused_methods_negative_map_is_the_fused_negative_evidence():
    # Where no layer has positive evidence, the negative saliency is exactly the fused negative evidence: take a
    # stack whose positive evidence is nowhere (activations negative, gradients positive).
    negative_only = (
        LayerInputs("fine", -FINE_A.abs(), FINE_G),
        LayerInputs("coarse", -COARSE_A.abs(), COARSE_G.abs()),
    )
    # Both layers' maps: coarse Σ g·A = [[−1, −1], [0, −2]] (all gradients ≥ 0, so Layer-CAM's ReLU(g) changes
    # nothing) → negative part min-max [[.5, .5], [0, 1]]; fine −|FINE_A| → .5 at (0,0), 1 at (3,0), .25 at (0,3).
    fine = np.zeros((4, 4))
    fine[0, 0], fine[3, 0], fine[0, 3] = 0.5, 1.0, 0.25
    coarse = up_2_to_4([[0.5, 0.5], [0, 1]])
    for method, params, fused in (
        ("layercam", {"fusion": "mean"}, (coarse + fine) / 2),
        (
            "layercam",
            {"fusion": "max", "gamma": 3.0},
            np.maximum(up_2_to_4(np.tanh(3 * np.array([[0.5, 0.5], [0, 1]]))), np.tanh(3 * fine)),
        ),
    ):
        raw = run(method, stack_inputs(negative_only), **params).raw
        np.testing.assert_allclose(raw.numpy(), -fused, rtol=1e-5, atol=1e-6)
        negative, _ = saliency_map(raw, (4, 4), sign="negative")
        np.testing.assert_allclose(negative, (fused - fused.min()) / (fused.max() - fused.min()), rtol=1e-5, atol=1e-6)
        positive, note = saliency_map(raw, (4, 4))
        assert not positive.any() and "empty" in note



# ------------------------------------------------------------------------------------------------------- Poly-CAM


def test_local_normalise_makes_every_cell_average_one():
    values = torch.tensor(
        [
            [1.0, 3.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0],
            [2.0, 2.0, 5.0, 1.0],
            [2.0, 2.0, 1.0, 1.0],
        ]
    )
    got = local_normalise(values, (2, 2))
    expected = [
        [1.0, 3.0, 1.0, 1.0],  # cell (0,0) has mean 1; cell (0,1) is all zero → spread evenly as 1s
        [0.0, 0.0, 1.0, 1.0],
        [1.0, 1.0, 2.5, 0.5],  # cell (1,0) has mean 2; cell (1,1) has mean 2
        [1.0, 1.0, 0.5, 0.5],
    ]
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)
    cells = got.numpy().reshape(2, 2, 2, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(cells, np.ones((2, 2)), rtol=1e-6)


def test_refine_of_a_constant_map_is_c_times_f_over_its_cell_mean():
    mask = torch.tensor(
        [
            [4.0, 0.0, 1.0, 1.0],
            [0.0, 0.0, 1.0, 1.0],
            [0.0, 6.0, 0.0, 0.0],
            [0.0, 2.0, 0.0, 0.0],
        ]
    )
    got = refine(torch.full((2, 2), 3.0), [mask])
    # cell means 1, 1, 2, 0 → 3·F/mean, and 3·1 in the empty cell
    expected = 3.0 * np.array(
        [
            [4.0, 0.0, 1.0, 1.0],
            [0.0, 0.0, 1.0, 1.0],
            [0.0, 3.0, 1.0, 1.0],
            [0.0, 1.0, 1.0, 1.0],
        ]
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)
    # The class evidence of each coarse cell is only moved inside the cell: the cells keep their total.
    np.testing.assert_allclose(got.numpy().reshape(2, 2, 2, 2).sum(axis=(1, 3)), np.full((2, 2), 12.0), rtol=1e-6)


# Poly-CAM stack: deepest 2×2 (one channel, gradient 0.5 everywhere → Grad-CAM weight 0.5), one finer 4×4 layer whose
# second channel is negative except at (0, 1), so F = Σ ReLU(A) differs from Σ A.
POLY_DEEP_A = torch.tensor([[[1.0, 2.0], [3.0, -1.0]]])
POLY_DEEP_G = torch.full((1, 2, 2), 0.5)
POLY_FINE_A = torch.stack(
    [
        torch.tensor([[1.0, 3.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [2.0, 2.0, 5.0, 1.0], [2.0, 2.0, 1.0, 1.0]]),
        torch.full((4, 4), -5.0),
    ]
)
POLY_FINE_A[1, 0, 1] = 1.0
POLY_NORMALISED = np.array(
    [
        [0.8, 3.2, 1.0, 1.0],  # cell (0,0): F = [[1, 4], [0, 0]], mean 1.25
        [0.0, 0.0, 1.0, 1.0],
        [1.0, 1.0, 2.5, 0.5],
        [1.0, 1.0, 0.5, 0.5],
    ]
)


def poly_inputs(*layers: LayerInputs) -> CamInputs:
    return CamInputs(activations=layers[-1].activations, target=0, gradients=layers[-1].gradients, stack=layers)


def test_gradpolycam_refines_the_deepest_gradcam_map_by_the_finer_layers_activations():
    fine = LayerInputs("fine", POLY_FINE_A, torch.zeros_like(POLY_FINE_A))
    deep = LayerInputs("deep", POLY_DEEP_A, POLY_DEEP_G)
    out = run("gradpolycam", poly_inputs(fine, deep), base="gradcam", masks="activations")
    np.testing.assert_allclose(out.weights.numpy(), [0.5])
    coarse = [[0.5, 1.0], [1.5, -0.5]]
    # Evidence for and against refined separately: up(ReLU(S))·N − up(ReLU(−S))·N
    expected = up_2_to_4([[0.5, 1.0], [1.5, 0.0]]) * POLY_NORMALISED - up_2_to_4([[0, 0], [0, 0.5]]) * POLY_NORMALISED
    np.testing.assert_allclose(out.raw.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.raw.numpy(), up_2_to_4(coarse) * POLY_NORMALISED, rtol=1e-5, atol=1e-6)
    assert out.note == ""
    # Negated gradients flip the map: its negative part is refined alike.
    flipped = run("gradpolycam", poly_inputs(fine, LayerInputs("deep", POLY_DEEP_A, -POLY_DEEP_G)), base="gradcam",
                  masks="activations")
    np.testing.assert_allclose(flipped.raw.numpy(), -out.raw.numpy(), atol=1e-6)


def test_gradpolycam_layercam_base_uses_positive_gradients_position_by_position():
    fine = LayerInputs("fine", POLY_FINE_A, torch.zeros_like(POLY_FINE_A))
    deep = LayerInputs("deep", COARSE_A, COARSE_G)
    out = run("gradpolycam", poly_inputs(fine, deep), base="layercam", masks="activations")
    assert out.weights is None
    # Σ ReLU(g)·A = [[0, 1], [0, −2]]
    np.testing.assert_allclose(out.raw.numpy(), up_2_to_4([[0, 1], [0, -2]]) * POLY_NORMALISED, rtol=1e-5, atol=1e-6)


def test_gradpolycam_walks_coarse_to_fine_whatever_the_order_of_the_finer_layers():
    torch.manual_seed(0)
    finest = LayerInputs("finest", torch.rand(3, 8, 8), torch.zeros(3, 8, 8))
    fine = LayerInputs("fine", POLY_FINE_A, torch.zeros_like(POLY_FINE_A))
    deep = LayerInputs("deep", POLY_DEEP_A, POLY_DEEP_G)
    ordered = run("gradpolycam", poly_inputs(finest, fine, deep), base="gradcam", masks="activations")
    shuffled = run("gradpolycam", poly_inputs(fine, finest, deep), base="gradcam", masks="activations")
    assert ordered.raw.shape == (8, 8)
    np.testing.assert_allclose(shuffled.raw.numpy(), ordered.raw.numpy(), rtol=1e-6)
    by_hand = refine(torch.tensor([[0.5, 1.0], [1.5, -0.5]]), [POLY_FINE_A.clamp(min=0).sum(0),
                                                               finest.activations.sum(0)])
    np.testing.assert_allclose(ordered.raw.numpy(), by_hand.numpy(), rtol=1e-5, atol=1e-6)


def test_gradpolycam_with_no_finer_layer_has_nothing_to_refine():
    deep = LayerInputs("deep", POLY_DEEP_A, POLY_DEEP_G)
    same_size = LayerInputs("other", torch.rand(2, 2, 2), torch.zeros(2, 2, 2))
    for stack in ((deep,), (same_size, deep)):
        out = run("gradpolycam", poly_inputs(*stack), base="gradcam")
        assert "nothing to refine" in out.note
        np.testing.assert_allclose(out.raw.numpy(), [[0.5, 1.0], [1.5, -0.5]])
    alone = run("gradpolycam", CamInputs(activations=POLY_DEEP_A, target=0, gradients=POLY_DEEP_G), base="gradcam")
    assert "nothing to refine" in alone.note


# ----------------------------------------------------------------------------------------------- guided methods

INPUT_GRAD = torch.tensor(
    [
        [[1.0, -2.0, 0.0, 0.5]] * 4,
        [[-3.0, 1.0, 0.0, 0.0]] * 4,
        [[0.5, 0.5, -4.0, 0.0]] * 4,
    ]
)


def test_guidedbackprop_map_is_the_largest_absolute_colour_component():
    out = run("guidedbackprop", CamInputs(activations=POLY_DEEP_A, target=0, input_gradients=INPUT_GRAD,
                                          guided_activations=3))
    np.testing.assert_allclose(out.raw.numpy(), np.array([[3.0, 2.0, 4.0, 0.5]] * 4))
    assert torch.equal(out.rgb, INPUT_GRAD)
    assert out.note == ""
    plain = run("guidedbackprop", CamInputs(activations=POLY_DEEP_A, target=0, input_gradients=INPUT_GRAD))
    assert "no activation modules to guide" in plain.note


def test_guidedgradcam_gates_the_guided_gradient_with_the_scaled_gradcam_map():
    out = run("guidedgradcam", CamInputs(activations=POLY_DEEP_A, target=0, gradients=POLY_DEEP_G,
                                         input_gradients=INPUT_GRAD, guided_activations=3))
    np.testing.assert_allclose(out.weights.numpy(), [0.5])
    # Grad-CAM [[.5, 1], [1.5, −.5]] → ReLU → upsampled to 4×4 → min-max (min 0 at (3, 3), max 1.5 at (3, 0))
    gate = up_2_to_4([[0.5, 1.0], [1.5, 0.0]]) / 1.5
    expected_rgb = INPUT_GRAD.numpy() * gate
    np.testing.assert_allclose(out.rgb.numpy(), expected_rgb, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out.raw.numpy(), np.abs(expected_rgb).max(axis=0), rtol=1e-5, atol=1e-7)
    assert float(out.raw[3, 3]) == 0.0 and float(out.raw[3, 0]) == pytest.approx(3.0)


def test_gradpolycam_layercam_masks_are_the_finer_layers_positive_gradient_maps():
    # fine layer: Σ_k ReLU(g)·A, then ReLU. Channel 0 with gradient 1 keeps POLY_FINE_A[0]; channel 1 (negative
    # activations, gradient 1) would subtract, so its gradient is 0 except at (0, 1) → + ReLU(1)·1 there.
    gradients = torch.stack([torch.ones(4, 4), torch.zeros(4, 4)])
    gradients[1, 0, 1] = 1.0
    fine = LayerInputs("fine", POLY_FINE_A, gradients)
    deep = LayerInputs("deep", POLY_DEEP_A, POLY_DEEP_G)
    out = run("gradpolycam", poly_inputs(fine, deep), base="gradcam", masks="layercam")
    # Same F as Σ ReLU(A) here, so the same normalised mask as the activation masks.
    np.testing.assert_allclose(out.raw.numpy(), up_2_to_4([[0.5, 1.0], [1.5, -0.5]]) * POLY_NORMALISED, rtol=1e-5,
                               atol=1e-6)
    # A negative gradient on channel 0 at (0, 1) drops its 3 there (ReLU of the gradient): F(0, 1) = 0·3 + 1·1 = 1,
    # cell (0, 0) = [[1, 1], [0, 0]], mean 1/2.
    gradients[0, 0, 1] = -1.0
    out = run("gradpolycam", poly_inputs(LayerInputs("fine", POLY_FINE_A, gradients), deep), base="gradcam",
              masks="layercam")
    normalised = POLY_NORMALISED.copy()
    normalised[:2, :2] = [[2.0, 2.0], [0.0, 0.0]]
    np.testing.assert_allclose(out.raw.numpy(), up_2_to_4([[0.5, 1.0], [1.5, -0.5]]) * normalised, rtol=1e-5,
                               atol=1e-6)


def test_the_guided_copy_passes_only_positive_gradients_and_leaves_the_model_alone():
    from cam_core.passes.guided_copy import GuidedActivation, guided_copy

    # x → identity → ReLU(inplace) → [1, −1] → y.  Plain dy/dx = (1, −1); guided: the −1 reaching the ReLU is cut.
    first, second = torch.nn.Linear(2, 2, bias=False), torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        first.weight.copy_(torch.eye(2))
        second.weight.copy_(torch.tensor([[1.0, -1.0]]))
    model = torch.nn.Sequential(first, torch.nn.ReLU(inplace=True), second)
    guided = guided_copy(model)
    assert guided.guided == 1 and isinstance(guided.module[1], GuidedActivation)
    assert type(model[1]) is torch.nn.ReLU and model[1].inplace, "the original keeps its own ReLU"
    x = torch.tensor([[1.0, 1.0]], requires_grad=True)
    (plain,) = torch.autograd.grad(model(x.clone()).sum(), x)
    (found,) = torch.autograd.grad(guided.module(x).sum(), x)
    np.testing.assert_allclose(plain.numpy(), [[1.0, -1.0]])
    np.testing.assert_allclose(found.numpy(), [[1.0, 0.0]])
    # The forward rule still holds: where the ReLU's input is negative nothing passes, guided or not.
    x = torch.tensor([[-1.0, 2.0]], requires_grad=True)
    (found,) = torch.autograd.grad(guided.module(x).sum(), x)
    np.testing.assert_allclose(found.numpy(), [[0.0, 0.0]])
    assert not any(p.requires_grad for p in guided.module.parameters())
    assert all(p.requires_grad for p in model.parameters()), "the original's parameters are not frozen by the copy"


# ------------------------------------------------------------------------------------- Poly-CAM (PCAM±, PCAM+, PCAM−)


def pcam_scores(inside: list[list[float]] | None, outside: list[list[float]] | None) -> MaskScores:
    """Two channels' masked-input logits (two classes): kept inside the masks, cut out of them, or both."""
    rows = [*(inside or []), *(outside or [])]
    maps = torch.ones(2, 2, 2)
    return MaskScores(maps, None, torch.tensor(rows), torch.zeros(2), torch.zeros(2, dtype=bool), 0.0, "",
                      torch.tensor([0.0, 1.0]))


def test_pcam_weights_by_hand():
    inside, outside = [[0.0, 2.0], [0.0, 0.0]], [[0.0, -1.0], [0.0, 1.0]]
    sigmoid = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731 - p(class 1) of logits (0, v)
    full = sigmoid(1.0)
    np.testing.assert_allclose(pcam_weights(pcam_scores(inside, None), 1, "PCAM+").numpy(), [sigmoid(2), 0.5],
                               rtol=1e-6)
    np.testing.assert_allclose(pcam_weights(pcam_scores(None, outside), 1, "PCAM−").numpy(),
                               [full - sigmoid(-1), 0.0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(pcam_weights(pcam_scores(inside, outside), 1, "PCAM±").numpy(),
                               [sigmoid(2) + full - sigmoid(-1), 0.5 + full - full], rtol=1e-6)


def test_pcam_refine_divides_each_finer_map_by_its_bilinear_down_and_up_copy():
    coarse = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    fine = torch.tensor([[1.0, 3.0, 2.0, 2.0], [1.0, 3.0, 2.0, 2.0], [4.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 5.0]])
    # bilinear 4 → 2 (align_corners=False) samples the centre of each 2×2 block: its mean
    means = fine.numpy().reshape(2, 2, 2, 2).mean(axis=(1, 3))
    expected = np.maximum(fine.numpy() / up_2_to_4(means) * up_2_to_4(coarse.numpy()), 0)
    np.testing.assert_allclose(pcam_refine([coarse, fine]).numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(pcam_refine([coarse]).numpy(), coarse.numpy())


def test_polycam_orders_the_layers_coarse_to_fine_and_reads_only_the_scores():
    deep = LayerInputs("deep", torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 0.0]]]),
                       mask_scores=pcam_scores([[0.0, 2.0], [0.0, 0.0]], [[0.0, -1.0], [0.0, 1.0]]))
    fine_acts = torch.rand(2, 4, 4, generator=torch.Generator().manual_seed(0))
    fine = LayerInputs("fine", fine_acts, mask_scores=pcam_scores([[0.0, 1.0], [0.0, 3.0]], [[0.0, 0.0], [0.0, 2.0]]))
    inputs = CamInputs(activations=deep.activations, target=1, stack=(fine, deep))
    out = run("polycam", inputs)
    maps = [pcam_layer_map(item, 1, "PCAM±") for item in (deep, fine)]
    np.testing.assert_allclose(out.raw.numpy(), pcam_refine(maps).numpy(), rtol=1e-6)
    swapped = run("polycam", CamInputs(activations=deep.activations, target=1, stack=(deep, fine)))
    np.testing.assert_allclose(swapped.raw.numpy(), out.raw.numpy(), rtol=1e-6)


def test_percentile_masks_follow_the_polycam_authors_scaling():
    channel = torch.arange(16, dtype=torch.float32).reshape(1, 4, 4) - 3.0  # −3 … 12
    masks, empty = normalized_masks(channel, 4, scaling="percentile")
    flat = channel.flatten().numpy()
    low, high = np.percentile(flat, 0.1), np.percentile(flat, 99.9)
    np.testing.assert_allclose(masks[0, 0].numpy(), np.clip((channel[0].numpy() - low) / high, 0, 1), rtol=1e-5)
    assert not empty.any()
    assert normalized_masks(torch.full((1, 4, 4), 2.0), 4, scaling="percentile")[1].all()


def test_smooth_activations_pass_back_only_positive_gradients():
    """Below zero SiLU's derivative is negative: the guided rule clamps what it passes back as well as what it
    receives, so a positive gradient from above cannot arrive negative at the input."""
    from cam_core.passes.guided_copy import guided_copy

    for activation in (torch.nn.SiLU(), torch.nn.GELU(), torch.nn.Hardswish()):
        model = torch.nn.Sequential(torch.nn.Identity(), activation)
        guided = guided_copy(model).module
        x = torch.tensor([-2.0, -1.0, 1.0], requires_grad=True)
        (plain,) = torch.autograd.grad(model(x).sum(), x)
        (found,) = torch.autograd.grad(guided(x).sum(), x)
        assert plain[0] < 0, f"{activation}: the test needs a negative derivative at −2"
        np.testing.assert_allclose(found.numpy(), plain.clamp(min=0).numpy(), rtol=1e-6)
        (upstream_negative,) = torch.autograd.grad(-guided(x).sum(), x)
        assert not upstream_negative.any()
