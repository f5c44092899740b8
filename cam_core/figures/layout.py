"""How a figure of images × methods is laid out and drawn: cell size, spacing, colours, text, colour bars, DPI."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from cam_core.errors import CamError
from cam_core.render.pictures import COLORMAPS

VIEWS = ("overlay", "map")  # the map over the image, or the map alone
COLORBARS = ("none", "column", "cell")  # no bar, one bar at the end of each row, a bar under every map
FORMATS = ("png", "pdf", "svg")


@dataclass(frozen=True)
class Layout:
    """The drawing options of a figure. Sizes are in inches (cell: the width of one map; a row's height follows its
    image's aspect ratio), font_size in points, dpi only for PNG (PDF and SVG are vector files)."""

    cell: float = 1.6
    spacing: float = 0.05
    colormap: str = COLORMAPS[0]
    view: str = "overlay"
    alpha: float = 0.5
    font_size: float = 8.0
    raw_column: bool = True
    colorbar: str = "none"
    titles: bool = True
    image_names: bool = False
    dpi: int = 200

    def __post_init__(self) -> None:
        checks = (
            (0.3 <= self.cell <= 10, f"cell size must be between 0.3 and 10 inches, not {self.cell}"),
            (0 <= self.spacing <= 2, f"spacing must be between 0 and 2 inches, not {self.spacing}"),
            (self.colormap in COLORMAPS, f"colour map must be one of {', '.join(COLORMAPS)}, not {self.colormap!r}"),
            (self.view in VIEWS, f"view must be one of {', '.join(VIEWS)}, not {self.view!r}"),
            (0 <= self.alpha <= 1, f"opacity must be between 0 and 1, not {self.alpha}"),
            (3 <= self.font_size <= 40, f"font size must be between 3 and 40 points, not {self.font_size}"),
            (self.colorbar in COLORBARS, f"colour bar must be one of {', '.join(COLORBARS)}, not {self.colorbar!r}"),
            (30 <= self.dpi <= 1200, f"DPI must be between 30 and 1200, not {self.dpi}"),
        )
        for ok, message in checks:
            if not ok:
                raise CamError(message)

    def record(self) -> dict:
        """The options as plain data (for a manifest)."""
        return asdict(self)


def format_of(path: str) -> str:
    """The figure format a file name asks for, from its suffix (.png, .pdf, .svg)."""
    suffix = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if suffix not in FORMATS:
        raise CamError(f"a figure is written as {', '.join('.' + f for f in FORMATS)}; {path!r} has no such suffix")
    return suffix
