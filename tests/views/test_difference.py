"""Difference maps and colour bars on small hand-computed arrays."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cam_core.errors import CamError
from cam_core.render.colourbar import (
    difference_view,
    format_value,
    map_view,
    picture_range,
    shared_top,
    with_colour_bar,
)
from cam_core.render.pictures import COLORMAPS, colormap_table, result_picture
from cam_core.render.saliency import saliency_map
from cam_core.views.difference import describe, difference


def test_raw_difference_keeps_the_units():
    a = np.array([[0.0, 2.0], [4.0, 1.0]])
    b = np.array([[1.0, 1.0], [0.0, 3.0]])
    np.testing.assert_allclose(difference(a, b, "raw"), [[-1.0, 1.0], [4.0, -2.0]])


def test_max_difference_divides_each_map_by_its_own_maximum():
    a = np.array([[0.0, 2.0], [4.0, 1.0]])  # / 4
    b = np.array([[1.0, 1.0], [0.0, 2.0]])  # / 2
    np.testing.assert_allclose(difference(a, b, "max"), [[-0.5, 0.0], [1.0, -0.75]])
    np.testing.assert_allclose(difference(a, np.zeros((2, 2)), "max"), a / 4)
    assert "own maximum" in describe("max")


def test_difference_refuses_other_shapes_and_normalisations():
    with pytest.raises(CamError, match="cannot be subtracted"):
        difference(np.zeros((2, 2)), np.zeros((3, 2)))
    with pytest.raises(CamError, match="normalisation"):
        difference(np.zeros((2, 2)), np.zeros((2, 2)), "min")


def test_perceptual_colour_map_first_and_jet_kept():
    assert COLORMAPS[0] in ("viridis", "inferno", "magma", "plasma", "cividis")
    assert "jet" in COLORMAPS


def test_format_value_gives_the_digits_a_value_needs():
    assert [format_value(v) for v in (0.0, 0.012345, 123.456, 1.5e-6)] == ["0", "0.0123", "123", "1.5e-06"]


def test_the_bar_runs_from_the_evidence_maps_lowest_to_its_highest_value():
    raw = np.array([[-1.0, 0.5], [2.0, 4.0]], dtype=np.float32)
    low, high = picture_range(raw, (2, 2))
    assert (low, high) == (0.0, 4.0)
    assert picture_range(raw, (2, 2), view="signed") == (-4.0, 4.0)
    assert picture_range(raw, (2, 2), sign="negative") == (0.0, 1.0)
    assert shared_top([raw, raw * 0.5], (2, 2)) == 4.0


def test_map_view_is_the_picture_above_its_colour_bar():
    image = Image.new("RGB", (64, 48), (120, 80, 40))
    raw = np.linspace(-1, 3, 48 * 64, dtype=np.float32).reshape(48, 64)
    saliency, _ = saliency_map(raw, (48, 64))
    shown = map_view(image, saliency, raw, "map", 0.6, "viridis")
    plain = result_picture(image, saliency, raw, "map", 0.6, "viridis")
    assert shown.width == 64 and shown.height > 48
    np.testing.assert_array_equal(np.asarray(shown)[:48], np.asarray(plain))
    bar = np.asarray(shown)[48:]
    table = colormap_table("viridis")
    row = bar[np.argmax((np.abs(bar.astype(int) - table[128]).sum(axis=2) < 12).sum(axis=1))]
    assert (np.abs(row[:, None].astype(int) - table[[0, 255]][None]).sum(axis=2) < 12).any(axis=0).all(), \
        "the bar must run from the colour map's first colour to its last"
    low, high = picture_range(raw, (48, 64))
    np.testing.assert_array_equal(np.asarray(with_colour_bar(plain, low, high, "viridis", "map after the ReLU")),
                                  np.asarray(shown))


def test_a_shared_scale_makes_the_weaker_map_look_weaker():
    image = Image.new("RGB", (8, 8))
    strong = np.full((8, 8), 2.0, dtype=np.float32)
    strong[0, 0] = 0.0
    weak = strong / 4
    top = shared_top([strong, weak], (8, 8))
    pictures = [np.asarray(map_view(image, saliency_map(m, (8, 8))[0], m, "map", top=top))[:8] for m in (strong, weak)]
    table = colormap_table(COLORMAPS[0])
    assert (pictures[0][4, 4] == table[255]).all() and (pictures[1][4, 4] == table[64]).all()
    own = [np.asarray(map_view(image, saliency_map(m, (8, 8))[0], m, "map"))[:8] for m in (strong, weak)]
    np.testing.assert_array_equal(own[0], own[1])


def test_a_difference_is_drawn_on_the_two_maps_shared_scale():
    image = Image.new("RGB", (4, 2), (255, 255, 255))
    values = np.array([[0.5, 0.5, -0.5, 0.0], [0.5, 0.5, -0.5, 0.0]], dtype=np.float32)
    shown = np.asarray(difference_view(image, values, alpha=1.0, bound=1.0))[:2].astype(int)
    table = colormap_table("RdBu_r").astype(int)
    assert (np.abs(shown[0, 0] - table[191]) <= 1).all() and (np.abs(shown[0, 2] - table[64]) <= 1).all()
    assert (np.abs(shown[0, 3] - table[128]) <= 1).all()
