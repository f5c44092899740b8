"""Analysis: everything computed for one image on one model, kept so that a new method or class is cheap."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Callable, Hashable, Protocol, Sequence

import numpy as np
import torch
from PIL import Image

from cam_core.errors import CamError
from cam_core.inputs.channel_clusters import ChannelClusters, cluster_channels
from cam_core.inputs.concepts import Concepts, ConceptSpec, concept_maps, factorise
from cam_core.inputs.gradient_terms import BiasGradient, FullGradients, SecondOrder, class_score
from cam_core.inputs.input_perturbations import (
    InputScores,
    PerturbationSpec,
    input_picture,
    perturbation_plan,
    score_perturbations,
)
from cam_core.inputs.mask_scores import (
    AblationScores,
    MaskScores,
    MaskSpec,
    default_precision,
    score_masks,
)
from cam_core.inputs.perturbed import PathSpec, path_inputs
from cam_core.inputs.position_scores import PositionScores, PositionSpec, masked_copies
from cam_core.methods.common import gradcam_weights, kernel_component
from cam_core.models.layouts import Layout
from cam_core.models.specs import ModelSpec
from cam_core.passes.biases import BiasPass
from cam_core.passes.hooks import InputPass, LayerPass
from cam_core.passes.inference import Progress, batch_workers, chunks, pass_chunk, run_in_order
from cam_core.registry import (
    AttentionInputs,
    CamInputs,
    LayerInputs,
    Method,
    MethodCard,
    PathInputs,
    get_method,
)
from cam_core.render.saliency import blank_note, saliency_map
from cam_core.sharing.once import OnceMap

DEFAULT_BATCH = 32
DEFAULT_PRECISION = default_precision()



class ModelPasses(Protocol):
    """What an Analysis asks of its model: the passes it caches the results of, and the facts it checks requests
    against (an Explainer is one)."""

    default_layer: str
    labels: list[str]
    layout: Layout
    spec: ModelSpec

    def check_layer(self, name: str) -> None:
        """A CamError naming the valid layers when the model has no layer called name."""

    def pyramid(self) -> list[str]:
        """The model's default layers for multi-layer methods, shallow to deep."""

    def run(self, model_input: torch.Tensor, layers: list[str]) -> LayerPass:
        """One pass capturing the layers named as differentiable tensors."""

    def input_gradients(self, model_input: torch.Tensor, guided: bool) -> InputPass:
        """One pass whose graph reaches the input, through the guided copy when guided."""

    def guided_activations(self) -> int:
        """How many activation modules guided backpropagation guides."""

    def fast_model(self) -> torch.nn.Module:
        """The private inference copy for batches of masked inputs."""

    def ablate(
        self, model_input: torch.Tensor, layer: str, activations: torch.Tensor, batch_size: int,
        progress: Progress | None,
    ) -> tuple[torch.Tensor, bool]:
        """(channels, classes) logits with each channel of layer zeroed in turn, and whether the head alone ran."""

    def class_weights(self, layer: str) -> torch.Tensor:
        """The (classes, channels) weights of a pooling → linear head at layer."""

    def replace_layer(
        self, model_input: torch.Tensor, layer: str, count: int, maps: Callable[[slice], torch.Tensor],
        batch_size: int, progress: Progress | None, partial: Callable[[torch.Tensor], None] | None = None,
    ) -> tuple[torch.Tensor, bool]:
        """(count, classes) logits with layer's output replaced by each of maps in turn, and whether the head alone
        ran; partial(logits so far) after each batch of full passes."""

    def unmet(self, card: MethodCard) -> str:
        """Why the model cannot run card's method, or "" when it has what the card requires."""

    def attention_pass(self, model_input: torch.Tensor) -> LayerPass:
        """One pass capturing every block's attention probabilities in the graph to the logits."""

    def bias_pass(self, model_input: torch.Tensor) -> BiasPass:
        """One pass whose graph reaches the input, capturing the output of every biased layer."""

    def differentiable_twice(self) -> bool:
        """Whether the graphs of run's passes have second derivatives."""

    def run_unfused(self, model_input: torch.Tensor, layers: list[str]) -> LayerPass:
        """As run, with a graph that can be differentiated twice (attention computed explicitly)."""


