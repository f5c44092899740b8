"""From a method's signed layer-resolution map to a saliency map at the image's size."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cam_core.errors import CamError
from cam_core.scaling import is_blank, min_max

SIGNS = ("positive", "negative")


def evidence_map(raw: torch.Tensor | np.ndarray, size: tuple[int, int], sign: str = "positive") -> torch.Tensor:
    """ReLU of the signed map (or of its negation), bilinearly resized to size=(height, width): the evidence in the
    method's own units."""
    if sign not in SIGNS:
        raise CamError(f"sign must be one of {', '.join(SIGNS)}, not {sign!r}")
    raw = torch.as_tensor(raw)
    signed = raw if sign == "positive" else -raw
    signed = torch.nan_to_num(signed.float(), nan=0.0, posinf=0.0, neginf=0.0)
    kept = signed.clamp(min=0)
    return F.interpolate(kept[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]


def evidence_range(
    raw: torch.Tensor | np.ndarray, size: tuple[int, int], sign: str = "positive"
) -> tuple[float, float]:
    """The lowest and highest value of evidence_map: what 0 and 1 of the saliency map stand for."""
    kept = evidence_map(raw, size, sign)
    return float(kept.min()), float(kept.max())


def blank_note(raw: torch.Tensor | np.ndarray, sign: str = "positive") -> str:
    """Why the sign's evidence map is blank (no position has that sign's evidence), or "" when it is not: read at the
    method's own resolution, which bilinear resizing cannot turn from blank to not blank."""
    if sign not in SIGNS:
        raise CamError(f"sign must be one of {', '.join(SIGNS)}, not {sign!r}")
    raw = torch.as_tensor(raw)
    kept = torch.nan_to_num((raw if sign == "positive" else -raw).float(), nan=0.0, posinf=0.0, neginf=0.0).clamp(min=0)
    if bool(is_blank(kept.min(), kept.max())):
        return f"the {sign} map is empty (no position has {sign} evidence at this layer)"
    return ""


def saliency_map(
    raw: torch.Tensor | np.ndarray, size: tuple[int, int], sign: str = "positive"
) -> tuple[np.ndarray, str]:
    """evidence_map min-max scaled to [0, 1]; with blank_note's note (and zeros) when the map is blank."""
    note = blank_note(raw, sign)
    if note:
        return np.zeros(size, dtype=np.float32), note
    return min_max(evidence_map(raw, size, sign)).numpy().astype(np.float32), ""
