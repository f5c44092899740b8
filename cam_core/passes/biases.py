"""FullGrad's pass: one forward whose graph reaches the input, capturing the output of every layer with a bias
(a convolution's own bias, or the implicit bias of an eval-mode batch norm) as it leaves that bias.

The caller gives a module tree that no other thread is running (an Explainer's replica), since hooks on a module
act on every pass through it."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cam_core.errors import CamError


@dataclass
class BiasPass:
    """Logits attached to a graph down to the input leaf, and each biased layer's (1, C, h, w) output with its name
    and its (C,) bias, in the order the layers ran."""

    logits: torch.Tensor
    input: torch.Tensor
    names: list[str]
    outputs: list[torch.Tensor]
    biases: list[torch.Tensor]
    graph_bytes: int


def layer_bias(module: nn.Module) -> torch.Tensor | None:
    """The (C,) bias a layer adds to each output channel: a convolution's bias, or an eval-mode batch norm's
    β − μγ/√(σ² + ε) (what it adds once its scaling is taken as a convolution); None for other layers."""
    if isinstance(module, nn.BatchNorm2d):
        if module.running_mean is None or module.running_var is None:
            return None
        scale = torch.rsqrt(module.running_var + module.eps)
        if module.affine:
            return (module.bias - module.running_mean * module.weight * scale).detach()
        return (-module.running_mean * scale).detach()
    if isinstance(module, nn.Conv2d) and module.bias is not None:
        return module.bias.detach()
    return None


def bias_output_site(module: nn.Module) -> tuple[nn.Module, bool]:
    """Where a biased layer's output is caught: the layer's own output, or, for a batch norm that applies its
    activation inside (timm's BatchNormAct2d), the input of its `drop` step, which is the normalised tensor before
    the activation. The flag says whether it is an input (a forward pre-hook) rather than an output."""
    inner = getattr(module, "drop", None)
    if isinstance(module, nn.BatchNorm2d) and isinstance(inner, nn.Module) and isinstance(
        getattr(module, "act", None), nn.Module
    ):
        return inner, True
    return module, False


def biased_layers(model: nn.Module) -> list[tuple[str, nn.Module, torch.Tensor]]:
    """Every (name, layer, bias) of model that FullGrad reads, in module order."""
    found = []
    for name, module in model.named_modules():
        bias = layer_bias(module)
        if bias is not None:
            found.append((name, module, bias))
    return found


def bias_pass(model: nn.Module, x: torch.Tensor, parameter_storages: frozenset[int]) -> BiasPass:
    """Run model on a differentiable copy of x and keep the output of each biased layer that gives a (1, C, h, w)
    map (biases of vectors, such as the classifier's, have no place in the image). Outputs are cloned before the
    model goes on, so in-place operations after a layer (ReLU6(inplace=True)) cannot change what was caught."""
    leaf = x.detach().clone().requires_grad_(True)
    caught: list[tuple[str, torch.Tensor, torch.Tensor]] = []
    graph_bytes = 0

    def keep(name: str, bias: torch.Tensor, tensor: object) -> object:
        if isinstance(tensor, torch.Tensor) and tensor.dim() == 4 and tensor.shape[1] == bias.numel():
            caught.append((name, tensor, bias))
            return tensor.clone()
        return tensor

    def make_hook(name: str, bias: torch.Tensor, before: bool):
        if before:
            return lambda _module, inputs: (keep(name, bias, inputs[0]), *inputs[1:])
        return lambda _module, _inputs, output: keep(name, bias, output)

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal graph_bytes
        if tensor.untyped_storage().data_ptr() not in parameter_storages:
            graph_bytes += tensor.numel() * tensor.element_size()
        return tensor

    handles = []
    for name, module, bias in biased_layers(model):
        site, before = bias_output_site(module)
        hook = make_hook(name, bias, before)
        handles.append(site.register_forward_pre_hook(hook) if before else site.register_forward_hook(hook))
    try:
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            logits = model(leaf)
    finally:
        for handle in handles:
            handle.remove()
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise CamError("the model's output is not a (batch, classes) tensor of logits")
    graph_bytes += sum(tensor.numel() * tensor.element_size() for _, tensor, _ in caught)
    return BiasPass(logits, leaf, [name for name, _, _ in caught], [tensor for _, tensor, _ in caught],
                    [bias for _, _, bias in caught], graph_bytes)
