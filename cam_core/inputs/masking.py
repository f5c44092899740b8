"""Masks from activation maps, baselines, and masked inputs: what Score-CAM-like methods feed the network."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cam_core.errors import CamError
from cam_core.inputs.perturbed import blurred
from cam_core.scaling import is_blank, min_max

BASELINES = {"zero": "the all-zero input (the training images' mean colour)", "blur": "a heavily blurred copy"}
SCALINGS = ("minmax", "percentile")
INTEGRATIONS = {
    "none": "every sample keeps the mask as it is",
    "linear": "sample i of N scales the mask by i/N, from 1/N up to 1 (a Riemann sum of the integral from 0 to 1)",
    "cumulative": "sample i of N scales the mask by 1/N + 2/N + … + i/N, up to (N + 1)/2 (torchcam's ISCAM)",
}
BLUR_SIGMA = 10.0
OUTLIER_PERCENT = 0.1


def normalized_masks(
    maps: torch.Tensor, size: int, align_corners: bool = False, scaling: str = "minmax"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, 1, size, size) masks: each (h, w) map bilinearly upsampled and min-max scaled to [0, 1] ("minmax"), or
    scaled to [0, 1] by its outlier-robust range and then upsampled ("percentile"); and an (M,) flag of the maps
    that are constant (their mask is all zero, so the masked input is the baseline itself).

    align_corners=False puts each map cell at the centre of the image patch it covers; True stretches the map so
    its corner cells sit on the image's corners (pytorch-grad-cam's choice), shifting evidence by up to half a cell.
    """
    if scaling == "percentile":
        return robust_masks(maps, size, align_corners)
    upsampled = F.interpolate(maps[:, None].float(), size=(size, size), mode="bilinear", align_corners=align_corners)
    flat = upsampled.flatten(1)
    return min_max(upsampled, dims=(1, 2, 3)), is_blank(flat.min(dim=1).values, flat.max(dim=1).values)


def robust_masks(maps: torch.Tensor, size: int, align_corners: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Poly-CAM's masks: each (h, w) map shifted by its 0.1th percentile, divided by its 99.9th (as its authors' code
    does, not by the range), clipped to [0, 1], then bilinearly upsampled; and the flag of the all-zero masks."""
    flat = maps.flatten(1).double()
    low = torch.quantile(flat, OUTLIER_PERCENT / 100.0, dim=1)
    high = torch.quantile(flat, 1.0 - OUTLIER_PERCENT / 100.0, dim=1).clamp(min=1e-12)
    scaled = ((flat - low[:, None]) / high[:, None]).clamp(0.0, 1.0).float().reshape(maps.shape)
    masks = F.interpolate(scaled[:, None], size=(size, size), mode="bilinear", align_corners=align_corners)
    return masks, scaled.flatten(1).amax(dim=1) <= 0


def baseline_input(model_input: torch.Tensor, baseline: str, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """The input with no evidence left in it (one of BASELINES): zero (the normalisation's mean colour, mid-grey for
    inputs in [-1, 1]) or a strong Gaussian blur."""
    if baseline == "zero":
        return torch.zeros_like(model_input)
    if baseline == "blur":
        return blurred(model_input, sigma)
    raise CamError(f"baseline must be one of {', '.join(BASELINES)}, not {baseline!r}")


def masked_inputs(model_input: torch.Tensor, base: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """baseline + mask · (input − baseline) for each (1, S, S) mask: the input kept where the mask is 1."""
    return base + masks * (model_input - base)


def mask_scales(integration: str, samples: int) -> torch.Tensor:
    """The (samples,) factors each mask is multiplied by, one per sample (one of INTEGRATIONS)."""
    steps = torch.arange(1, samples + 1, dtype=torch.float64) / samples
    if integration == "none":
        return torch.ones(samples)
    if integration == "linear":
        return steps.float()
    if integration == "cumulative":
        return steps.cumsum(0).float()
    raise CamError(f"integration must be one of {', '.join(INTEGRATIONS)}, not {integration!r}")


def mask_noise(seed: int, sample: int, mask: int, size: int, std: float) -> torch.Tensor:
    """The (1, size, size) Gaussian noise of standard deviation std that sample `sample` adds to mask `mask`: drawn
    from its own generator, seeded by (seed, sample, mask), so it does not depend on batches or threads."""
    state = int(np.random.SeedSequence([int(seed), int(sample), int(mask)]).generate_state(1, np.uint64)[0])
    generator = torch.Generator().manual_seed(state)
    return torch.randn((1, size, size), generator=generator) * std
