"""A result's saliency map is drawn at the image's size only when read, and at any other size on demand (the size a
page shows it at), from the same rule; the shown size never enlarges, and the image is scaled once per width."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cam_core.render.display import DISPLAY_WIDTH, jpeg_bytes, shown_image, shown_size
from cam_core.render.saliency import saliency_map
from cam_core.views.specificity import pearson


@pytest.fixture(scope="module")
def chelsea_analysis(mobilenet, chelsea):
    return mobilenet.analyze(chelsea)


def test_saliency_is_drawn_when_first_read_and_equals_the_rule(chelsea_analysis):
    result = chelsea_analysis.cam("gradcam")
    assert "saliency" not in result.__dict__
    expected, _ = saliency_map(result.raw, chelsea_analysis.size, result.sign)
    assert np.array_equal(result.saliency, expected)
    assert result.saliency is result.saliency  # drawn once


def test_a_map_at_its_shown_size_is_the_full_map_scaled_down(chelsea_analysis):
    result = chelsea_analysis.cam("gradcam", target=281)
    height, width = chelsea_analysis.size
    small = shown_size((height, width), width // 2)
    at_small = result.saliency_at(small)
    assert at_small.shape == small and at_small.min() == 0 and at_small.max() == 1
    scaled = torch.nn.functional.interpolate(torch.from_numpy(result.saliency)[None, None], size=small,
                                             mode="area")[0, 0].numpy()
    assert pearson(at_small, scaled) > 0.999
    assert result.saliency_at(chelsea_analysis.size) is result.saliency


def test_a_blank_map_says_so_at_every_size():
    raw = np.full((7, 7), -1.0, dtype=np.float32)
    for size in ((7, 7), (300, 451)):
        values, note = saliency_map(raw, size)
        assert not values.any() and "positive map is empty" in note


def test_the_shown_size_keeps_the_aspect_and_never_enlarges():
    assert shown_size((576, 768)) == (360, DISPLAY_WIDTH)
    assert shown_size((300, 451)) == (300, 451)
    assert shown_size((2, 4000), 480) == (1, 480)


def test_an_image_is_scaled_once_per_width_and_encoded_as_jpeg():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (576, 768, 3), dtype=np.uint8))
    first = shown_image(image)
    assert first.size == (DISPLAY_WIDTH, 360) and shown_image(image) is first
    assert shown_image(image, 200).size == (200, 150)
    narrow = Image.new("RGB", (100, 80))
    assert shown_image(narrow) is narrow
    assert jpeg_bytes(first)[:3] == b"\xff\xd8\xff"
