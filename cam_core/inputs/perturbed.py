"""Altered copies of the model input for the smoothed and integrated gradient methods: noisy copies of the image, or
a straight path from a blurred copy to the image."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cam_core.errors import CamError

KINDS = ("noise", "blur")


@dataclass(frozen=True)
class PathSpec:
    """Which altered inputs: `noise` = count copies with Gaussian noise of sigma × the input's value range added;
    `blur` = a Gaussian blur of sigma pixels (the baseline) followed by count evenly spaced points from it to the
    image (the last one being the image)."""

    kind: str
    layer: str
    count: int
    sigma: float
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise CamError(f"path kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.count < 1:
            raise CamError(f"a path needs at least 1 point, not {self.count}")
        if self.sigma < 0:
            raise CamError(f"sigma must not be negative, not {self.sigma}")

    @property
    def has_baseline(self) -> bool:
        """Whether the first row of path_inputs is the baseline rather than a point of the path."""
        return self.kind == "blur"


def path_inputs(model_input: torch.Tensor, spec: PathSpec) -> torch.Tensor:
    """The (rows, 3, H, W) altered inputs of spec for a (1, 3, H, W) model input (the same for the same seed)."""
    image = model_input.detach()
    if spec.kind == "noise":
        generator = torch.Generator().manual_seed(int(spec.seed))
        span = float(image.max() - image.min()) or 1.0
        noise = torch.randn((spec.count, *image.shape[1:]), generator=generator, dtype=image.dtype)
        return image + noise * (spec.sigma * span)
    baseline = blurred(image, spec.sigma)
    steps = torch.arange(1, spec.count + 1, dtype=image.dtype).div(spec.count).view(-1, 1, 1, 1)
    return torch.cat([baseline, baseline + steps * (image - baseline)])


def blurred(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """image with a Gaussian blur of standard deviation sigma pixels (kernel ±3σ, reflected at the borders); below
    0.01 px a blur moves nothing (and its kernel would underflow), so the image comes back as it is."""
    if sigma < 0.01:
        return image.clone()
    radius = min(math.ceil(3 * sigma), min(image.shape[-2:]) - 1)
    offsets = torch.arange(-radius, radius + 1, dtype=image.dtype)
    kernel = torch.exp(-0.5 * (offsets / float(sigma)) ** 2)
    kernel = kernel / kernel.sum()
    padded = F.pad(image, [radius] * 4, mode="reflect")
    height, width = image.shape[-2:]
    return band(kernel, height).T @ padded @ band(kernel, width)


def band(kernel: torch.Tensor, size: int) -> torch.Tensor:
    """The (size + len(kernel) − 1, size) matrix whose column j is kernel at rows j onwards: a 1-D convolution of a
    padded row as a product (the Gaussian blur is separable, and two products are much faster than a 2-D kernel)."""
    rows = torch.arange(size + len(kernel) - 1)[:, None] - torch.arange(size)[None, :]
    inside = (rows >= 0) & (rows < len(kernel))
    return torch.where(inside, kernel[rows.clamp(0, len(kernel) - 1)], torch.zeros((), dtype=kernel.dtype))
