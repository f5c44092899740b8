"""How a layer's output becomes a (batch, channels, height, width) feature map: CNN maps as they are, Vision
Transformer tokens reshaped to their patch grid, Swin's channels-last maps permuted."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cam_core.errors import CamError

LAYOUTS = ("nchw", "tokens", "nhwc")


@dataclass(frozen=True)
class Layout:
    """A layer output's arrangement. `tokens`: (B, prefix + h·w, C), the class/distillation tokens first, the patch
    grid given or (Swin's stages, each with its own grid) square; a 4-D output of a token model (Swin's stages, block
    outputs and norm1) is channels-last (B, h, w, C)."""

    name: str = "nchw"
    prefix: int = 0
    grid: tuple[int, int] | None = None

    def to_map(self, output: torch.Tensor) -> torch.Tensor:
        """output as a (B, C, h, w) map (a view or copy; a linear rearrangement either way, so gradients map alike)."""
        if self.name == "nchw":
            return output
        if output.dim() == 4:
            return output.permute(0, 3, 1, 2)
        if output.dim() != 3:
            return output
        batch, tokens, channels = output.shape
        height, width = (
            self.grid
            if self.grid and self.grid[0] * self.grid[1] == tokens - self.prefix
            else (_square_grid(tokens - self.prefix))
        )
        if tokens - self.prefix != height * width:
            raise CamError(
                f"a token layer has {tokens} tokens; with {self.prefix} class token(s) that is not the "
                f"{height}×{width} patch grid, so it cannot be shown as a map"
            )
        return output[:, self.prefix :, :].transpose(1, 2).reshape(batch, channels, height, width)

    def replace_map(self, output: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """output with its (B, C, h, w) map replaced by maps (the inverse of to_map; class tokens are kept)."""
        maps = maps.to(output.dtype)
        if self.name == "nchw" or output.dim() not in (3, 4):
            return maps
        if output.dim() == 4:
            return maps.permute(0, 2, 3, 1).contiguous()
        return torch.cat([output[:, : self.prefix, :], maps.flatten(2).transpose(1, 2)], dim=1)

    def zero_channels(self, output: torch.Tensor, rows: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
        """A copy of output with channel channels[i] zeroed at every map position of batch row rows[i]."""
        output = output.clone()
        if self.name == "nchw":
            output[rows, channels] = 0.0
        elif output.dim() == 4:
            output[rows, :, :, channels] = 0.0
        else:
            output[rows, self.prefix :, channels] = 0.0
        return output


NCHW = Layout()


def _square_grid(count: int) -> tuple[int, int]:
    side = round(count**0.5)
    return side, side


def layout_for(name: str, model: nn.Module) -> Layout:
    """The Layout called name (models.yaml `layout`), with the token grid read off a timm transformer."""
    if name not in LAYOUTS:
        raise CamError(f"layout must be one of {', '.join(LAYOUTS)}, not {name!r}")
    if name != "tokens":
        return Layout(name)
    class_token = getattr(model, "class_token", None)  # torchvision's ViT: one class token, no num_prefix_tokens
    prefix = int(getattr(model, "num_prefix_tokens", 1 if isinstance(class_token, torch.Tensor) else 0))
    grid = getattr(getattr(model, "patch_embed", None), "grid_size", None)
    return Layout(name, prefix, tuple(int(g) for g in grid) if grid else None)
