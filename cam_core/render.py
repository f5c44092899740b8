"""Pictures of maps: colour maps, overlays on the image, diverging maps of signed values, PNG/NPY bytes."""

from __future__ import annotations

import io
import re
from functools import lru_cache

import numpy as np
from PIL import Image

from .errors import CamError

COLORMAPS = ("jet", "turbo", "viridis", "inferno", "magma", "plasma", "hot", "gray")
DIVERGING = "RdBu_r"


@lru_cache(maxsize=None)
def colormap_table(name: str) -> np.ndarray:
    """A (256, 3) uint8 lookup table for one of plotly's named colour scales (append _r to reverse)."""
    import plotly.colors as pc

    reverse = name.endswith("_r")
    base = name[:-2] if reverse else name
    if base == "gray":
        table = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
        return table[::-1].copy() if reverse else table
    try:
        scale = pc.get_colorscale(base)
    except Exception as exc:  # noqa: BLE001 - plotly raises a bare exception for unknown names
        raise CamError(f"unknown colour map {name!r}; try one of {', '.join(COLORMAPS)}") from exc
    colours = pc.sample_colorscale(scale, list(np.linspace(0.0, 1.0, 256)))
    table = np.array([_rgb(c) for c in colours], dtype=np.uint8)
    return table[::-1].copy() if reverse else table


def _rgb(colour: str) -> tuple[int, int, int]:
    if colour.startswith("#"):
        return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    r, g, b = (float(v) for v in re.findall(r"[\d.]+", colour)[:3])
    return round(r), round(g), round(b)


def colorize(values: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """An (H, W, 3) uint8 picture of values in [0, 1]."""
    indices = np.clip(np.nan_to_num(values) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return colormap_table(colormap)[indices]


def overlay(image: Image.Image, saliency: np.ndarray, alpha: float = 0.5, colormap: str = "jet") -> Image.Image:
    """The image with the coloured saliency blended on top (alpha = weight of the map)."""
    if not 0.0 <= alpha <= 1.0:
        raise CamError(f"opacity must be between 0 and 1, not {alpha}")
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    if saliency.shape != base.shape[:2]:
        raise CamError(f"map of shape {saliency.shape} does not match the image's {base.shape[:2]}")
    heat = colorize(saliency, colormap).astype(np.float32)
    return Image.fromarray(np.clip((1 - alpha) * base + alpha * heat, 0, 255).astype(np.uint8))


def diverging(raw: np.ndarray, size: tuple[int, int] | None = None) -> Image.Image:
    """A signed map coloured around zero: white at 0, red positive, blue negative, symmetric scale.

    size=(height, width) resizes the picture (bilinear on the colours' underlying values).
    """
    values = np.nan_to_num(np.asarray(raw, dtype=np.float32))
    if size is not None:
        resized = Image.fromarray(values, mode="F").resize((size[1], size[0]), Image.BILINEAR)
        values = np.asarray(resized, dtype=np.float32)
    bound = float(np.abs(values).max())
    scaled = 0.5 + 0.5 * values / bound if bound > 0 else np.full_like(values, 0.5)
    return Image.fromarray(colorize(scaled, DIVERGING))


def png_bytes(image: Image.Image) -> bytes:
    """image encoded as PNG."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    """array in NumPy's .npy format."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
