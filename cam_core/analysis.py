"""Analysis: everything computed for one image on one model, kept so that a new method or class is cheap."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from .clusters import ChannelClusters, cluster_channels
from .errors import CamError
from .maps import saliency_map
from .registry import CamInputs, get_method

if TYPE_CHECKING:
    from .explainer import Explainer


@dataclass(frozen=True)
class CamResult:
    """One method's map for one class at one layer."""

    method: str
    target: int
    label: str
    probability: float
    layer: str
    sign: str
    raw: np.ndarray
    saliency: np.ndarray
    weights: np.ndarray | None
    seconds: float
    note: str = ""


class _LayerState:
    """A layer's activations for this image, its graph to the logits, and the gradients asked for so far."""

    def __init__(self, logits: torch.Tensor, activation: torch.Tensor, graph_bytes: int):
        self.logits = logits
        self.activation = activation
        self.values = activation.detach()[0]
        self.graph_bytes = graph_bytes
        self.gradients: dict[int, torch.Tensor] = {}

    @property
    def nbytes(self) -> int:
        tensors = [self.values, *self.gradients.values()]
        return self.graph_bytes + sum(t.numel() * t.element_size() for t in tensors)


class Analysis:
    """The per-image cache: logits and activations from one pass; gradients per (class, layer) on demand."""

    def __init__(self, explainer: Explainer, image: Image.Image, key: str, model_input: torch.Tensor):
        self.explainer = explainer
        self.image = image
        self.key = key
        self.input = model_input
        self._lock = threading.RLock()
        self._layers: dict[str, _LayerState] = {}
        self._clusters: dict[tuple[str, int, str, int], ChannelClusters] = {}
        first = self._layer(explainer.default_layer)
        self.logits = first.logits.detach()[0]
        self.probabilities = torch.softmax(self.logits, dim=0)

    @property
    def size(self) -> tuple[int, int]:
        """The original image's (height, width)."""
        return self.image.height, self.image.width

    @property
    def nbytes(self) -> int:
        with self._lock:
            layers = sum(state.nbytes for state in self._layers.values())
            return self.input.numel() * 4 + layers + sum(c.nbytes for c in self._clusters.values())

    def top_k(self, k: int = 5) -> list[tuple[int, str, float]]:
        """The k most probable classes as (class index, label, probability)."""
        k = max(1, min(int(k), self.logits.numel()))
        probs, indices = torch.topk(self.probabilities, k)
        labels = self.explainer.labels
        return [(int(i), labels[int(i)], float(p)) for p, i in zip(probs, indices)]

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
        with self._lock:
            state = self._layers.get(layer)
            if state is None:
                module = self.explainer.model.layer(layer)
                result = self.explainer.run(self.input, {layer: module})
                state = _LayerState(result.logits, result.activations[layer], result.graph_bytes)
                self._layers[layer] = state
            return state

    def activations(self, layer: str | None = None) -> torch.Tensor:
        """The (C, h, w) activations at layer (default: the model's target layer)."""
        return self._layer(layer or self.explainer.default_layer).values

    def gradients(self, target: int | None = None, layer: str | None = None) -> torch.Tensor:
        """The (C, h, w) gradient of target's logit at layer; a backward through the layers after it, once."""
        state = self._layer(layer or self.explainer.default_layer)
        target = self.target(target)
        with self._lock:
            if target not in state.gradients:
                (grad,) = torch.autograd.grad(
                    state.logits[0, target], state.activation, retain_graph=True, allow_unused=True
                )
                state.gradients[target] = torch.zeros_like(state.values) if grad is None else grad[0]
            return state.gradients[target]

    def clusters(self, k: int, rows: str = "raw", layer: str | None = None, seed: int = 0) -> ChannelClusters:
        """k-means clusters of the channels at layer (rows "raw" or "l2"), computed once per (layer, k, rows, seed)."""
        layer = layer or self.explainer.default_layer
        key = (layer, int(k), rows, int(seed))
        activations = self.activations(layer)
        with self._lock:
            if key not in self._clusters:
                self._clusters[key] = cluster_channels(activations, int(k), rows, int(seed))
            found = self._clusters[key]
        self.explainer.cache.trim()
        return found

    def cam(
        self,
        method: str,
        target: int | None = None,
        layer: str | None = None,
        sign: str = "positive",
        **params: object,
    ) -> CamResult:
        """method's map for target (default: top-1 class) at layer (default: the model's target layer)."""
        started = time.perf_counter()
        chosen = get_method(method)
        card = chosen.card
        known = {p.name for p in card.params}
        unknown = sorted(set(params) - known)
        if unknown:
            valid = ", ".join(sorted(known)) or "none"
            raise CamError(f"method {method} has no parameter {', '.join(unknown)}; its parameters: {valid}")
        layer = layer or self.explainer.default_layer
        target = self.target(target)
        state = self._layer(layer)
        inputs = CamInputs(
            activations=state.values,
            target=target,
            gradients=self.gradients(target, layer) if "gradients" in card.needs else None,
            class_weights=self.explainer.class_weights(layer) if "class_weights" in card.needs else None,
        )
        with torch.no_grad():
            output = chosen.fn(inputs, **params)
            saliency, note = saliency_map(output.raw, self.size, sign)
        if inputs.gradients is not None and not torch.any(inputs.gradients):
            note = f"the gradient of class {target} at {layer} is zero everywhere, so the map is blank"
        self.explainer.cache.trim()
        return CamResult(
            method=method,
            target=target,
            label=self.explainer.labels[target],
            probability=float(self.probabilities[target]),
            layer=layer,
            sign=sign,
            raw=output.raw.detach().float().numpy(),
            saliency=saliency,
            weights=None if output.weights is None else output.weights.detach().float().numpy(),
            seconds=time.perf_counter() - started,
            note=note,
        )
