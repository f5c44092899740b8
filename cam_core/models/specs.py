"""models.yaml → a loaded classifier with its preprocessing, labels, target layer and feature/head split."""

from __future__ import annotations

import contextlib
import difflib
import io
import os
import socket
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
import yaml
from torch import nn

from cam_core.errors import CamError, ModelUnavailableError
from cam_core.models.labels import label_set
from cam_core.models.weights import fit_state, load_weights

DEFAULT_MODELS_FILE = Path(__file__).resolve().parent / "models.yaml"


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the model's input tensor."""

    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"


@dataclass(frozen=True)
class ModelSpec:
    """One entry of models.yaml."""

    name: str
    title: str
    source: str
    architecture: str
    weights: dict[str, Any]
    preprocessing: Preprocessing
    labels: str | tuple[str, ...]  # a label set's name (imagenet1k) or the class names themselves
    target_layer: str
    head: tuple[str, ...]
    layers: tuple[str, ...] = ()
    pyramid: tuple[str, ...] = ()
    layout: str = "nchw"
    kwargs: dict[str, Any] = field(default_factory=dict)
    base_dir: Path = DEFAULT_MODELS_FILE.parent

    @property
    def embedded(self) -> bool:
        """True when the weights ship inside an installed package (works offline)."""
        return "embedded" in self.weights


def models_file() -> Path:
    """The models.yaml in use: $CAM_MODELS_FILE or the one shipped in this package."""
    return Path(os.environ.get("CAM_MODELS_FILE", DEFAULT_MODELS_FILE))


def spec_from_entry(name: str, entry: dict[str, Any], base_dir: Path = DEFAULT_MODELS_FILE.parent) -> ModelSpec:
    """The ModelSpec of one models.yaml entry (a mapping as YAML gives it); a CamError names what is missing."""
    try:
        labels = entry.get("labels", "imagenet1k")
        return ModelSpec(
            name=name,
            title=entry.get("title", name),
            source=entry["source"],
            architecture=entry["architecture"],
            weights=entry.get("weights") or {},
            preprocessing=Preprocessing(**entry["preprocessing"]),
            labels=labels if isinstance(labels, str) else tuple(str(label) for label in labels),
            target_layer=entry["target_layer"],
            head=tuple(entry.get("head") or ()),
            layers=tuple(entry.get("layers", ())),
            pyramid=tuple(entry.get("pyramid", ())),
            layout=entry.get("layout", "nchw"),
            kwargs=entry.get("kwargs") or {},
            base_dir=base_dir,
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise CamError(f"models.yaml entry {name!r} is incomplete: {exc}") from exc


def spec_entry(spec: ModelSpec) -> dict[str, Any]:
    """spec as a models.yaml entry (plain lists and mappings; spec_from_entry reads it back to an equal spec)."""
    entry: dict[str, Any] = {
        "title": spec.title,
        "source": spec.source,
        "architecture": spec.architecture,
        "weights": dict(spec.weights),
        "preprocessing": {
            "input_size": spec.preprocessing.input_size,
            "mean": list(spec.preprocessing.mean),
            "std": list(spec.preprocessing.std),
            "interpolation": spec.preprocessing.interpolation,
        },
        "labels": spec.labels if isinstance(spec.labels, str) else list(spec.labels),
        "target_layer": spec.target_layer,
    }
    optional = {"head": list(spec.head), "layers": list(spec.layers), "pyramid": list(spec.pyramid),
                "kwargs": dict(spec.kwargs)}
    entry.update({key: value for key, value in optional.items() if value})
    if spec.layout != "nchw":
        entry["layout"] = spec.layout
    return entry


def read_specs(path: Path | None = None) -> dict[str, ModelSpec]:
    """All entries of a models.yaml, by name."""
    path = Path(path) if path else models_file()
    try:
        table = yaml.safe_load(path.read_text())["models"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise CamError(f"cannot read the model table {path}: {exc}") from exc
    return {name: spec_from_entry(name, entry, path.parent) for name, entry in table.items()}


def embedded_model_names(specs: dict[str, ModelSpec] | None = None) -> list[str]:
    """Names of the models whose weights work offline."""
    specs = read_specs() if specs is None else specs
    return [name for name, spec in specs.items() if spec.embedded]


def get_spec(name: str, path: Path | None = None) -> ModelSpec:
    """The models.yaml entry called name, or a CamError listing the known ones."""
    specs = read_specs(path)
    if name not in specs:
        raise CamError(f"unknown model {name!r}; models.yaml has: {', '.join(specs)}")
    return specs[name]


class Head(nn.Module):
    """The classifier part: the steps from the target layer's output to the logits."""

    def __init__(self, steps: list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]]):
        super().__init__()
        self.names = [name for name, _ in steps]
        self.steps = [fn for _, fn in steps]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            x = step(x)
        return x

    def linear_classifier(self) -> nn.Linear | None:
        """The final Linear layer when the head is exactly global-average-pool → linear, else None."""
        flat: list[Callable] = []
        for step in self.steps:
            flat.extend(step.children() if isinstance(step, nn.Sequential) else [step])
        passive = (nn.Dropout, nn.Identity, nn.Flatten)
        pooled = False
        for position, step in enumerate(flat):
            if isinstance(step, passive) or step is _flatten:
                continue
            if step is _gap or _is_global_avg_pool(step):
                if pooled:
                    return None
                pooled = True
                continue
            rest = flat[position + 1 :]
            if pooled and isinstance(step, nn.Linear) and all(isinstance(s, passive) for s in rest):
                return step
            return None
        return None


