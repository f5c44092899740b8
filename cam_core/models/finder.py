"""Finding an unknown classifier's target layer, head, layer choices and pyramid from one recorded forward pass."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch
from torch import nn

from cam_core.errors import CamError
from cam_core.models.layouts import LAYOUTS
from cam_core.models.specs import BUILTIN_STEPS, Head

ACTIVATIONS = {"relu", "relu6", "silu", "swish", "gelu", "geglu", "gelutanh", "quickgelu", "hardswish", "mish",
               "hardmish", "elu", "leakyrelu", "prelu", "selu", "celu"}
PASSIVE = (nn.Identity, nn.Flatten, nn.modules.dropout._DropoutNd)
POOLS = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd,
         nn.modules.pooling._AdaptiveMaxPoolNd)
BRIDGES = ((), ("flatten",), ("gap",), ("relu",), ("relu", "gap"), ("relu", "flatten"))
PYRAMID_LEVELS = 4  # models.yaml's pyramids have 3-4 levels: the deepest resolutions carry the class evidence
TOKEN_LAYERS = 4  # the input norms of the last few attention blocks, as models.yaml offers for ViT/DeiT


@dataclass
class FoundLayers:
    """What the finder read off a model: its default layer, the head after it (() when no head reproduces the
    logits), layer choices, pyramid (shallow to deep, ending with the target), the layers' layout, the number of
    classes (the logits' size) and notes saying what was found and what it means for the methods."""

    target_layer: str
    head: tuple[str, ...]
    layers: tuple[str, ...]
    pyramid: tuple[str, ...]
    layout: str
    classes: int
    notes: list[str] = field(default_factory=list)


@dataclass(eq=False)
class _Tensor:
    """One value seen in the pass, with every module call that returned it unchanged."""

    value: torch.Tensor
    producers: list[_Call] = field(default_factory=list)


@dataclass(eq=False)
class _Call:
    name: str
    module: nn.Module
    start: int
    end: int = -1
    input: torch.Tensor | None = None
    output: _Tensor | None = None


class _Recorder:
    """Forward hooks on every module: each call's input and output, in execution order. Each hook hands a clone on,
    so in-place operations later in the model cannot change what was recorded; a module that returns its input or
    its last child's output unchanged joins that value's producers."""

    def __init__(self, module: nn.Module):
        self.module = module
        self.calls: list[_Call] = []
        self.counts: dict[str, int] = {}
        self._open: dict[int, list[_Call]] = {}
        self._known: dict[tuple[int, int], _Tensor] = {}
        self._kept: list[torch.Tensor] = []
        self._clock = itertools.count()
        self._handles = []

    def __enter__(self) -> _Recorder:
        for name, module in self.module.named_modules():
            self._handles.append(module.register_forward_pre_hook(self._pre(name)))
            self._handles.append(module.register_forward_hook(self._post()))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()

    def _pre(self, name: str):
        def hook(module: nn.Module, args: tuple) -> None:
            call = _Call(name, module, next(self._clock))
            first = args[0] if args and isinstance(args[0], torch.Tensor) else None
            if first is not None:
                known = self._known.get((id(first), first._version))
                call.input = known.value if known else first.detach().clone()
            self._open.setdefault(id(module), []).append(call)
            self.counts[name] = self.counts.get(name, 0) + 1

        return hook

    def _post(self):
        def hook(module: nn.Module, _args: tuple, output: object) -> object:
            call = self._open[id(module)].pop()
            call.end = next(self._clock)
            self.calls.append(call)
            if not isinstance(output, torch.Tensor):
                return None
            tensor = self._known.get((id(output), output._version)) or _Tensor(output.detach())
            tensor.producers.append(call)
            call.output = tensor
            handed = output.clone()
            self._kept.append(handed)
            self._known[(id(handed), handed._version)] = tensor
            return handed

        return hook


def find_layers(module: nn.Module, input_size: int, layout: str | None = None) -> FoundLayers:
    """The target layer, head, layer choices and pyramid of module, from one forward pass of a random
    input_size × input_size image. On a `meta` module only shapes are known: the head is then chosen by its shapes
    and a note says it is not checked. layout forces the layers' layout (nchw | tokens | nhwc); by default it is
    read off the outputs' shapes."""
    if layout is not None and layout not in LAYOUTS:
        raise CamError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    parameter = next(itertools.chain(module.parameters(), module.buffers()), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, input_size, input_size, generator=generator).to(device)
    was_training = module.training
    module.eval()
    try:
        try:
            with torch.no_grad(), _Recorder(module) as recorder:
                logits = module(x)
        except Exception as exc:  # noqa: BLE001 - any failure of the user's architecture becomes one message
            raise CamError(f"the model did not run on a {input_size}×{input_size} image ({type(exc).__name__}: "
                           f"{exc}); check the input size") from exc
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
            raise CamError("the model does not return one row of class scores per image (a (batch, classes) "
                           "tensor)")
        return _Finder(recorder, logits, device.type == "meta", layout).found()
    finally:
        module.train(was_training)


class _Finder:
    def __init__(self, recorder: _Recorder, logits: torch.Tensor, meta: bool, layout: str | None):
        self.calls = recorder.calls
        self.counts = recorder.counts
        self.logits = logits
        self.meta = meta
        self.layout = layout
        self.by_name = {call.name: call for call in self.calls if self.counts[call.name] == 1}
        self.spatial = [c for c in self.calls if c.output is not None and _orientation(c.output.value)]

    # ----------------------------------------------------------------------------------------------- overall

    def found(self) -> FoundLayers:
        tokens = self._is_token_model()
        if tokens or self.layout == "tokens":
            return self._token_model()
        return self._spatial_model()

    def _is_token_model(self) -> bool:
        last = max((c.end for c in self.spatial if not self._pooled(c.output)), default=-1)
        return any(_is_attention(c) and c.start > last for c in self.calls)

    def _token_model(self) -> FoundLayers:
        attention = [c for c in self.calls if _is_attention(c) and c.input is not None]
        norms = []
        for call in attention:
            norm = self._input_producer(call)
            if norm is not None and norm not in norms:
                norms.append(norm)
        if not norms:
            raise CamError("a transformer without a module before its attention (a norm) to read the map from; "
                           "its layers cannot be found automatically")
        target = norms[-1]
        head, head_note = self._head(self.by_name[target])
        notes = [f"a vision transformer: the map is read from its tokens at {target}, the input of the last "
                 "attention (after it the patch tokens no longer reach the class token)", head_note]
        return FoundLayers(target, head, tuple(norms[-TOKEN_LAYERS:]), (), "tokens", self.logits.shape[-1],
                           notes + self._meta_note())

    def _spatial_model(self) -> FoundLayers:
        orientation = self.layout or self._dominant_orientation()
        candidates = [c for c in self.spatial
                      if _orientation(c.output.value) == orientation and not self._pooled(c.output)
                      and min(_size(c.output.value, orientation)) > 1]
        for call in sorted(candidates, key=lambda c: c.end, reverse=True):
            target = self._name(call.output, orientation)
            if target is not None:
                break
        else:
            raise CamError("the model has no layer with a spatial (height × width) output before its pooling, so "
                           "no layer to read a class activation map from")
        target_call = self.by_name[target]
        head, head_note = self._head(target_call)
        pyramid = self._pyramid(target_call, orientation)
        layers = self._layers(target_call, pyramid, orientation)
        h, w = _size(target_call.output.value, orientation)
        notes = [f"target layer {target} ({h}×{w}, the last spatial output before the pooling)", head_note]
        if orientation == "nhwc":
            notes.append("its maps are channels-last (height, width, channels), as in Swin")
        return FoundLayers(target, head, layers, pyramid, orientation, self.logits.shape[-1],
                           notes + self._meta_note())

    def _meta_note(self) -> list[str]:
        return ["found on the meta device (shapes only): the head is chosen by its shapes, not checked against the "
                "logits"] if self.meta else []

    def _dominant_orientation(self) -> str:
        """The orientation of the model's stages: its outputs two levels deep at most (a ConvNeXt block's MLP runs
        channels-last inside a channels-first network)."""
        found = [_orientation(c.output.value) for c in self.spatial if c.name.count(".") <= 1]
        return max(("nchw", "nhwc"), key=found.count)

    def _pooled(self, tensor: _Tensor) -> bool:
        return any(_is_pool(call.module) for call in tensor.producers)

    # ------------------------------------------------------------------------------------------------ naming

    def _name(self, tensor: _Tensor, orientation: str | None) -> str | None:
        """The module to hook for tensor: its deepest single-call producer, raised to the enclosing module while
        that returns the same tensor and its children all work at the same resolution (layer4, not layer4.1; but
        features.18, not the whole features)."""
        producers = [c for c in tensor.producers
                     if c.name and self.counts[c.name] == 1 and not isinstance(c.module, PASSIVE)]
        if not producers:
            return None
        name = max(producers, key=lambda c: (c.name.count("."), -c.end)).name
        own = {c.name for c in producers}
        while "." in name:
            parent = name.rsplit(".", 1)[0]
            if parent not in own or not self._one_resolution(parent, orientation):
                break
            name = parent
        return name

    def _one_resolution(self, parent: str, orientation: str | None) -> bool:
        if orientation is None:
            return True
        prefix = parent + "."
        sizes = {_size(c.output.value, orientation) for c in self.calls
                 if c.name.startswith(prefix) and "." not in c.name[len(prefix):] and c.output is not None
                 and _orientation(c.output.value) == orientation}
        return len(sizes) <= 1

    def _input_producer(self, call: _Call) -> str | None:
        for tensor in {id(c.output): c.output for c in self.calls if c.output is not None}.values():
            if tensor.value is call.input:
                return self._name(tensor, None)
        return None

    # -------------------------------------------------------------------------------------------------- head

    def _head(self, target: _Call) -> tuple[tuple[str, ...], str]:
        """The steps from target's output to the logits, checked on this pass's values; () when none fits."""
        after = [c for c in self.calls if c.start > target.end and c.name]
        names = {c.name for c in after}
        top = sorted((c for c in after if not _has_ancestor(c.name, names)), key=lambda c: c.start)
        heads = [head for head in (self._bridged(target.output.value, steps) for steps in (top, self._expanded(top)))
                 if head is not None]
        heads.sort(key=lambda head: head.linear_classifier() is None)
        if heads:
            return tuple(heads[0].names), self._head_note(heads[0])
        return (), ("no head reproduces the logits from the target layer, so the model runs full passes: "
                    "Ablation-CAM and the masked-input methods pass each input through the whole network, and "
                    "vanilla CAM is not offered")

    def _expanded(self, top: list[_Call]) -> list[_Call]:
        """top with each step that is not a plain Sequential replaced by its children, in the order they ran."""
        steps = []
        for call in top:
            prefix = call.name + "."
            children = [c for c in self.calls if c.name.startswith(prefix) and "." not in c.name[len(prefix):]]
            steps.extend(sorted(children, key=lambda c: c.start) if children else [call])
        return steps

    def _bridged(self, start: torch.Tensor, steps: list[_Call]) -> Head | None:
        """A Head of steps, with gap / flatten / relu where the model did that between two modules, or None when a
        step ran more than once, was given something else than the step before returned, or the chain does not
        give the logits."""
        if any(self.counts[c.name] != 1 or c.input is None or c.output is None for c in steps):
            return None
        chain: list = []
        current = start
        for call in steps:
            bridge = self._bridge(current, call.input)
            if bridge is None:
                return None
            chain.extend((name, BUILTIN_STEPS[name]) for name in bridge)
            chain.append((call.name, call.module))
            current = call.output.value
        bridge = self._bridge(current, self.logits)
        if bridge is None:
            return None
        chain.extend((name, BUILTIN_STEPS[name]) for name in bridge)
        head = Head(chain)
        if not self.meta:
            with torch.no_grad():
                out = head(start)
            if out.shape != self.logits.shape or not _close(out, self.logits):
                return None
        return head

    def _bridge(self, value: torch.Tensor, wanted: torch.Tensor) -> tuple[str, ...] | None:
        for bridge in BRIDGES:
            if not bridge and value is wanted:
                return ()
            try:
                out = value
                for name in bridge:
                    out = BUILTIN_STEPS[name](out)
            except RuntimeError:
                continue
            if out.shape == wanted.shape and (self.meta or _close(out, wanted)):
                return bridge
        return None

    @staticmethod
    def _head_note(head: Head) -> str:
        steps = " → ".join(head.names)
        if head.linear_classifier() is not None:
            return f"head {steps}: global average pooling and a linear classifier, so every method is offered"
        return (f"head {steps}: not only pooling and a linear layer, so vanilla CAM is not offered (the other "
                "methods run the head alone)")

    # --------------------------------------------------------------------------------------- pyramid, layers

    def _pyramid(self, target: _Call, orientation: str) -> tuple[str, ...]:
        """One layer per resolution, shallow to deep, ending with target: at each resolution the last activation
        output (a linear bottleneck's signed output means little as a mask), else the last block output."""
        before = [c for c in self.spatial if c.end < target.end and _orientation(c.output.value) == orientation
                  and not self._pooled(c.output)]
        target_size = _size(target.output.value, orientation)
        sizes = []
        for call in before:
            size = _size(call.output.value, orientation)
            if size != target_size and min(size) > 1 and size not in sizes:
                sizes.append(size)
        levels = []
        for size in sizes[-(PYRAMID_LEVELS - 1):]:
            at_size = [c for c in before if _size(c.output.value, orientation) == size]
            ranked = sorted(at_size, key=lambda c: (_is_activation_output(c.output), bool(list(c.module.children())),
                                                    c.end), reverse=True)
            name = next((n for n in (self._name(c.output, orientation) for c in ranked) if n), None)
            if name is not None and name not in levels:
                levels.append(name)
        return (*levels, target.name)

    def _layers(self, target: _Call, pyramid: tuple[str, ...], orientation: str) -> tuple[str, ...]:
        """Layer choices: the pyramid's deeper levels, the block before target at its resolution, and target."""
        size = _size(target.output.value, orientation)
        blocks = [c for c in self.spatial if c.end < target.end and c.output is not target.output
                  and _orientation(c.output.value) == orientation and _size(c.output.value, orientation) == size
                  and list(c.module.children()) and not target.name.startswith(c.name + ".")]
        previous = next((n for n in (self._name(c.output, orientation)
                                     for c in sorted(blocks, key=lambda c: c.end, reverse=True)) if n), None)
        chosen = [*pyramid[-PYRAMID_LEVELS:-1], previous, target.name]
        ordered = sorted({n for n in chosen if n}, key=lambda n: self.by_name[n].end)
        return tuple(ordered)


def _orientation(value: torch.Tensor) -> str | None:
    """nchw or nhwc for a 4-D map of a square image (its two spatial sides are equal), None otherwise."""
    if value.dim() != 4:
        return None
    _, a, b, c = value.shape
    if b == c and a != b:
        return "nchw"
    if a == b and b != c:
        return "nhwc"
    return "nchw" if a == b == c else None


def _size(value: torch.Tensor, orientation: str) -> tuple[int, int]:
    if value.dim() != 4:
        return (0, 0)
    return (int(value.shape[2]), int(value.shape[3])) if orientation == "nchw" else (int(value.shape[1]),
                                                                                      int(value.shape[2]))


def _is_pool(module: nn.Module) -> bool:
    return isinstance(module, POOLS) or "pool" in type(module).__name__.lower()


def _is_activation_output(tensor: _Tensor) -> bool:
    return any(type(c.module).__name__.lower() in ACTIVATIONS for c in tensor.producers)


def _is_attention(call: _Call) -> bool:
    kind = type(call.module).__name__
    return isinstance(call.module, nn.MultiheadAttention) or kind.endswith("Attention")


def _has_ancestor(name: str, names: set[str]) -> bool:
    parts = name.split(".")
    return any(".".join(parts[:i]) in names for i in range(1, len(parts)))


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    scale = max(1.0, float(b.abs().max()))
    return bool(torch.allclose(a, b, rtol=1e-5, atol=1e-5 * scale))
