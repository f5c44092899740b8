"""Shared fixtures: the embedded models and real photos, all offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from cam_core import Explainer

DARKNET = Path("/usr/share/darknet/data")


@pytest.fixture(scope="session")
def mobilenet() -> Explainer:
    return Explainer("mobilenet_v2")


@pytest.fixture(scope="session")
def lite0() -> Explainer:
    return Explainer("efficientnet_lite0")


@pytest.fixture(scope="session")
def chelsea() -> Image.Image:
    return Image.fromarray(data.chelsea())


@pytest.fixture(scope="session")
def coffee() -> Image.Image:
    return Image.fromarray(data.coffee())


@pytest.fixture(scope="session")
def dog_photo() -> Image.Image:
    path = DARKNET / "dog.jpg"
    if not path.exists():
        pytest.skip("Debian package darknet (dog.jpg) is not installed")
    return Image.open(path).convert("RGB")


def peak(saliency: np.ndarray) -> tuple[int, int]:
    """(row, column) of a map's maximum."""
    row, column = np.unravel_index(int(np.argmax(saliency)), saliency.shape)
    return int(row), int(column)
