"""Each method's arithmetic against numbers worked out by hand on tiny tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cam_core.registry import CamInputs, get_method
from cam_core.render.saliency import saliency_map

# Two channels on a 2×2 grid.
A = torch.tensor([[[1.0, 2.0], [0.0, 1.0]], [[0.0, 1.0], [3.0, 0.0]]])
G = torch.tensor([[[0.5, -0.5], [1.0, 0.0]], [[-1.0, 0.0], [0.0, 2.0]]])


def run(method: str, **inputs) -> tuple[np.ndarray, np.ndarray | None]:
    chosen = get_method(method)
    defaults = {param.name: param.default for param in chosen.card.params}
    out = chosen.apply(CamInputs(activations=A, target=1, **inputs), **defaults)
    return out.raw.numpy(), None if out.weights is None else out.weights.numpy()


def test_cam_uses_the_classifier_row_of_the_target():
    class_weights = torch.tensor([[9.0, 9.0], [2.0, -1.0]])
    raw, weights = run("cam", class_weights=class_weights)
    np.testing.assert_allclose(weights, [2.0, -1.0])
    np.testing.assert_allclose(raw, [[2.0, 3.0], [-3.0, 2.0]])


def test_gradcam_averages_gradients_per_channel():
    raw, weights = run("gradcam", gradients=G)
    # channel 0: (0.5 - 0.5 + 1 + 0) / 4 = 0.25; channel 1: (-1 + 0 + 0 + 2) / 4 = 0.25
    np.testing.assert_allclose(weights, [0.25, 0.25])
    np.testing.assert_allclose(raw, [[0.25, 0.75], [0.75, 0.25]])


def test_gradcampp_alpha_by_hand():
    chosen = get_method("gradcampp")
    out = chosen.apply(CamInputs(activations=A, target=1, gradients=G), normalise_alpha=False)
    raw, weights = out.raw.numpy(), out.weights.numpy()
    # channel 0: sum A = 4. positions with g > 0: g=0.5 → α = .25/(.5 + 4·.125) = .25; g=1 → α = 1/(2 + 4) = 1/6
    # w0 = .25·.5 + (1/6)·1 = 0.2916…; channel 1: sum A = 4, g=2 → α = 4/(8 + 4·8) = 0.1, w1 = 0.1·2 = 0.2
    np.testing.assert_allclose(weights, [0.125 + 1 / 6, 0.2], rtol=1e-5)
    expected = (0.125 + 1 / 6) * A[0].numpy() + 0.2 * A[1].numpy()
    np.testing.assert_allclose(raw, expected, rtol=1e-5)


def test_gradcampp_default_normalises_alpha_as_the_authors_code():
    raw, weights = run("gradcampp", gradients=G)
    # α divided by its sum where g > 0: channel 0: (.25·.5 + (1/6)·1) / (.25 + 1/6) = 0.7; channel 1: 0.1·2 / 0.1 = 2
    np.testing.assert_allclose(weights, [0.7, 2.0], rtol=1e-5)
    np.testing.assert_allclose(raw, 0.7 * A[0].numpy() + 2.0 * A[1].numpy(), rtol=1e-5)


def test_xgradcam_weights_gradients_by_normalised_activation():
    raw, weights = run("xgradcam", gradients=G)
    # channel 0: (1·.5 + 2·(-.5) + 0·1 + 1·0) / 4 = -0.125; channel 1: (0·(-1) + 1·0 + 3·0 + 0·2) / 4 = 0
    np.testing.assert_allclose(weights, [-0.125, 0.0], atol=1e-6)
    np.testing.assert_allclose(raw, -0.125 * A[0].numpy(), atol=1e-6)


def test_hirescam_and_layercam_are_position_wise():
    hires, hires_weights = run("hirescam", gradients=G)
    np.testing.assert_allclose(hires, [[0.5, -1.0], [0.0, 0.0]])
    assert hires_weights is None
    layer, _ = run("layercam", gradients=G)
    np.testing.assert_allclose(layer, [[0.5, 0.0], [0.0, 0.0]])


def test_eigencam_recovers_a_rank_one_pattern_with_the_sign_of_the_mean():
    pattern = torch.tensor([[1.0, 4.0, 0.0], [2.0, 0.0, 3.0]])
    scales = torch.tensor([2.0, 0.5, 1.0])
    activations = scales[:, None, None] * pattern
    plain = get_method("eigencam").apply(CamInputs(activations=activations, target=0), centre=False)
    # Uncentred (the paper): the matrix is rank one, projection = ‖scales‖ · pattern.
    np.testing.assert_allclose(plain.raw.numpy(), float(scales.norm()) * pattern.numpy(), rtol=1e-5, atol=1e-5)
    out = get_method("eigencam").apply(CamInputs(activations=activations, target=0), centre=True)
    centred = (pattern - pattern.mean()).numpy()
    # The centred matrix is rank one: projection = ‖scales‖ · (pattern − mean), direction = scales / ‖scales‖.
    np.testing.assert_allclose(out.raw.numpy(), float(scales.norm()) * centred, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.weights.numpy(), (scales / scales.norm()).numpy(), rtol=1e-5)
    flipped = get_method("eigencam").apply(CamInputs(activations=-activations + 10.0, target=0), centre=True)
    # Negated activations: the sign fix must follow the new mean map, which is −pattern (+ constant).
    assert np.corrcoef(flipped.raw.numpy().ravel(), -pattern.numpy().ravel())[0, 1] > 0.99


def test_eigengradcam_is_eigencam_of_gradient_times_activation():
    out = get_method("eigengradcam").apply(CamInputs(activations=A, target=0, gradients=G))
    reference = get_method("eigencam").apply(CamInputs(activations=A * G, target=0), centre=True)
    np.testing.assert_allclose(out.raw.numpy(), reference.raw.numpy(), rtol=1e-6)


def test_saliency_relu_upsample_and_minmax():
    raw = torch.tensor([[-1.0, 0.0], [1.0, 3.0]])
    saliency, note = saliency_map(raw, (2, 2))
    np.testing.assert_allclose(saliency, [[0.0, 0.0], [1 / 3, 1.0]], rtol=1e-6)
    assert note == ""
    negative, _ = saliency_map(raw, (2, 2), sign="negative")
    np.testing.assert_allclose(negative, [[1.0, 0.0], [0.0, 0.0]])
    big, _ = saliency_map(raw, (20, 30))
    assert big.shape == (20, 30) and big.dtype == np.float32
    assert big.min() == 0.0 and big.max() == pytest.approx(1.0)
    assert np.unravel_index(big.argmax(), big.shape)[0] >= 10


def test_blank_maps_are_zero_with_a_note_not_nan():
    for raw in (torch.zeros(3, 3), -torch.ones(3, 3), torch.full((3, 3), float("nan"))):
        saliency, note = saliency_map(raw, (6, 6))
        assert not np.isnan(saliency).any() and not saliency.any()
        assert "empty" in note
