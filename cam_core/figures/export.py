"""A figure's maps drawn with matplotlib (a Figure of its own, never pyplot's global state) and saved as PNG at the
layout's DPI, or as PDF and SVG vector files with the maps embedded as images and the text as text."""

from __future__ import annotations

import io
import textwrap
import threading
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from PIL import Image

from cam_core.engine.analysis import CamResult
from cam_core.errors import CamError
from cam_core.figures.layout import FORMATS, Layout
from cam_core.figures.rows import FigureMaps
from cam_core.render.colourbar import format_value, picture_range
from cam_core.render.pictures import colormap_table, result_picture

POINT = 1 / 72  # inches
# Text stays text (SVG: <text>, PDF: TrueType), and no date, so the same figure gives the same bytes.
_SAVE_RC = {"svg.fonttype": "none", "pdf.fonttype": 42, "svg.hashsalt": "cam_core"}
_METADATA = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None}, "svg": {"Date": None}}
_SAVE_LOCK = threading.Lock()  # rc_context changes matplotlib's global settings: one save at a time


@dataclass(frozen=True)
class Grid:
    """Which columns a figure has: the raw image first (when asked), the methods, a colour-bar column last (when
    asked); and whether each map has a bar beneath it."""

    rows: int
    raw: bool
    methods: int
    bar_column: bool
    cell_bars: bool

    @property
    def columns(self) -> int:
        """Image columns and the colour-bar column."""
        return self.raw + self.methods + self.bar_column


def grid_shape(maps: FigureMaps, layout: Layout) -> Grid:
    """The figure's rows and columns under layout."""
    return Grid(len(maps.rows), layout.raw_column, len(maps.columns), layout.colorbar == "column",
                layout.colorbar == "cell")


def cell_picture(image: Image.Image, result: CamResult, layout: Layout) -> Image.Image:
    """The map drawn as the dashboard draws it (overlay or map only, the same colours), at most layout.dpi pixels
    per inch of cell."""
    picture = result_picture(image, result.saliency, result.raw, layout.view, layout.alpha, layout.colormap,
                             result.rgb)
    return _embedded(picture, layout)


def _embedded(picture: Image.Image, layout: Layout) -> Image.Image:
    width = round(layout.cell * layout.dpi)
    if picture.width <= width:
        return picture.convert("RGB")
    return picture.convert("RGB").resize((width, max(1, round(picture.height * width / picture.width))),
                                         Image.LANCZOS)


def _colormap(name: str) -> ListedColormap:
    return ListedColormap(colormap_table(name) / 255.0, name=name)


class _Sizes:
    """The figure's measures in inches, from the layout and the rows' aspect ratios."""

    def __init__(self, maps: FigureMaps, layout: Layout, grid: Grid) -> None:
        font = layout.font_size * POINT
        self.lines = 2 if layout.image_names else 1
        self.label = self.lines * font * 1.5 + 0.04
        self.title = font * 2.0 if layout.titles else 0.0
        self.bar = max(0.05, 0.06 * layout.cell)
        self.bar_block = layout.spacing + self.bar + font * 1.6 if grid.cell_bars else 0.0
        self.bar_width = max(0.06, 0.08 * layout.cell)
        self.bar_column = layout.spacing + self.bar_width + font * 3.2 if grid.bar_column else 0.0
        self.margin = 0.04
        self.heights = [layout.cell * image.height / image.width for image in maps.images]
        images = grid.raw + grid.methods
        self.width = (self.margin * 2 + self.label + images * layout.cell + (images - 1) * layout.spacing
                      + self.bar_column)
        self.height = (self.margin * 2 + self.title + sum(self.heights) + len(self.heights) * self.bar_block
                       + (len(self.heights) - 1) * layout.spacing)


