"""Masks from activation maps, baselines, and masked inputs: what Score-CAM-like methods feed the network."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .errors import CamError
from .paths import blurred

BASELINES = ("zeros", "blur")
BLUR_SIGMA = 10.0


def normalized_masks(
    maps: torch.Tensor, size: int, align_corners: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, 1, size, size) masks: each (h, w) map bilinearly upsampled and min-max scaled to [0, 1]; and an (M,)
    flag of the maps that are constant (their mask is all zero, so the masked input is the baseline itself).

    align_corners=False puts each map cell at the centre of the image patch it covers; True stretches the map so
    its corner cells sit on the image's corners (pytorch-grad-cam's choice), shifting evidence by up to half a cell.
    """
    upsampled = F.interpolate(maps[:, None].float(), size=(size, size), mode="bilinear", align_corners=align_corners)
    flat = upsampled.flatten(1)
    low, high = flat.min(dim=1).values, flat.max(dim=1).values
    constant = (high - low) <= 1e-12 * torch.clamp(high.abs(), min=1.0)
    span = torch.where(constant, torch.ones_like(high), high - low)
    masks = (upsampled - low[:, None, None, None]) / span[:, None, None, None]
    masks[constant] = 0.0
    return masks, constant


def baseline_input(model_input: torch.Tensor, baseline: str, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """The input with no evidence left in it: zeros (the normalisation's mean colour, mid-grey for inputs in
    [-1, 1]) or a strong Gaussian blur."""
    if baseline == "zeros":
        return torch.zeros_like(model_input)
    if baseline == "blur":
        return blurred(model_input, sigma)
    raise CamError(f"baseline must be one of {', '.join(BASELINES)}, not {baseline!r}")


def masked_inputs(model_input: torch.Tensor, base: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """baseline + mask · (input − baseline) for each (1, S, S) mask: the input kept where the mask is 1."""
    return base + masks * (model_input - base)
