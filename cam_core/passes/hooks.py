"""One model pass that captures chosen layers' outputs as differentiable tensors, leaving nothing attached.

The caller gives a module tree that no other thread is running (an Explainer's replica), since hooks on a module
act on every pass through it."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cam_core.errors import CamError
from cam_core.models.layouts import NCHW, Layout


@dataclass
class LayerPass:
    """What one pass yields: logits still attached to the graph below the layers, and each layer's output."""

    logits: torch.Tensor
    activations: dict[str, torch.Tensor]
    graph_bytes: int


def run_with_layers(
    model: nn.Module,
    x: torch.Tensor,
    layers: list[str],
    parameter_storages: frozenset[int],
    layout: Layout = NCHW,
) -> LayerPass:
    """Run model on x and keep the output of each layer named in layers; gradients can then be taken from the
    logits to them.

    The first captured layer to run becomes a leaf, so no graph is built above it: a gradient at a layer costs
    a backward through the part of the model after that layer only. Outputs are cloned before the model goes on,
    so in-place operations after the layer (ReLU(inplace=True)) cannot change what was captured. Outputs are kept
    as the layer gives them; layout says how they read as (batch, channels, height, width) maps.
    """
    captured: dict[str, torch.Tensor] = {}
    graph_bytes = 0

    def make_hook(name: str):
        def hook(_module: nn.Module, _inputs: tuple, output: object) -> torch.Tensor:
            if not isinstance(output, torch.Tensor):
                raise CamError(f"layer {name} returns a {type(output).__name__}, not a tensor; pick another layer")
            kept = output if output.requires_grad else output.detach().requires_grad_(True)
            captured[name] = kept
            return kept.clone()

        return hook

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal graph_bytes
        if tensor.untyped_storage().data_ptr() not in parameter_storages:
            graph_bytes += tensor.numel() * tensor.element_size()
        return tensor

    handles = [model.get_submodule(name).register_forward_hook(make_hook(name)) for name in layers]
    try:
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            logits = model(x)
    finally:
        for handle in handles:
            handle.remove()
    missing = [name for name in layers if name not in captured]
    if missing:
        raise CamError(f"layer(s) {', '.join(missing)} did not run in the model's forward pass; pick another layer")
    for name, tensor in captured.items():
        if layout.to_map(tensor).dim() != 4:
            raise CamError(
                f"layer {name} gives a tensor of shape {tuple(tensor.shape)}; CAMs need a (channels, height, width) "
                "feature map (or, on a transformer, patch tokens), so pick another layer"
            )
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise CamError("the model's output is not a (batch, classes) tensor of logits")
    return LayerPass(logits, captured, graph_bytes)


@dataclass
class InputPass:
    """Logits of a pass whose graph reaches back to the input, and that input."""

    logits: torch.Tensor
    input: torch.Tensor
    graph_bytes: int


def input_pass(model: nn.Module, x: torch.Tensor, parameter_storages: frozenset[int]) -> InputPass:
    """Run model on a differentiable copy of x, keeping the whole graph so that input gradients can be taken."""
    leaf = x.detach().clone().requires_grad_(True)
    graph_bytes = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal graph_bytes
        if tensor.untyped_storage().data_ptr() not in parameter_storages:
            graph_bytes += tensor.numel() * tensor.element_size()
        return tensor

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logits = model(leaf)
    return InputPass(logits, leaf, graph_bytes)
