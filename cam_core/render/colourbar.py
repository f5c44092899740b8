"""Maps with a colour bar of their real values drawn beneath them (so that a downloaded picture carries its scale),
on each map's own scale or on one scale shared by several maps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cam_core.errors import CamError
from cam_core.render.pictures import (
    COLORMAPS,
    DIVERGING,
    VIEWS,
    colormap_table,
    diverging,
    result_picture,
    signed_values,
)
from cam_core.render.saliency import evidence_map, evidence_range

GRADIENT_SPAN = 5.0  # gradient_picture spans ±5 standard deviations around the mean


def format_value(value: float) -> str:
    """A map value with three significant digits (0 as 0)."""
    return "0" if value == 0 else f"{value:.3g}"


def drawable(text: str) -> str:
    """text in the characters PIL's built-in font has (its minus and times signs are missing)."""
    return text.replace("−", "-").replace("×", "x")


def colour_bar(width: int, low: float, high: float, colormap: str = COLORMAPS[0], label: str = "") -> Image.Image:
    """A horizontal colour bar width pixels wide, ticked at low, the middle and high, with label beneath."""
    font_size = max(12, round(width / 22))
    font = ImageFont.load_default(size=font_size)
    margin, bar_height = max(6, font_size // 2), max(10, round(width / 30))
    rows = 2 if label else 1
    strip = Image.new("RGB", (width, margin + bar_height + 4 + rows * round(font_size * 1.3) + margin // 2), "white")
    inner = max(1, width - 2 * margin)
    table = colormap_table(colormap)
    colours = table[np.linspace(0, 255, inner).round().astype(int)]
    strip.paste(Image.fromarray(np.repeat(colours[None], bar_height, axis=0)), (margin, margin))
    draw = ImageDraw.Draw(strip)
    draw.rectangle((margin - 1, margin - 1, margin + inner, margin + bar_height), outline=(90, 90, 90))
    y = margin + bar_height + 4
    middle = (low + high) / 2
    for value, x, anchor in ((low, margin, "la"), (middle, margin + inner // 2, "ma"), (high, margin + inner, "ra")):
        draw.line((x, margin + bar_height, x, margin + bar_height + 3), fill=(60, 60, 60))
        draw.text((x, y), format_value(value), fill=(20, 20, 20), font=font, anchor=anchor)
    if label:
        draw.text((width // 2, y + round(font_size * 1.3)), drawable(label), fill=(70, 70, 70), font=font,
                  anchor="ma")
    return strip


def with_colour_bar(picture: Image.Image, low: float, high: float, colormap: str = COLORMAPS[0],
                    label: str = "") -> Image.Image:
    """picture with colour_bar(low … high) beneath it."""
    bar = colour_bar(picture.width, low, high, colormap, label)
    sheet = Image.new("RGB", (picture.width, picture.height + bar.height), "white")
    sheet.paste(picture.convert("RGB"), (0, 0))
    sheet.paste(bar, (0, picture.height))
    return sheet


def picture_range(raw: np.ndarray, size: tuple[int, int], view: str = "overlay", sign: str = "positive",
                  rgb: np.ndarray | None = None) -> tuple[float, float]:
    """The real values at the two ends of a map picture's colour scale: the evidence map's lowest and highest value
    (the ReLU'd map in the method's units), −m … +m for the signed view, the gradient's mean ± 5 standard
    deviations for an RGB gradient picture."""
    if rgb is not None:
        values = np.asarray(rgb, dtype=np.float64)
        mean, spread = float(values.mean()), float(values.std())
        return mean - GRADIENT_SPAN * spread, mean + GRADIENT_SPAN * spread
    if view == "signed":
        bound = float(np.abs(signed_values(raw, size)).max())
        return -bound, bound
    return evidence_range(raw, size, sign)


def shared_top(raws: Sequence[np.ndarray], size: tuple[int, int], view: str = "overlay",
               sign: str = "positive") -> float:
    """The one top of the scale for several maps of the same method: the largest of their maxima (signed view:
    of their magnitudes)."""
    return max(abs(picture_range(raw, size, view, sign)[1]) for raw in raws)


def map_view(image: Image.Image, saliency: np.ndarray, raw: np.ndarray, view: str = "overlay", alpha: float = 0.5,
             colormap: str = COLORMAPS[0], rgb: np.ndarray | None = None, sign: str = "positive",
             top: float | None = None, label: str | None = None) -> Image.Image:
    """result_picture with a colour bar of the map's real values beneath, labelled (default: what the values are).
    top: a scale shared with other maps (shared_top): the evidence map divided by it, so a weaker map looks weaker,
    bar 0 … top (signed: −top … +top). An RGB gradient picture keeps its own scale."""
    if view not in VIEWS:
        raise CamError(f"view must be one of {', '.join(VIEWS)}, not {view!r}")
    if label is None:
        label = ("input gradient" if rgb is not None else "signed map" if view == "signed" else "map after the ReLU"
                 ) + (" · shared scale" if top is not None and rgb is None else "")
    size = (image.height, image.width)
    bar_colours = "gray" if rgb is not None else DIVERGING if view == "signed" else colormap
    if top is None or rgb is not None:
        picture = result_picture(image, saliency, raw, view, alpha, colormap, rgb)
        low, high = picture_range(raw, size, view, sign, rgb)
        return with_colour_bar(picture, low, high, bar_colours, label)
    if view == "signed":
        signed = diverging(raw, size, bound=top)
        picture = Image.blend(image.convert("L").convert("RGB"), signed, alpha)
        return with_colour_bar(picture, -top, top, bar_colours, label)
    values = (evidence_map(raw, size, sign) / top).numpy() if top > 0 else np.zeros(size, dtype=np.float32)
    picture = result_picture(image, np.clip(values, 0, 1), raw, view, alpha, colormap)
    return with_colour_bar(picture, 0.0, top, bar_colours, label)


def difference_view(image: Image.Image, values: np.ndarray, alpha: float = 0.6, label: str = "",
                    bound: float | None = None) -> Image.Image:
    """A signed difference map at the image's size on the diverging scale (white at 0) from −bound to +bound
    (default: its largest magnitude; give the two maps' shared scale), blended over a grey copy of the image, with its
    colour bar."""
    bound = float(np.abs(values).max()) if bound is None else float(bound)
    picture = Image.blend(image.convert("L").convert("RGB"), diverging(values, bound=bound), alpha)
    return with_colour_bar(picture, -bound, bound, DIVERGING, label)
