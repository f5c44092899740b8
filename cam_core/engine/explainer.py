"""Explainer: one loaded model, shared safely by threads, and the per-image Analysis cache in front of it."""

from __future__ import annotations

import copy
import os
import threading
from pathlib import Path
from typing import Callable

import torch

from cam_core.engine.analysis import Analysis
from cam_core.engine.lru import ByteLRU
from cam_core.engine.release import return_free_memory, steady_heap
from cam_core.errors import CamError
from cam_core.inputs.images import ImageInput, image_key, load_image, to_input
from cam_core.inputs.mask_scores import ablate_through_head
from cam_core.inputs.position_scores import through_head
from cam_core.models.layouts import Layout, layout_for
from cam_core.models.specs import LoadedModel, ModelSpec, get_spec, load_model, resolve_head, spec_from_entry
from cam_core.passes.attention import AttentionBlocks, find_attention, unfused
from cam_core.passes.biases import BiasPass, bias_pass
from cam_core.passes.guided_copy import GuidedCopy, guided_copy
from cam_core.passes.hooks import InputPass, LayerPass, input_pass, run_with_layers
from cam_core.passes.inference import Progress, chunks, inference_copy
from cam_core.registry import MethodCard
from cam_core.sharing.model_budget import bytes_from_env
from cam_core.sharing.once import SharedWork
from cam_core.sharing.replicas import Replicas
from cam_core.sharing.slots import PASSES

DEFAULT_CACHE_BYTES = 1 << 30


def _cache_bytes_from_env() -> int:
    return bytes_from_env("CAM_CACHE_BYTES", DEFAULT_CACHE_BYTES)