def draw(maps: FigureMaps, layout: Layout, fmt: str = "png") -> Figure:
    """The figure: a row per image (its class label, and its name when asked, at the left), a column per method
    (its name above), the raw image first and a colour-bar column last when asked. Maps are embedded unresampled in
    vector formats (fmt pdf or svg) and smoothly resampled in PNG."""
    grid = grid_shape(maps, layout)
    sizes = _Sizes(maps, layout, grid)
    figure = Figure(figsize=(sizes.width, sizes.height), facecolor="white")
    interpolation = "antialiased" if fmt == "png" else "none"
    titles = (["image"] if grid.raw else []) + [card.name for card in maps.cards]
    top = sizes.margin + sizes.title
    for row, (image, results, height) in enumerate(zip(maps.images, maps.results, sizes.heights, strict=True)):
        left = sizes.margin + sizes.label
        cells = ([_embedded(image, layout)] if grid.raw else []) + [cell_picture(image, r, layout) for r in results]
        for column, picture in enumerate(cells):
            axes = _axes(figure, sizes, left, top, layout.cell, height)
            axes.imshow(np.asarray(picture), interpolation=interpolation, aspect="auto")
            if column == 0:
                axes.set_ylabel(_row_label(maps, row, layout, height), fontsize=layout.font_size)
            if row == 0 and layout.titles:
                axes.set_title(titles[column], fontsize=layout.font_size, pad=layout.font_size * 0.4)
            result = results[column - grid.raw] if column >= grid.raw else None
            if grid.cell_bars and result is not None:
                _cell_bar(figure, sizes, layout, image, result, left, top + height + layout.spacing)
            left += layout.cell + layout.spacing
        if grid.bar_column:
            _row_bar(figure, sizes, layout, left, top, height)
        top += height + sizes.bar_block + layout.spacing
    return figure


def _axes(figure: Figure, sizes: _Sizes, left: float, top: float, width: float, height: float):
    """Axes at left, top (inches from the figure's top-left corner), without ticks or frame."""
    axes = figure.add_axes((left / sizes.width, 1 - (top + height) / sizes.height, width / sizes.width,
                            height / sizes.height))
    axes.set_xticks([])
    axes.set_yticks([])
    for spine in axes.spines.values():
        spine.set_visible(False)
    return axes


def _row_label(maps: FigureMaps, row: int, layout: Layout, height: float) -> str:
    """The row's class label (and image name), wrapped to the row's height."""
    result = maps.results[row][0]
    fits = max(8, int(height / (layout.font_size * POINT * 0.6)))
    lines = [textwrap.shorten(result.label, fits, placeholder="…")]
    if layout.image_names:
        lines.append(textwrap.shorten(maps.rows[row].name, fits, placeholder="…"))
    return "\n".join(lines)


def _cell_bar(figure: Figure, sizes: _Sizes, layout: Layout, image: Image.Image, result: CamResult, left: float,
              top: float) -> None:
    """A horizontal bar of the map's real values under it (the map after the ReLU in the method's units; an RGB
    gradient picture: its mean ± 5 standard deviations, in grey)."""
    low, high = picture_range(result.raw, (image.height, image.width), "overlay", result.sign, result.rgb)
    axes = _axes(figure, sizes, left, top, layout.cell, sizes.bar)
    name = "gray" if result.rgb is not None else layout.colormap
    _bar(figure, axes, name, low, high, "horizontal", layout)


def _row_bar(figure: Figure, sizes: _Sizes, layout: Layout, left: float, top: float, height: float) -> None:
    """A vertical bar at the end of a row: each map's colours run from its lowest to its highest value."""
    axes = _axes(figure, sizes, left, top + height * 0.1, sizes.bar_width, height * 0.8)
    _bar(figure, axes, layout.colormap, 0.0, 1.0, "vertical", layout, ("min", "max"))


def _bar(figure: Figure, axes, name: str, low: float, high: float, orientation: str, layout: Layout,
         labels: tuple[str, str] | None = None) -> None:
    mappable = ScalarMappable(Normalize(low, high if high > low else low + 1), _colormap(name))
    bar = figure.colorbar(mappable, cax=axes, orientation=orientation, ticks=[low, high])
    bar.ax.tick_params(labelsize=layout.font_size * 0.8, length=2, pad=1)
    bar.set_ticklabels(list(labels or (format_value(low), format_value(high))))
    first, last = bar.ax.get_xticklabels() if orientation == "horizontal" else bar.ax.get_yticklabels()
    if orientation == "horizontal":  # the ends' labels inside the bar's width, clear of the next cell's
        first.set_horizontalalignment("left")
        last.set_horizontalalignment("right")
    else:
        first.set_verticalalignment("bottom")
        last.set_verticalalignment("top")
    bar.outline.set_linewidth(0.4)


def export(maps: FigureMaps, layout: Layout, fmt: str) -> bytes:
    """The figure as PNG (at layout.dpi), PDF or SVG bytes."""
    if fmt not in FORMATS:
        raise CamError(f"a figure is saved as {', '.join(FORMATS)}, not {fmt!r}")
    figure = draw(maps, layout, fmt)
    buffer = io.BytesIO()
    with _SAVE_LOCK, matplotlib.rc_context(_SAVE_RC):
        figure.savefig(buffer, format=fmt, dpi=layout.dpi, metadata=_METADATA[fmt], facecolor="white")
    return buffer.getvalue()
