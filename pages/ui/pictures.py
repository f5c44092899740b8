"""The pictures of maps the pages show, drawn once per (model, image, method, class, settings, look) at their shown
size, encoded once and shared by every session: a class switch back, a rerun or another student on the same photo
sends the same bytes again (the browser already has them) and draws nothing."""

from __future__ import annotations

from collections.abc import Hashable
from typing import NamedTuple

from cam_core import Analysis, CamResult
from cam_core.registry import settings_key
from pages.ui.resources import result_store

PICTURE_BYTES = 192 << 20  # about 4000 pictures of 480 px: a classroom's grids, several classes each


class Shown(NamedTuple):
    """One map as a page shows it: the result (for its captions and downloads), the top of its shared scale (None:
    its own scale) and its picture as JPEG bytes."""

    result: CamResult
    top: float | None
    picture: bytes

    @property
    def nbytes(self) -> int:
        """The picture's bytes and the result's arrays (its full-size saliency once a download has drawn it)."""
        arrays = [self.result.raw, self.result.rgb, self.result.__dict__.get("saliency")]
        return len(self.picture) + sum(array.nbytes for array in arrays if array is not None)


def picture_key(analysis: Analysis, method_id: str, target: int, sign: str, settings: dict,
                look: Hashable, shared_with: int | None, width: int) -> tuple:
    """What a shown map depends on: the model, the image, the method, the class, the sign, the method's settings,
    how it is drawn, the other class whose map shares its scale (None: its own scale) and the width."""
    return (analysis.explainer.name, analysis.key, method_id, int(target), sign, settings_key(settings), look,
            shared_with, width)


def shown_maps():
    """The server's store of shown maps (a cam_core.engine.lru.ByteLRU of Shown, bounded by PICTURE_BYTES)."""
    return result_store("shown_maps", PICTURE_BYTES)