@dataclass(frozen=True)
class CamResult:
    """One method's map for one class at one layer; size is the image's (height, width), at which saliency is
    drawn the first time it is read (a grid drawn at its shown size never needs it)."""

    method: str
    target: int
    label: str
    probability: float
    layer: str
    sign: str
    raw: np.ndarray
    size: tuple[int, int]
    weights: np.ndarray | None
    seconds: float
    note: str = ""
    layers: tuple[str, ...] = ()
    rgb: np.ndarray | None = None
    params: dict = field(default_factory=dict)

    @cached_property
    def saliency(self) -> np.ndarray:
        """The map at the image's size, min-max scaled to [0, 1] (zeros when blank)."""
        return saliency_map(self.raw, self.size, self.sign)[0]

    def saliency_at(self, size: tuple[int, int]) -> np.ndarray:
        """The map at size=(height, width) (a picture's shown size), min-max scaled to [0, 1]."""
        return self.saliency if tuple(size) == tuple(self.size) else saliency_map(self.raw, size, self.sign)[0]


class _LayerState:
    """A layer's activations for this image, its graph to the logits, and the gradients asked for so far."""

    def __init__(self, logits: torch.Tensor, activation: torch.Tensor, values: torch.Tensor, graph_bytes: int):
        self.logits = logits
        self.activation = activation
        self.values = values
        self.graph_bytes = graph_bytes
        self.gradients: OnceMap[torch.Tensor] = OnceMap()

    @property
    def nbytes(self) -> int:
        return self.graph_bytes + tensor_bytes(self.values)


class _BatchState:
    """A batch of altered inputs run in chunks: per chunk, logits attached to the graph above the layer and the
    layer's output; the target-class gradients asked for so far."""

    def __init__(self, chunks: list[tuple[torch.Tensor, torch.Tensor]], values: torch.Tensor, graph_bytes: int):
        self.chunks = chunks
        self.values = values
        self.graph_bytes = graph_bytes
        self.gradients: OnceMap[torch.Tensor] = OnceMap()

    @property
    def nbytes(self) -> int:
        return self.graph_bytes + tensor_bytes(self.values)


class _InputState:
    """A pass whose graph reaches the input (of the guided copy), and the input gradients asked for so far."""

    def __init__(self, logits: torch.Tensor, leaf: torch.Tensor, graph_bytes: int):
        self.logits = logits
        self.leaf = leaf
        self.graph_bytes = graph_bytes
        self.gradients: OnceMap[torch.Tensor] = OnceMap()

    @property
    def nbytes(self) -> int:
        return self.graph_bytes


def tensor_bytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def _by_pass(states: Sequence[_LayerState]) -> list[list[_LayerState]]:
    """states grouped by the pass that captured them (the logits they share)."""
    groups: dict[int, list[_LayerState]] = {}
    for state in states:
        groups.setdefault(id(state.logits), []).append(state)
    return list(groups.values())


class _AttentionState:
    """Every block's attention probabilities for this image, attached to the graph to the logits, and the gradients
    with respect to them asked for so far (one tuple per class)."""

    def __init__(self, logits: torch.Tensor, attached: tuple[torch.Tensor, ...], graph_bytes: int):
        self.logits = logits
        self.attached = attached
        self.values = tuple(a.detach()[0] for a in attached)
        self.graph_bytes = graph_bytes
        self.gradients: OnceMap[tuple[torch.Tensor, ...]] = OnceMap()

    @property
    def nbytes(self) -> int:
        return self.graph_bytes + sum(tensor_bytes(v) for v in self.values)


class _FullState:
    """FullGrad's pass (graph to the input, every biased layer's output) and the classes' gradients so far."""

    def __init__(self, found: BiasPass):
        self.found = found
        self.gradients: OnceMap[FullGradients] = OnceMap()

    @property
    def nbytes(self) -> int:
        return self.found.graph_bytes


