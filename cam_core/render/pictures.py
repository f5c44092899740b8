"""Pictures of maps: colour maps, overlays on the image, diverging maps of signed values, PNG/NPY bytes."""

from __future__ import annotations

import io
import re
from functools import lru_cache

import numpy as np
import plotly.colors as pc
from PIL import Image

from cam_core.errors import CamError
from cam_core.scaling import min_max

COLORMAPS = ("viridis", "inferno", "magma", "plasma", "cividis", "turbo", "jet", "hot", "gray")  # perceptual first
DIVERGING = "RdBu_r"


@lru_cache(maxsize=None)
def colormap_table(name: str) -> np.ndarray:
    """A (256, 3) uint8 lookup table for one of plotly's named colour scales (append _r to reverse)."""
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


def colorize(values: np.ndarray, colormap: str = COLORMAPS[0]) -> np.ndarray:
    """An (H, W, 3) uint8 picture of values in [0, 1]."""
    indices = np.clip(np.nan_to_num(values) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return colormap_table(colormap)[indices]


def overlay(image: Image.Image, saliency: np.ndarray, alpha: float = 0.5, colormap: str = COLORMAPS[0]) -> Image.Image:
    """The image with the coloured saliency blended on top (alpha = weight of the map)."""
    if not 0.0 <= alpha <= 1.0:
        raise CamError(f"opacity must be between 0 and 1, not {alpha}")
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    if saliency.shape != base.shape[:2]:
        raise CamError(f"map of shape {saliency.shape} does not match the image's {base.shape[:2]}")
    heat = colorize(saliency, colormap).astype(np.float32)
    return Image.fromarray(np.clip((1 - alpha) * base + alpha * heat, 0, 255).astype(np.uint8))


def signed_values(raw: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """A signed map as float32, resized to size=(height, width) (bilinear) when given: what diverging colours."""
    values = np.nan_to_num(np.asarray(raw, dtype=np.float32))
    if size is None:
        return values
    resized = Image.fromarray(values, mode="F").resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def diverging(raw: np.ndarray, size: tuple[int, int] | None = None, bound: float | None = None) -> Image.Image:
    """A signed map coloured around zero: white at 0, red positive, blue negative, from −bound to +bound (default:
    the map's largest magnitude; values beyond are clipped).

    size=(height, width) resizes the picture (bilinear on the colours' underlying values).
    """
    values = signed_values(raw, size)
    bound = float(np.abs(values).max()) if bound is None else float(bound)
    scaled = 0.5 + 0.5 * values / bound if bound > 0 else np.full_like(values, 0.5)
    return Image.fromarray(colorize(scaled, DIVERGING))


def scaled_picture(values: np.ndarray, colormap: str = "viridis") -> Image.Image:
    """Any (H, W) array as a picture: min-max scaled onto the colour map (one colour when it is constant)."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float32))
    return Image.fromarray(colorize(min_max(values), colormap))


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


def masked_input(image: Image.Image, mask: np.ndarray, mean: tuple[float, float, float]) -> Image.Image:
    """What Score-CAM feeds the network, as a picture: the image where a [0, 1] mask of its size is 1, the zero model
    input (the normalisation's mean colour, mean in [0, 1]) where it is 0."""
    from cam_core.inputs.masking import masked_inputs

    pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    if mask.shape != pixels.shape[:2]:
        raise CamError(f"mask of shape {mask.shape} does not match the image's {pixels.shape[:2]}")
    kept = masked_inputs(pixels, np.asarray(mean, dtype=np.float32), np.clip(mask, 0, 1)[:, :, None])
    return Image.fromarray((kept * 255.0 + 0.5).astype(np.uint8))


def grid(pictures: list[Image.Image], titles: list[str], columns: int = 4, width: int = 320) -> Image.Image:
    """Pictures in rows of `columns`, each scaled to `width` pixels wide with its title above it."""
    from PIL import ImageDraw, ImageFont

    if not pictures:
        raise CamError("nothing to put in the grid")
    scaled = [p.convert("RGB").resize((width, max(1, round(p.height * width / p.width)))) for p in pictures]
    font = ImageFont.load_default(size=16)
    title_height, gap = 26, 8
    cell_height = max(p.height for p in scaled) + title_height
    rows = (len(scaled) + columns - 1) // columns
    used_columns = min(columns, len(scaled))
    sheet = Image.new("RGB", (used_columns * (width + gap) + gap, rows * (cell_height + gap) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    for index, (picture, title) in enumerate(zip(scaled, titles, strict=True)):
        x = gap + (index % columns) * (width + gap)
        y = gap + (index // columns) * (cell_height + gap)
        draw.text((x + 2, y + 4), title, fill=(20, 20, 20), font=font)
        sheet.paste(picture, (x, y + title_height))
    return sheet


def gradient_picture(rgb: np.ndarray, size: tuple[int, int] | None = None) -> Image.Image:
    """A signed (3, H, W) input gradient as a picture: standardised, scaled so ±5 standard deviations span the
    colour range around mid-grey (grey = no gradient), resized to size=(height, width)."""
    values = np.nan_to_num(np.asarray(rgb, dtype=np.float32)).transpose(1, 2, 0)
    spread = float(values.std())
    scaled = 0.5 + 0.1 * (values - values.mean()) / spread if spread > 0 else np.full_like(values, 0.5)
    picture = Image.fromarray((np.clip(scaled, 0, 1) * 255 + 0.5).astype(np.uint8))
    return picture.resize((size[1], size[0]), Image.BILINEAR) if size is not None else picture


VIEWS = ("overlay", "map", "signed")


def result_picture(
    image: Image.Image,
    saliency: np.ndarray,
    raw: np.ndarray,
    view: str = "overlay",
    alpha: float = 0.5,
    colormap: str = COLORMAPS[0],
    rgb: np.ndarray | None = None,
) -> Image.Image:
    """How a map is shown: over the image, on its own, or as the signed raw map on a diverging scale (blended over
    a grey copy of the image, alpha being the map's weight). An input-gradient method's RGB gradient is shown as
    itself in every view."""
    if view not in VIEWS:
        raise CamError(f"view must be one of {', '.join(VIEWS)}, not {view!r}")
    if rgb is not None:
        return gradient_picture(rgb, size=(image.height, image.width))
    if view == "overlay":
        return overlay(image, saliency, alpha=alpha, colormap=colormap)
    if view == "map":
        return Image.fromarray(colorize(saliency, colormap))
    if view == "signed":
        signed = diverging(raw, size=(image.height, image.width))
        return Image.blend(image.convert("L").convert("RGB"), signed, alpha)
    raise CamError(f"view must be one of {', '.join(VIEWS)}, not {view!r}")
