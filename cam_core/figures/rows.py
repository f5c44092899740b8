"""What a figure holds: rows of (image, class), columns of methods with their parameters, and every cell's map,
computed from the images' cached Analyses with one progress callback for the whole figure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PIL import Image

from cam_core.engine.analysis import CamResult
from cam_core.errors import CamError
from cam_core.registry import MethodCard, get_method

FigureProgress = Callable[[int, int, str], None]  # (cells done, cells in all, what was just done)
# Six fast methods of Compare's default grid, one pass (and a backward per class) each on a CNN: a figure's default.
DEFAULT_METHODS = ("gradcam", "gradcampp", "xgradcam", "hirescam", "eigencam", "layercam")


@dataclass(frozen=True)
class Row:
    """An image and the class its maps explain: None for the top-1 class, else an index or a class name. The same
    image may be given twice with two classes."""

    image: Image.Image
    name: str
    target: int | str | None = None


@dataclass(frozen=True)
class Column:
    """A method id and its parameters (layer= or layers= included where the method takes them)."""

    method: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FigureMaps:
    """Every cell's map: results[row][column], with each row's image as analysed and each column's card."""

    rows: tuple[Row, ...]
    columns: tuple[Column, ...]
    cards: tuple[MethodCard, ...]
    images: tuple[Image.Image, ...]
    results: tuple[tuple[CamResult, ...], ...]

    def flat(self) -> list[CamResult]:
        """The maps row by row."""
        return [result for row in self.results for result in row]

    def record(self) -> dict:
        """The rows (image name, class index and label) and the methods (id and every parameter value, as the maps
        were computed), as plain data for a manifest."""
        return {
            "rows": [{"image": row.name, "target": results[0].target, "label": results[0].label}
                     for row, results in zip(self.rows, self.results, strict=True)],
            "methods": [{"id": card.id, "params": {**result.params, **_layers(column, result)}}
                        for card, column, result in zip(self.cards, self.columns, self.results[0], strict=True)],
        }


def _layers(column: Column, result: CamResult) -> dict:
    """The layer(s) a map was computed at, under the name the column gave them (default: layer)."""
    if "layers" in column.params:
        return {"layers": list(result.layers)}
    return {"layer": result.layer} if len(result.layers) == 1 else {"layers": list(result.layers)}


def compute_maps(explainer, rows: Sequence[Row], columns: Sequence[Column],
                 progress: FigureProgress | None = None) -> FigureMaps:
    """Each row's map by each column's method, from the explainer's cached Analysis of the row's image (a map asked
    for again runs no model pass). progress(done, total, text) after every cell. A CamError before any work when a
    method is unknown or the model cannot run it, or there is no row or no column."""
    if not rows:
        raise CamError("a figure needs at least one image")
    if not columns:
        raise CamError("a figure needs at least one method")
    cards = tuple(get_method(column.method).card for column in columns)
    for card in cards:
        why = explainer.unmet(card)
        if why:
            raise CamError(f"{card.name} cannot run on {explainer.name}: {why}")
    total, done = len(rows) * len(columns), 0
    images, results = [], []
    for row in rows:
        analysis = explainer.analyze(row.image)
        target = analysis.target(None if row.target is None else explainer.class_index(row.target))
        cells = []
        for column, card in zip(columns, cards, strict=True):
            cells.append(analysis.cam(column.method, target=target, **column.params))
            done += 1
            if progress is not None:
                progress(done, total, f"{card.name} · {row.name}")
        images.append(analysis.image)
        results.append(tuple(cells))
    return FigureMaps(tuple(rows), tuple(columns), cards, tuple(images), tuple(results))