def _gap(x: torch.Tensor) -> torch.Tensor:
    return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def _flatten(x: torch.Tensor) -> torch.Tensor:
    return torch.flatten(x, 1)


def _relu(x: torch.Tensor) -> torch.Tensor:
    return F.relu(x)


BUILTIN_STEPS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"gap": _gap, "flatten": _flatten, "relu": _relu}


def _is_global_avg_pool(module: Any) -> bool:
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return module.output_size in (1, (1, 1))
    pool_type = getattr(module, "pool_type", None)
    return pool_type == "avg" and hasattr(module, "flatten")


@dataclass
class LoadedModel:
    """A classifier ready for explanation: eval mode, frozen parameters, labels and layer lookup."""

    spec: ModelSpec
    module: nn.Module
    labels: list[str]
    head: Head
    weights_source: str

    def layer(self, name: str) -> nn.Module:
        """The module called name, or a CamError suggesting close names."""
        modules = dict(self.module.named_modules())
        if name in modules and name:
            return modules[name]
        close = difflib.get_close_matches(name, [n for n in modules if n], n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; try one of {', '.join(self.layer_choices())}"
        raise CamError(f"model {self.spec.name} has no layer {name!r}{hint}")

    def layer_choices(self) -> list[str]:
        """Layers offered in pickers: the models.yaml list, ending with the default target layer."""
        choices = [name for name in self.spec.layers if name != self.spec.target_layer]
        return choices + [self.spec.target_layer]

    def pyramid(self) -> list[str]:
        """The default layers of multi-layer methods, shallow to deep, ending with the target layer: the models.yaml
        `pyramid` (one layer per resolution), else the layer choices."""
        layers = [name for name in self.spec.pyramid if name != self.spec.target_layer] or self.layer_choices()[:-1]
        return layers + [self.spec.target_layer]


def _build_architecture(spec: ModelSpec) -> nn.Module:
    if spec.source == "torchvision":
        import torchvision.models as tvm

        try:
            builder = tvm.get_model_builder(spec.architecture)
        except ValueError as exc:
            raise CamError(f"torchvision has no model {spec.architecture!r}") from exc
        return builder(weights=None, **spec.kwargs)
    if spec.source == "timm":
        import timm

        if not timm.is_model(spec.architecture):
            raise CamError(f"timm has no model {spec.architecture!r}")
        return timm.create_model(spec.architecture, pretrained=False, **spec.kwargs)
    if spec.source == "file":
        return _build_from_file(spec)
    raise CamError(f"models.yaml entry {spec.name!r}: unknown source {spec.source!r} (torchvision | timm | file)")


def _build_from_file(spec: ModelSpec) -> nn.Module:
    import importlib.util

    path = (spec.base_dir / spec.kwargs.get("file", "")).resolve()
    if not path.is_file():
        raise CamError(f"models.yaml entry {spec.name!r}: architecture file {path} not found")
    module_spec = importlib.util.spec_from_file_location(f"cam_user_model_{spec.name}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    builder = getattr(module, spec.architecture, None)
    if builder is None:
        raise CamError(f"{path} has no function {spec.architecture!r}")
    return builder()


def _download_pretrained(spec: ModelSpec) -> nn.Module:
    """Build with the publisher's pretrained weights (needs internet or a warm cache); download chatter is hidden."""
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            if spec.source == "torchvision":
                import torchvision.models as tvm

                enum = tvm.get_model_weights(spec.architecture)
                weights = enum[spec.weights["download"]]
                return tvm.get_model(spec.architecture, weights=weights, **spec.kwargs)
            if spec.source == "timm":
                import timm

                _check_timm_weights_reachable(spec.architecture)
                return timm.create_model(spec.architecture, pretrained=True, **spec.kwargs)
    except Exception as exc:  # noqa: BLE001 - any download failure becomes one clear message (the cause is chained)
        offline = ", ".join(embedded_model_names())
        raise ModelUnavailableError(
            f"model {spec.name!r} needs its pretrained weights ({spec.source} {spec.architecture}, "
            f"{spec.weights['download']}) downloaded from the internet, and the download failed here. Models that "
            f"work offline: {offline}."
        ) from exc
    raise CamError(f"models.yaml entry {spec.name!r}: download weights need source torchvision or timm")


def _check_timm_weights_reachable(architecture: str) -> None:
    """Fail at once when timm's weights are neither cached nor reachable (the hub client would retry for a minute)."""
    from huggingface_hub import try_to_load_from_cache
    from timm.models import get_pretrained_cfg

    config = get_pretrained_cfg(architecture)
    hub_id = getattr(config, "hf_hub_id", None)
    if hub_id and any(
        isinstance(try_to_load_from_cache(hub_id, filename), str)
        for filename in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")
    ):
        return
    host = "huggingface.co" if hub_id else urllib.parse.urlparse(getattr(config, "url", "") or "").hostname
    try:
        socket.getaddrinfo(host or "huggingface.co", 443)
    except OSError as exc:
        raise ConnectionError(f"{host} cannot be reached and the weights are not cached") from exc


def resolve_head(spec: ModelSpec, module: nn.Module) -> Head:
    modules = dict(module.named_modules())
    steps = []
    for step in spec.head:
        if step in BUILTIN_STEPS:
            steps.append((step, BUILTIN_STEPS[step]))
        elif step in modules:
            steps.append((step, modules[step]))
        else:
            raise CamError(f"models.yaml entry {spec.name!r}: head step {step!r} is neither a module nor a builtin")
    return Head(steps)


def load_model(spec: ModelSpec, weights: str | os.PathLike | Mapping[str, torch.Tensor] | None = None) -> LoadedModel:
    """Build spec's architecture and load its weights.

    weights=None uses the entry's own weights (embedded or downloaded), "random" keeps the library's random
    initialisation (weight matrices it sets to zero get small random values, so that gradients flow),
    a path loads your own safetensors or state_dict file, a mapping of names to tensors is loaded as it is (an
    upload read in memory).
    """
    module, source = build_module(spec, weights)
    return loaded_model(spec, module, source)


def build_module(spec: ModelSpec, weights: str | os.PathLike | Mapping[str, torch.Tensor] | None = None
                 ) -> tuple[nn.Module, str]:
    """spec's network with its weights (as load_model takes them) and where they came from."""
    if weights is None and "download" in spec.weights:
        return _download_pretrained(spec), f"pretrained ({spec.weights['download']})"
    module = _build_architecture(spec)
    if isinstance(weights, Mapping):
        what = f"your file {spec.weights['file']}" if "file" in spec.weights else "your weights"
        fit_state(module, dict(weights), "by_name", what)
        return module, what
    if weights == "random":
        _wake_zero_weights(module)
        return module, "random initialisation"
    if weights is not None:
        load_weights(module, Path(weights), copy="by_name", what=f"your file {weights}")
        return module, str(weights)
    if "embedded" in spec.weights:
        return module, _load_embedded(spec, module)
    if "path" in spec.weights:
        path = (spec.base_dir / spec.weights["path"]).resolve()
        load_weights(module, path, copy=spec.weights.get("copy", "by_name"), what=str(path))
        return module, str(path)
    raise CamError(f"models.yaml entry {spec.name!r} says nothing about its weights")


def loaded_model(spec: ModelSpec, module: nn.Module, weights_source: str) -> LoadedModel:
    """module frozen in eval mode as spec's LoadedModel, its layers checked."""
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    loaded = LoadedModel(spec, module, label_set(spec.labels), resolve_head(spec, module), weights_source)
    for name in (spec.target_layer, *spec.layers, *spec.pyramid):
        loaded.layer(name)
    return loaded


def _wake_zero_weights(module: nn.Module, std: float = 0.02) -> None:
    """Give weight matrices that the library initialises to exactly zero (timm's transformer heads) small random
    values, seeded by their name, so that an untrained network still passes gradients back."""
    for name, parameter in module.named_parameters():
        if parameter.dim() >= 2 and not torch.any(parameter):
            generator = torch.Generator().manual_seed(sum(name.encode()))
            with torch.no_grad():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * std)


def _load_embedded(spec: ModelSpec, module: nn.Module) -> str:
    import importlib.util

    embedded = spec.weights["embedded"]
    package = importlib.util.find_spec(embedded["package"])
    if package is None or package.origin is None:
        raise ModelUnavailableError(
            f"model {spec.name!r} needs the package {embedded['package']} "
            f"(pip install --no-deps {embedded['package'].replace('_', '-')})"
        )
    path = Path(package.origin).parent / embedded["file"]
    load_weights(module, path, copy=embedded.get("copy", "by_name"), what=f"{embedded['package']}/{embedded['file']}")
    return f"embedded ({embedded['package']})"