class Analysis:
    """The per-image cache: logits and activations from one pass; gradients per (class, layer) on demand.

    Threads may share an Analysis: each cached quantity is computed once, by the first thread that asks, while
    threads asking for other quantities go on (see cam_core.sharing for the lock order). `nbytes` is published as
    the Analysis grows, so the cache can read it without waiting.
    """

    def __init__(
        self, explainer: ModelPasses, image: Image.Image, key: str, model_input: torch.Tensor,
        on_grow: Callable[[], None] = lambda: None,
    ):
        self.explainer = explainer
        self._on_grow = on_grow
        self.image = image
        self.key = key
        self.input = model_input
        self._bytes_lock = threading.Lock()
        self.nbytes = image.width * image.height * len(image.getbands()) + tensor_bytes(model_input)
        self._layer_lock = threading.Lock()
        self._layers: dict[str, _LayerState] = {}
        self._clusters: OnceMap[ChannelClusters] = OnceMap()
        self._mask_scores: OnceMap[MaskScores] = OnceMap()
        self._ablations: OnceMap[AblationScores] = OnceMap()
        self._paths: OnceMap[_BatchState] = OnceMap()
        self._guided: OnceMap[_InputState] = OnceMap()
        self._input_scores: OnceMap[InputScores] = OnceMap()
        self._full: OnceMap[_FullState] = OnceMap()
        self._second_order: OnceMap[SecondOrder] = OnceMap()
        self._unfused: OnceMap[_LayerState] = OnceMap()
        self._attention: OnceMap[_AttentionState] = OnceMap()
        self._positions: OnceMap[PositionScores] = OnceMap()
        self._concepts: OnceMap[Concepts] = OnceMap()
        self._kernel_components: OnceMap[torch.Tensor] = OnceMap()
        self._kept: OnceMap[object] = OnceMap()
        first = self._layer(explainer.default_layer)
        self.logits = first.logits.detach()[0]
        self.probabilities = torch.softmax(self.logits, dim=0)

    @property
    def size(self) -> tuple[int, int]:
        """The original image's (height, width)."""
        return self.image.height, self.image.width

    def _grew(self, part: object) -> None:
        """Count a newly cached part (anything with nbytes, or a tensor) in the published size, and tell whoever
        keeps this Analysis (an Explainer's cache trims itself to its bound)."""
        added = tensor_bytes(part) if isinstance(part, torch.Tensor) else int(part.nbytes)
        with self._bytes_lock:
            self.nbytes += added
        self._on_grow()

    def top_k(self, k: int = 5) -> list[tuple[int, str, float]]:
        """The k most probable classes as (class index, label, probability)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise CamError(f"k must be a whole number between 1 and {self.logits.numel()}, not {k!r}")
        k = max(1, min(int(k), self.logits.numel()))
        probs, indices = torch.topk(self.probabilities, k)
        labels = self.explainer.labels
        return [(int(i), labels[int(i)], float(p)) for p, i in zip(probs, indices, strict=True)]

    def comparison_class(self, target: int, second: int | None = None) -> int:
        """The class a map of target is compared with: second when given (and not target), else the top class, or
        the second most probable where target is the top class."""
        if second is not None and second != target:
            return int(second)
        ranked = self.top_k(2)
        return ranked[1][0] if ranked[0][0] == target else ranked[0][0]

    def target(self, target: int | None) -> int:
        """target, checked against the label set; None means the top-1 class."""
        if target is None:
            return int(torch.argmax(self.logits))
        if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
            raise CamError(f"target class must be an integer, not {target!r}")
        if not 0 <= int(target) < self.logits.numel():
            raise CamError(f"target class {target} is out of range 0..{self.logits.numel() - 1}")
        return int(target)

    def _layer(self, layer: str) -> _LayerState:
        return self._stack([layer])[0]

    def _stack(self, layers: Sequence[str]) -> list[_LayerState]:
        """The states of layers; those not yet cached come from one shared pass (the graph is counted once)."""
        if any(name not in self._layers for name in layers):
            with self._layer_lock:
                missing = [name for name in dict.fromkeys(layers) if name not in self._layers]
                if missing:
                    result = self.explainer.run(self.input, missing)
                    for position, name in enumerate(missing):
                        activation = result.activations[name]
                        values = self.explainer.layout.to_map(activation.detach())[0]
                        state = _LayerState(result.logits, activation, values,
                                            result.graph_bytes if position == 0 else 0)
                        self._grew(state)
                        self._layers[name] = state
        return [self._layers[name] for name in layers]

    def activations(self, layer: str | None = None) -> torch.Tensor:
        """The (C, h, w) activations at layer (default: the model's target layer)."""
        return self._layer(layer or self.explainer.default_layer).values

    def gradients(self, target: int | None = None, layer: str | None = None) -> torch.Tensor:
        """The (C, h, w) gradient of target's logit at layer; a backward through the layers after it, once."""
        return self.stack_gradients(target, [layer or self.explainer.default_layer])[0]

    def stack_gradients(self, target: int | None, layers: Sequence[str]) -> list[torch.Tensor]:
        """The (C, h, w) gradients of target's logit at each of layers, once per (layer, class): the layers not yet
        asked for this class that share a pass get theirs from one backward (through the layers after the shallowest
        of them)."""
        states = self._stack(layers)
        target = self.target(target)
        missing = [state for state in dict.fromkeys(states) if target not in state.gradients]
        for group in _by_pass(missing):
            for state, grad in zip(group, self._backward(target, group), strict=True):
                state.gradients.get(target, lambda grad=grad: grad, self._grew)
        return [state.gradients.get(target, lambda state=state: self._backward(target, [state])[0], self._grew)
                for state in states]

    def _backward(self, target: int, states: Sequence[_LayerState]) -> list[torch.Tensor]:
        """target's (C, h, w) gradient at each of states' layers (all captured in one pass): one backward."""
        grads = torch.autograd.grad(states[0].logits[0, target], [state.activation for state in states],
                                    retain_graph=True, allow_unused=True)
        return [torch.zeros_like(state.values) if grad is None else self.explainer.layout.to_map(grad)[0]
                for state, grad in zip(states, grads, strict=True)]

    def path(self, spec: PathSpec, target: int | None = None) -> PathInputs:
        """Activations and target-class gradients at spec.layer for spec's altered inputs: one batched pass per
        spec, a backward through the layers after spec.layer per class."""
        target = self.target(target)

        def run() -> _BatchState:
            rows = path_inputs(self.input, spec)
            found: list[LayerPass] = []
            parts = chunks(rows.shape[0], pass_chunk(self.explainer.fast_model()))
            run_in_order(parts, lambda part: self.explainer.run(rows[part], [spec.layer]),
                         lambda _part, result: found.append(result), batch_workers())
            leaves = [(result.logits, result.activations[spec.layer]) for result in found]
            maps = torch.cat([self.explainer.layout.to_map(leaf.detach()) for _, leaf in leaves])
            return _BatchState(leaves, maps, sum(result.graph_bytes for result in found))

        state = self._paths.get(spec, run, self._grew)

        def backward() -> torch.Tensor:
            score = torch.stack([logits[:, target].sum() for logits, _ in state.chunks]).sum()
            leaves = [leaf for _, leaf in state.chunks]
            grads = torch.autograd.grad(score, leaves, retain_graph=True, allow_unused=True)
            return self.explainer.layout.to_map(torch.cat(
                [torch.zeros_like(leaf) if grad is None else grad for leaf, grad in zip(leaves, grads, strict=True)]))

        values, grads = state.values, state.gradients.get(target, backward, self._grew)
        if spec.has_baseline:
            return PathInputs(values[1:], grads[1:], values[0])
        return PathInputs(values, grads)

    def guided_gradients(self, target: int | None = None) -> torch.Tensor:
        """The (3, H, W) guided-backpropagation gradient of target's logit at the model input (the guided copy's
        graph is kept, so another class costs one backward)."""
        target = self.target(target)

        def run() -> _InputState:
            found = self.explainer.input_gradients(self.input, guided=True)
            return _InputState(found.logits, found.input, found.graph_bytes)

        state = self._guided.get(None, run, self._grew)

        def backward() -> torch.Tensor:
            (grad,) = torch.autograd.grad(state.logits[0, target], state.leaf, retain_graph=True)
            return grad[0]

        return state.gradients.get(target, backward, self._grew)

    def _attention_state(self) -> _AttentionState:
        def run() -> _AttentionState:
            found = self.explainer.attention_pass(self.input)
            attached = tuple(found.activations.values())
            return _AttentionState(found.logits, attached, found.graph_bytes)

        return self._attention.get(None, run, self._grew)

    def attention(self) -> tuple[torch.Tensor, ...]:
        """Every block's (heads, tokens, tokens) attention probabilities, first block to last: one pass, once."""
        return self._attention_state().values

    def attention_gradients(self, target: int | None = None) -> tuple[torch.Tensor, ...]:
        """The gradient of target's logit with respect to each block's attention probabilities, (heads, tokens,
        tokens) each: one backward per class through the kept graph."""
        state = self._attention_state()
        target = self.target(target)

        def backward() -> tuple[torch.Tensor, ...]:
            grads = torch.autograd.grad(state.logits[0, target], state.attached, retain_graph=True)
            return tuple(grad[0] for grad in grads)

        def count(grads: tuple[torch.Tensor, ...]) -> None:
            for grad in grads:
                self._grew(grad)

        return state.gradients.get(target, backward, count)

    def attention_inputs(self, target: int | None = None, gradients: bool = False) -> AttentionInputs:
        """The attention probabilities (and target's gradients with respect to them) with the token layout."""
        values = self.attention()
        prefix = self.explainer.layout.prefix
        patches = values[0].shape[-1] - prefix
        grid = self.explainer.layout.grid
        if grid is None or grid[0] * grid[1] != patches:
            side = round(patches**0.5)
            grid = (side, side)
        return AttentionInputs(values, prefix, grid, self.attention_gradients(target) if gradients else None)

    def full_gradients(self, target: int | None = None) -> FullGradients:
        """target's gradient at the model input and at the output of every biased layer (FullGrad): one pass that
        keeps its graph down to the input, once; one backward per class."""
        target = self.target(target)
        state = self._full.get(None, lambda: _FullState(self.explainer.bias_pass(self.input)), self._grew)
        found = state.found

        def backward() -> FullGradients:
            grads = torch.autograd.grad(found.logits[0, target], [found.input, *found.outputs], retain_graph=True,
                                        allow_unused=True)
            tensors = [torch.zeros_like(t) if g is None else g for t, g in zip([found.input, *found.outputs], grads,
                                                                              strict=True)]
            layers = tuple(BiasGradient(name, bias, grad[0])
                           for name, bias, grad in zip(found.names, found.biases, tensors[1:], strict=True))
            return FullGradients(found.input.detach()[0], tensors[0][0], layers)

        return state.gradients.get(target, backward, self._grew)

    def compared_gradients(self, classes: Sequence[int], layer: str | None = None) -> torch.Tensor:
        """The (n, C, h, w) gradients of the classes' logits at layer (each class's backward once, shared with every
        method that reads it)."""
        return torch.stack([self.gradients(int(c), layer) for c in classes])

    def second_order(self, target: int | None = None, layer: str | None = None, score: str = "ReST") -> SecondOrder:
        """The gradient g of target's score (cam_core.inputs.gradient_terms.SCORES) at layer and the Hessian-vector
        product H·A with the layer's activations A: a backward that keeps its own graph and a second backward through
        it, once per (layer, class, score)."""
        layer = layer or self.explainer.default_layer
        state = self._twice_differentiable(layer)
        target = self.target(target)
        score_of = class_score(score)
        to_map = self.explainer.layout.to_map

        def backward() -> SecondOrder:
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(score_of(state.logits, target), state.activation, retain_graph=True,
                                              create_graph=True, allow_unused=True)
                if grad is None:
                    zeros = torch.zeros_like(state.values)
                    return SecondOrder(score, zeros, zeros)
                product = None
                if grad.requires_grad:
                    (product,) = torch.autograd.grad(grad, state.activation, grad_outputs=state.activation.detach(),
                                                     retain_graph=True, allow_unused=True)
            gradients = to_map(grad.detach())[0]
            return SecondOrder(score, gradients,
                               torch.zeros_like(gradients) if product is None else to_map(product.detach())[0])

        return self._second_order.get((layer, target, score), backward, self._grew)

    def _twice_differentiable(self, layer: str) -> _LayerState:
        """The layer's state with a graph above it that has second derivatives: the cached one, or, where the model
        has attention blocks (whose fused kernel has none), that of a pass of its own, once per layer."""
        if self.explainer.differentiable_twice():
            return self._layer(layer)

        def run() -> _LayerState:
            result = self.explainer.run_unfused(self.input, [layer])
            activation = result.activations[layer]
            return _LayerState(result.logits, activation, self.explainer.layout.to_map(activation.detach())[0],
                               result.graph_bytes)

        return self._unfused.get(layer, run, self._grew)

    def clusters(self, k: int, rows: str = "raw", layer: str | None = None, seed: int = 0) -> ChannelClusters:
        """k-means clusters of the channels at layer (rows "raw" or "l2"), computed once per (layer, k, rows, seed)."""
        layer = layer or self.explainer.default_layer
        activations = self.activations(layer)
        return self._clusters.get(
            (layer, int(k), rows, int(seed)), lambda: cluster_channels(activations, int(k), rows, int(seed)), self._grew
        )

    def mask_scores(
        self,
        spec: MaskSpec,
        batch_size: int = DEFAULT_BATCH,
        progress: Progress | None = None,
        partial: Callable[[MaskScores], None] | None = None,
        precision: str = DEFAULT_PRECISION,
    ) -> MaskScores:
        """Logits of every masked input of spec (all classes at once), computed once per (spec, precision). A spec
        with a target weights the channels by that class's mean gradient first (k-means groups still come from the
        plain activations, so they are shared by every class).

        The masks are split into batches of batch_size in a fixed order, so the scores do not depend on what else
        runs meanwhile."""
        plain = self.activations(spec.layer)

        def run() -> MaskScores:
            activations = plain
            if spec.target is not None:
                activations = plain * gradcam_weights(self.gradients(spec.target, spec.layer))[:, None, None]
            known = (
                torch.from_numpy(self.clusters(spec.k, spec.rows, spec.layer, spec.seed).labels)
                if spec.grouping == "kmeans"
                else None
            )
            return score_masks(
                self.explainer.fast_model(), self.input, activations, spec, batch_size, progress, partial,
                precision, known,
            )

        return self._mask_scores.get((spec, precision), run, self._grew)

    def has_mask_scores(self, spec: MaskSpec, precision: str = DEFAULT_PRECISION) -> bool:
        """Whether spec's score matrix is already computed (so using it is instant)."""
        return (spec, precision) in self._mask_scores

    def input_scores(
        self,
        spec: PerturbationSpec,
        batch_size: int = DEFAULT_BATCH,
        progress: Progress | None = None,
        partial: Callable[[InputScores], None] | None = None,
        precision: str = DEFAULT_PRECISION,
    ) -> InputScores:
        """Logits of every perturbed model input of spec (all classes at once), computed once per (spec,
        precision), in batches of batch_size in a fixed order (so the scores do not depend on what else runs)."""
        prep = self.explainer.spec.preprocessing

        def run() -> InputScores:
            plan = perturbation_plan(spec, self.input.shape[-1], lambda: input_picture(self.input, prep.mean, prep.std))
            return score_perturbations(self.explainer.fast_model(), self.input, spec, plan, batch_size, progress,
                                       partial, precision)

        return self._input_scores.get((spec, precision), run, self._grew)

    def ablation_scores(
        self, layer: str | None = None, batch_size: int = 128, progress: Progress | None = None
    ) -> AblationScores:
        """Logits with each channel of layer zeroed in turn, all classes at once: through the head alone at the
        model's split layer, by full forward passes (one per channel) elsewhere."""
        layer = layer or self.explainer.default_layer
        activations = self.activations(layer)

        def run() -> AblationScores:
            started = time.perf_counter()
            logits, head_only = self.explainer.ablate(self.input, layer, activations, batch_size, progress)
            return AblationScores(logits, self._layer(layer).logits.detach()[0], head_only,
                                  time.perf_counter() - started)

        return self._ablations.get(layer, run, self._grew)

    def position_scores(
        self, spec: PositionSpec, batch_size: int = DEFAULT_BATCH, progress: Progress | None = None,
        partial: Callable[[PositionScores], None] | None = None,
    ) -> PositionScores:
        """Logits of the layer's map kept at one position at a time (spec's mask), all classes at once: h·w passes
        through the head alone at the model's split layer, h·w full passes elsewhere; once per spec. During full
        passes partial(scores) receives the scores so far after each batch, the positions not yet run at the mean
        logits of those done."""
        activations = self.activations(spec.layer)
        height, width = activations.shape[1:]
        started = time.perf_counter()

        def so_far(done: torch.Tensor) -> None:
            rest = done.mean(dim=0, keepdim=True).expand(height * width - len(done), -1)
            partial(PositionScores(torch.cat([done, rest]), False, time.perf_counter() - started))

        def run() -> PositionScores:
            logits, head_only = self.explainer.replace_layer(
                self.input, spec.layer, height * width, lambda part: masked_copies(activations, part, spec.mask),
                batch_size, progress, so_far if partial else None)
            return PositionScores(logits, head_only, time.perf_counter() - started)

        return self._positions.get(spec, run, self._grew)

    def kernel_component(self, layer: str | None = None, kernel: str = "sigmoid") -> torch.Tensor:
        """The (h·w,) projections of layer's positions on the first kernel-PCA component of its channel-centred
        activations (as KPCA-CAM reads it), once per (layer, kernel): it reads no class."""
        layer = layer or self.explainer.default_layer
        activations = self.activations(layer)
        return self._kernel_components.get((layer, kernel), lambda: kernel_component(activations, kernel), self._grew)

    def kept(self, key: Hashable, compute: Callable[[], object]) -> object:
        """compute()'s result, once per key (a method's class-independent step: its id and every setting it reads)."""
        return self._kept.get(key, compute, self._grew)

    def concepts(self, spec: ConceptSpec, batch_size: int = DEFAULT_BATCH, progress: Progress | None = None
                 ) -> Concepts:
        """spec.k concepts of spec.layer by NMF (seeded by spec.seed) and each concept's logits with its channel
        vector at every position (through the head alone at the split layer, k full passes elsewhere); once per spec,
        shared by every class."""
        activations = self.activations(spec.layer)
        height, width = activations.shape[1:]

        def run() -> Concepts:
            maps, vectors, error, note = factorise(activations, spec)
            logits, head_only = self.explainer.replace_layer(
                self.input, spec.layer, spec.k, lambda part: concept_maps(vectors, part, height, width), batch_size,
                progress)
            return Concepts(spec, maps, vectors, logits, head_only, error, note)

        return self._concepts.get(spec, run, self._grew)

    def cam(
        self,
        method: str,
        target: int | None = None,
        layer: str | None = None,
        sign: str = "positive",
        batch_size: int = DEFAULT_BATCH,
        progress: Progress | None = None,
        partial: Callable[[CamResult], None] | None = None,
        precision: str = DEFAULT_PRECISION,
        layers: Sequence[str] | None = None,
        **params: object,
    ) -> CamResult:
        """method's map for target (default: top-1 class) at layer (default: the model's target layer).

        Multi-layer methods take layers (shallow to deep) instead: Layer-CAM fuses them when given two or more;
        Zoom-CAM and Poly-CAM default to the model's pyramid (one layer per resolution).

        params are the method's own (see its card). For the methods that score masked inputs: batch_size and
        precision ("float32", or "bfloat16" where the CPU has it) steer the passes, progress(done, total) follows
        them, and partial(result) receives the map so far after each batch (masks not yet run count as the baseline).
        """
        started = time.perf_counter()
        chosen = get_method(method)
        card = chosen.card
        params = card.resolve_params(params)
        unmet = self.explainer.unmet(card)
        if unmet:
            raise CamError(unmet)
        if sign == "negative" and not card.signed:
            raise CamError(f"{card.name} has no negative map: its map is never negative (a gradient magnitude, or "
                           "evidence for the class alone)")
        stack = self._stack_layers(card, layer, layers)
        layer = stack[-1]
        self._stack(stack)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise CamError(f"batch_size must be a whole number of at least 1, not {batch_size!r}")
        target = self.target(target)
        state = self._layer(layer)
        card.check_channels(params, state.values.shape[0], layer)
        needs = card.needs
        guided = "guided_gradients" in needs
        compared = card.compared_classes(self.logits, target, params) if "compared_gradients" in needs else ()
        grads = self.stack_gradients(target, stack) if "gradients" in needs else [None] * len(stack)
        inputs = CamInputs(
            activations=state.values,
            target=target,
            logits=self.logits,
            gradients=grads[-1],
            class_weights=self.explainer.class_weights(layer) if "class_weights" in needs else None,
            ablation=self.ablation_scores(layer, progress=progress) if "ablation_scores" in needs else None,
            path=self.path(card.path_spec(layer, params), target) if "path" in needs else None,
            stack=tuple(LayerInputs(name, self.activations(name), grad)
                        for name, grad in zip(stack, grads, strict=True)) if "layer_stack" in needs else (),
            input_gradients=self.guided_gradients(target) if guided else None,
            guided_activations=self.explainer.guided_activations() if guided else 0,
            full_gradients=self.full_gradients(target) if "full_gradients" in needs else None,
            compared=compared,
            compared_gradients=self.compared_gradients(compared, layer) if compared else None,
            second_order=self.second_order(target, layer, params["score"]) if "second_order" in needs else None,
            attention=self.attention_inputs(target, "attention_gradients" in needs) if "attention" in needs else None,
            concepts=self.concepts(card.concept_spec(layer, params), batch_size, progress)
            if "concepts" in needs else None,
            kernel_component=self.kernel_component(layer, params["kernel"]) if "kernel_component" in needs else None,
            kept=self.kept,
        )
        if "mask_scores" in needs and "layer_stack" in needs:
            inputs = replace(inputs, stack=tuple(
                replace(item, mask_scores=self.mask_scores(
                    card.mask_spec(item.layer, params, target), batch_size, progress, precision=precision))
                for item in inputs.stack
            ))
        elif "mask_scores" in needs:
            spec = card.mask_spec(layer, params, target)

            def show_partial(scores: MaskScores) -> None:
                partial(self._result(chosen, replace(inputs, mask_scores=scores), params, layer, sign, started))

            scores = self.mask_scores(spec, batch_size, progress, show_partial if partial else None, precision)
            inputs = replace(inputs, mask_scores=scores)
        if "position_scores" in needs:

            def show_positions(scores: PositionScores) -> None:
                partial(self._result(chosen, replace(inputs, position_scores=scores), params, layer, sign, started))

            positions = self.position_scores(card.position_spec(layer, params), batch_size, progress,
                                             show_positions if partial else None)
            inputs = replace(inputs, position_scores=positions)
        if "input_scores" in needs:

            def show_input_partial(scores: InputScores) -> None:
                partial(self._result(chosen, replace(inputs, input_scores=scores), params, layer, sign, started))

            inputs = replace(inputs, input_scores=self.input_scores(
                card.input_spec(params), batch_size, progress, show_input_partial if partial else None, precision))
        return self._result(chosen, inputs, params, layer, sign, started)

    def _stack_layers(self, card: MethodCard, layer: str | None, layers: Sequence[str] | None) -> list[str]:
        """The layers a call works on, shallow to deep (one layer for single-layer methods)."""
        if layers is not None and not isinstance(layers, (str, bytes)):
            layers = list(layers)
        elif layers is not None:
            layers = [layers]
        for name in [*(layers or []), *([] if layer is None else [layer])]:
            if not isinstance(name, str):
                raise CamError(f"a layer is given by its name, such as {self.explainer.default_layer}, not {name!r}")
        if layers:
            if not card.multi_layer and len(layers) > 1:
                raise CamError(f"{card.name} works on one layer; give layer= instead of {len(layers)} layers")
            if len(set(layers)) != len(layers):
                raise CamError(f"layers must be different, not {', '.join(layers)}")
            for name in layers:
                self.explainer.check_layer(name)
            return layers
        if card.multi_layer and card.pyramid_by_default and layer is None:
            return self.explainer.pyramid()
        return [layer or self.explainer.default_layer]

    def _result(
        self, chosen: Method, inputs: CamInputs, params: dict, layer: str, sign: str, started: float
    ) -> CamResult:
        """Run the method's arithmetic on prepared inputs and package the map."""
        with torch.no_grad():
            output = chosen.compute(inputs, **chosen.card.method_params(params))
            note = blank_note(output.raw, sign)
        if inputs.gradients is not None and not torch.any(inputs.gradients):
            note = f"the gradient of class {inputs.target} at {layer} is zero everywhere, so the map is blank"
            if self.explainer.layout.prefix:
                note += (
                    " (only the class token reaches the head: after the last block's attention the patch tokens "
                    "no longer feed it, so pick a layer at or before that attention, such as "
                    f"{self.explainer.default_layer})"
                )
        return CamResult(
            method=chosen.card.id,
            target=inputs.target,
            label=self.explainer.labels[inputs.target],
            probability=float(self.probabilities[inputs.target]),
            layer=layer,
            sign=sign,
            raw=output.raw.detach().float().numpy(),
            size=self.size,
            weights=None if output.weights is None else output.weights.detach().float().numpy(),
            seconds=time.perf_counter() - started,
            note="; ".join(n for n in (output.note, note) if n),
            layers=tuple(item.layer for item in inputs.stack) or (layer,),
            rgb=None if output.rgb is None else output.rgb.detach().float().numpy(),
            params=params,
        )