class Explainer:
    """Explains images with one model from models.yaml; threads (a server's sessions) may share one.

    weights: None for the entry's own weights, "random" for a random initialisation, or a path to your own
    safetensors / state_dict file. cache_bytes bounds the per-image analyses kept (default $CAM_CACHE_BYTES or 1 GiB).

    The loaded network is never hooked or changed: passes that hook layers run on replicas of it (its own tensors in
    new module objects), each pass admitted in turn by the process's pass slots (see cam_core.sharing).
    """

    def __init__(
        self,
        name: str,
        weights: str | os.PathLike | None = None,
        cache_bytes: int | None = None,
        models_file: str | os.PathLike | None = None,
    ):
        spec = get_spec(name, Path(models_file) if models_file else None)
        self._setup(load_model(spec, weights), _cache_bytes_from_env() if cache_bytes is None else cache_bytes)

    @classmethod
    def from_spec(
        cls,
        spec: ModelSpec | dict,
        weights: str | os.PathLike | None = None,
        cache_bytes: int | None = None,
        name: str = "custom",
    ) -> Explainer:
        """An Explainer of a model described outside models.yaml: a ModelSpec, or one models.yaml entry as a mapping
        (the fragment the dashboard's "Your model" panel downloads; `name` names it)."""
        if isinstance(spec, dict):
            spec = spec_from_entry(name, spec, Path.cwd())
        return cls.from_model(load_model(spec, weights), cache_bytes)

    @classmethod
    def from_model(cls, model: LoadedModel, cache_bytes: int | None = None) -> Explainer:
        """An Explainer of a model already built and loaded (a user's own, see cam_core.engine.own_models)."""
        explainer = cls.__new__(cls)
        explainer._setup(model, _cache_bytes_from_env() if cache_bytes is None else cache_bytes)
        return explainer

    def _setup(self, model: LoadedModel, cache_bytes: int) -> None:
        steady_heap()
        self.spec: ModelSpec = model.spec
        self.model = model
        self.cache: ByteLRU[Analysis] = ByteLRU(cache_bytes, on_drop=return_free_memory)
        self._replicas = Replicas(model.module)
        self._analyzing = SharedWork()
        self._fast_lock = threading.Lock()
        self._fast: torch.nn.Module | None = None
        self._guided_lock = threading.Lock()
        self._guided: GuidedCopy | None = None
        self.layout: Layout = layout_for(self.spec.layout, self.model.module)
        self.attention_blocks: AttentionBlocks = find_attention(self.model.module, self.layout.prefix)
        module = self.model.module
        tensors = [*module.parameters(), *module.buffers()]
        self._parameter_storages = frozenset(t.untyped_storage().data_ptr() for t in tensors)

    def module_copy(self) -> torch.nn.Module:
        """A deep copy of the shared network (which carries no hooks), to change without touching it."""
        return copy.deepcopy(self.model.module)

    def with_module(self, module: torch.nn.Module, weights_source: str) -> Explainer:
        """An Explainer of the same models.yaml entry whose network is module (a changed copy of this one's, such as
        a randomised one), with its own cache and private copies; this Explainer is left as it is."""
        other = Explainer.__new__(Explainer)
        module.eval()
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        loaded = LoadedModel(self.spec, module, self.labels, resolve_head(self.spec, module), weights_source)
        other._setup(loaded, self.cache.max_bytes)
        return other

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def labels(self) -> list[str]:
        return self.model.labels

    @property
    def default_layer(self) -> str:
        return self.spec.target_layer

    def analyze(self, image: ImageInput) -> Analysis:
        """The Analysis of image: one forward pass the first time, the cached one after. Sessions asking for the
        same image at the same time share one Analysis (and so every map computed for it)."""
        picture = load_image(image)
        key = image_key(picture)

        def build() -> Analysis:
            cached = self.cache.get(key)
            if cached is not None:
                return cached
            model_input = to_input(picture, self.spec.preprocessing)
            return self.cache.put(key, Analysis(self, picture, key, model_input, on_grow=self.cache.trim))

        return self.cache.get(key) or self._analyzing.run(key, build)

    def check_layer(self, name: str) -> None:
        """A CamError naming the valid layers when the network has no layer called name."""
        self.model.layer(name)

    def pyramid(self) -> list[str]:
        """The layers multi-layer methods use by default, shallow to deep (models.yaml's pyramid)."""
        return self.model.pyramid()

    def run(self, model_input: torch.Tensor, layers: list[str]) -> LayerPass:
        """One forward pass capturing the layers named, on a replica of the network, in turn with other passes."""
        for name in layers:
            self.check_layer(name)
        with PASSES.slot(), self._replicas.borrow() as replica:
            return run_with_layers(replica, model_input, layers, self._parameter_storages, self.layout)

    def unmet(self, card: MethodCard) -> str:
        """Why this model cannot run card's method (a sentence), or "" when it has what the card requires."""
        if "attention" in card.requires and self.attention_blocks.problem:
            return f"{card.name} needs a vision transformer's attention; {self.name} {self.attention_blocks.problem}"
        return ""

    def attention_pass(self, model_input: torch.Tensor) -> LayerPass:
        """One forward pass capturing every block's attention probabilities, (batch, heads, tokens, tokens) each, in
        the graph to the logits (keyed by AttentionBlocks.probability_layers), on a replica, in turn with other
        passes; a CamError where the model has no such attention."""
        if self.attention_blocks.problem:
            raise CamError(f"{self.name} {self.attention_blocks.problem}")
        layers = self.attention_blocks.probability_layers
        with PASSES.slot(), self._replicas.borrow() as replica, unfused(replica, self.attention_blocks):
            return run_with_layers(replica, model_input, layers, self._parameter_storages)

    @property
    def head_splits(self) -> bool:
        """Whether models.yaml gives the head after the target layer (so ablations there run the head only)."""
        return bool(self.model.head.steps)

    def guided_model(self) -> GuidedCopy:
        """The private copy whose activations pass only positive gradients backwards (built on first use; the
        shared model is never changed)."""
        with self._guided_lock:
            if self._guided is None:
                self._guided = guided_copy(self.model.module)
            return self._guided

    def guided_activations(self) -> int:
        """How many activation modules the guided copy guides."""
        return self.guided_model().guided

    def differentiable_twice(self) -> bool:
        """Whether the graphs of run's passes have second derivatives (no fused attention kernel in them)."""
        return not self.attention_blocks.names

    def run_unfused(self, model_input: torch.Tensor, layers: list[str]) -> LayerPass:
        """As run, with every attention block computing its probabilities explicitly (timm's fused attention kernel
        has no second derivative), for a graph that can be differentiated twice (ShapleyCAM)."""
        for name in layers:
            self.check_layer(name)
        with PASSES.slot(), self._replicas.borrow() as replica, unfused(replica, self.attention_blocks):
            return run_with_layers(replica, model_input, layers, self._parameter_storages, self.layout)

    def bias_pass(self, model_input: torch.Tensor) -> BiasPass:
        """One pass whose graph reaches the input, capturing the output of every biased layer (FullGrad), on a
        replica, in turn with other passes."""
        with PASSES.slot(), self._replicas.borrow() as replica:
            return bias_pass(replica, model_input, self._parameter_storages)

    def input_gradients(self, model_input: torch.Tensor, guided: bool) -> InputPass:
        """Logits of a pass that keeps the graph down to the input, through the guided copy (whose guiding hooks
        sit on each pass's own tensors, so passes may run side by side) or the network."""
        if guided:
            copy = self.guided_model()
            with PASSES.slot():
                return input_pass(copy.module, model_input, copy.parameter_storages)
        with PASSES.slot():
            return input_pass(self.model.module, model_input, self._parameter_storages)

    def fast_model(self) -> torch.nn.Module:
        """The private inference copy used for batches of masked inputs (built on first use)."""
        with self._fast_lock:
            if self._fast is None:
                size = self.spec.preprocessing.input_size
                example = torch.linspace(-1, 1, 3 * size * size).reshape(1, 3, size, size)
                with PASSES.slot(), torch.inference_mode():
                    expected = self.model.module(example)
                    self._fast = inference_copy(self.model.module, example, expected)
            return self._fast

    def ablate(
        self, model_input: torch.Tensor, layer: str, activations: torch.Tensor, batch_size: int,
        progress: Progress | None = None,
    ) -> tuple[torch.Tensor, bool]:
        """(channels, classes) logits with each channel of layer zeroed in turn, and whether only the head ran:
        through the head alone at the split layer, by full passes (a quarter of batch_size each) elsewhere."""
        if layer == self.default_layer and self.head_splits:
            return ablate_through_head(self.model.head, activations, batch_size, progress), True
        return self.ablate_full(model_input, layer, activations.shape[0], max(1, batch_size // 4), progress), False

    def ablate_full(
        self, model_input: torch.Tensor, layer: str, channels: int, batch_size: int, progress: Progress | None = None
    ) -> torch.Tensor:
        """(channels, classes) logits of full forward passes with each channel of layer zeroed in turn: the fallback
        of Ablation-CAM where the model does not split at layer (one pass per channel)."""
        self.model.layer(layer)
        outputs = []
        for part in chunks(channels, batch_size):
            count = part.stop - part.start

            def zero_channels(_module, _inputs, output, part=part, count=count):
                return self.layout.zero_channels(output, torch.arange(count), torch.arange(part.start, part.stop))

            with PASSES.slot(), self._replicas.borrow() as replica, torch.inference_mode():
                handle = replica.get_submodule(layer).register_forward_hook(zero_channels)
                try:
                    outputs.append(replica(model_input.repeat(count, 1, 1, 1)).float())
                finally:
                    handle.remove()
            if progress is not None:
                progress(part.stop, channels)
        return torch.cat(outputs)

    def replace_layer(
        self, model_input: torch.Tensor, layer: str, count: int, maps: Callable[[slice], torch.Tensor],
        batch_size: int, progress: Progress | None = None, partial: Callable[[torch.Tensor], None] | None = None,
    ) -> tuple[torch.Tensor, bool]:
        """(count, classes) logits with the output of layer replaced by each of count (C, h, w) maps in turn (maps(part)
        gives those of part, (n, C, h, w)), and whether only the head ran: through the head alone at the split layer,
        by full passes (a quarter of batch_size each) elsewhere, where partial(logits) receives the rows done so far
        after each batch but the last."""
        if layer == self.default_layer and self.head_splits:
            return through_head(self.model.head, count, maps, batch_size, progress), True
        return self.replace_full(model_input, layer, count, maps, max(1, batch_size // 4), progress, partial), False

    def replace_full(
        self, model_input: torch.Tensor, layer: str, count: int, maps: Callable[[slice], torch.Tensor],
        batch_size: int, progress: Progress | None = None, partial: Callable[[torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """(count, classes) logits of full forward passes with the output of layer replaced by each map in turn: the
        fallback of Recipro-CAM and of Deep Feature Factorization's concept scores where the model does not split at
        layer (one pass per map); partial(logits) receives the rows done so far after each batch but the last."""
        self.model.layer(layer)
        outputs = []
        for part in chunks(count, batch_size):

            def replace(_module, _inputs, output, part=part):
                return self.layout.replace_map(output, maps(part))

            with PASSES.slot(), self._replicas.borrow() as replica, torch.inference_mode():
                handle = replica.get_submodule(layer).register_forward_hook(replace)
                try:
                    outputs.append(replica(model_input.repeat(part.stop - part.start, 1, 1, 1)).float())
                finally:
                    handle.remove()
            if progress is not None:
                progress(part.stop, count)
            if partial is not None and part.stop < count:
                partial(torch.cat(outputs))
        return torch.cat(outputs)

    def class_weights(self, layer: str) -> torch.Tensor:
        """The (classes, channels) weights of a global-average-pool → linear head at layer, for vanilla CAM."""
        linear = self.model.head.linear_classifier() if layer == self.default_layer else None
        if linear is None:
            if layer != self.default_layer:
                where = f"at {layer}: only the default layer {self.default_layer} is followed by the classifier"
            elif not self.head_splits:
                where = f"for {self.name}: at {layer} it does not end in global average pooling and one linear layer"
            else:
                where = (
                    f"for {self.name}: its head ({' → '.join(self.model.head.names)}) is not global average pooling "
                    "followed by one linear layer"
                )
            raise CamError(f"vanilla CAM is not defined {where}; use Grad-CAM, which is its generalisation")
        return linear.weight.detach()

    def class_index(self, query: int | str) -> int:
        """A class index from an index or a label ('pickup', 'Egyptian cat'); a CamError when none or several fit."""
        if isinstance(query, int) or (isinstance(query, str) and query.strip().isdigit()):
            index = int(query)
            if not 0 <= index < len(self.labels):
                raise CamError(f"class {index} is out of range 0..{len(self.labels) - 1}")
            return index
        wanted = str(query).strip().lower()
        exact = [i for i, label in enumerate(self.labels) if label.lower() == wanted]
        if exact:
            return exact[0]
        partial = [i for i, label in enumerate(self.labels) if wanted in label.lower()]
        if len(partial) == 1:
            return partial[0]
        if not partial:
            raise CamError(f"no class is called {query!r}")
        names = ", ".join(f"{i} {self.labels[i]}" for i in partial[:6])
        raise CamError(f"{query!r} fits several classes ({names}{', …' if len(partial) > 6 else ''}); give the index")
