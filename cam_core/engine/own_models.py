"""A user's own classifier: any torchvision classification builder or timm model with their weights (or the
publisher's, or random ones), labels and preprocessing, its layers found automatically; saved as a models.yaml
fragment."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
import yaml
from torch import nn

from cam_core.engine.explainer import Explainer
from cam_core.errors import CamError
from cam_core.models.finder import find_layers
from cam_core.models.specs import (
    ModelSpec,
    Preprocessing,
    _build_architecture,
    build_module,
    loaded_model,
    spec_entry,
)
from cam_core.models.weights import state_from_bytes

SOURCES = ("torchvision", "timm")
IMAGENET = Preprocessing(224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "bilinear")
DEFAULT_CLASSES = 1000
AUX_PREFIXES = ("aux1.", "aux2.", "AuxLogits.")  # torchvision GoogLeNet / Inception-v3 auxiliary classifiers


@dataclass
class OwnModel:
    """A user's model, ready to explain: its spec (name own-<architecture>-<sha256 prefix>), Explainer, the bytes of
    its parameters and buffers, the uploaded weights' sha256 (None for pretrained or random weights) and notes on
    what was found."""

    spec: ModelSpec
    explainer: Explainer
    nbytes: int
    weights_sha256: str | None
    notes: list[str] = field(default_factory=list)


@functools.cache
def architectures() -> list[str]:
    """Every architecture a user may bring: "torchvision:<builder>" for torchvision's classification models, then
    "timm:<name>" for timm's."""
    import timm
    import torchvision.models as tvm

    return [f"torchvision:{name}" for name in tvm.list_models(module=tvm)] + [
        f"timm:{name}" for name in timm.list_models()
    ]


def default_preprocessing(source: str, architecture: str) -> Preprocessing:
    """The architecture's known input size, mean, std and resize mode: timm's pretrained config, torchvision's
    weight transforms, else ImageNet's defaults at 224."""
    _check_architecture(source, architecture)
    if source == "timm":
        import timm.data
        from timm.models import get_pretrained_cfg

        config = get_pretrained_cfg(architecture)
        if config is None:
            return IMAGENET
        data = timm.data.resolve_data_config(pretrained_cfg=config.to_dict())
        interpolation = data["interpolation"] if data["interpolation"] in ("bilinear", "bicubic") else "bilinear"
        return Preprocessing(int(data["input_size"][-1]), tuple(data["mean"]), tuple(data["std"]), interpolation)
    import torchvision.models as tvm

    try:
        transforms = tvm.get_model_weights(architecture).DEFAULT.transforms()
    except (ValueError, AttributeError, KeyError):
        return IMAGENET
    return Preprocessing(int(transforms.crop_size[0]), tuple(transforms.mean), tuple(transforms.std),
                         transforms.interpolation.value)


def parse_labels(data: bytes | str | None, count: int) -> list[str]:
    """count class names from a labels file: one name a line, a JSON list, or a JSON mapping {"0": "cat", ...};
    None gives "class 0" … "class <count-1>". A CamError when the file's names are not count."""
    if data is None:
        return [f"class {index}" for index in range(count)]
    names = _label_names(data)
    if len(names) != count:
        raise CamError(f"the head has {count} outputs, the labels file {len(names)} names")
    return names


def _label_names(data: bytes | str) -> list[str]:
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CamError("the labels file is not text (UTF-8): give one name a line, or JSON") from exc
    text = data.strip()
    if text[:1] in ("[", "{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CamError(f"the labels file looks like JSON but is not: {exc}") from exc
        names = _json_names(parsed)
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise CamError("the labels file holds no names")
    return names


def _json_names(parsed: Any) -> list[str]:
    if isinstance(parsed, list):
        return [str(name) for name in parsed]
    if isinstance(parsed, dict):
        try:
            indexed = {int(key): str(name) for key, name in parsed.items()}
        except ValueError as exc:
            raise CamError("a JSON labels mapping needs class numbers as keys: {\"0\": \"cat\", ...}") from exc
        if sorted(indexed) != list(range(len(indexed))):
            raise CamError(f"a JSON labels mapping needs every class number from 0 to {len(indexed) - 1}")
        return [indexed[index] for index in range(len(indexed))]
    raise CamError("a JSON labels file must be a list of names or a mapping {\"0\": \"cat\", ...}")


def build_own_model(
    source: str,
    architecture: str,
    weights: bytes | None,
    weights_name: str,
    labels: bytes | str | None,
    preprocessing: Preprocessing | None = None,
    pretrained: bool = False,
) -> OwnModel:
    """The user's model: the architecture with as many classes as the weights' head has, the weights (read in
    memory, tensors only), or the publisher's (pretrained, needs internet), or random ones (neither given); its
    target layer, head and pyramid found by find_layers; the labels parsed against the head's outputs."""
    _check_architecture(source, architecture)
    if weights is not None and pretrained:
        raise CamError("give your weights or ask for the pretrained ones, not both")
    preprocessing = preprocessing or default_preprocessing(source, architecture)
    sha = hashlib.sha256(weights).hexdigest() if weights is not None else None
    state = state_from_bytes(weights, f"your file {weights_name}") if weights is not None else None
    if state is not None:
        classes, entry, suffix = _classes_in(source, architecture, state), {"file": weights_name, "sha256": sha}, sha
        kwargs = _kwargs(source, architecture, classes, state)
    elif pretrained:
        entry, suffix, kwargs = {"download": "DEFAULT" if source == "torchvision" else "timm"}, "pretrained", {}
    else:
        classes = len(_label_names(labels)) if labels is not None else DEFAULT_CLASSES
        entry, suffix, kwargs = {}, "random", _kwargs(source, architecture, classes, None)
    stub = ModelSpec(name=f"own-{architecture}", title=f"Your {architecture} ({source})", source=source,
                     architecture=architecture,
                     weights=entry, preprocessing=preprocessing, labels=(), target_layer="", head=(), kwargs=kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module, weights_source = build_module(stub, state if state is not None else None if pretrained else "random")
    found = find_layers(module, preprocessing.input_size)
    if labels is None and pretrained and found.classes == DEFAULT_CLASSES:
        names: str | tuple[str, ...] = "imagenet1k"
    else:
        names = tuple(parse_labels(labels, found.classes))
    spec = dataclasses.replace(stub, labels=names, target_layer=found.target_layer, head=found.head,
                               layers=found.layers, pyramid=found.pyramid, layout=found.layout)
    spec = dataclasses.replace(spec, name=_private_name(spec, suffix))
    explainer = Explainer.from_model(loaded_model(spec, module, weights_source))
    nbytes = sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))
    return OwnModel(spec, explainer, nbytes, sha, [f"{found.classes} classes (the head's outputs)", *found.notes])


def _private_name(spec: ModelSpec, weights: str) -> str:
    """own-<architecture>-<12 hex>: the digest of the weights' sha256 (pretrained: the word) with everything else
    the entry says (preprocessing, labels, layers), so results kept by model name across sessions are shared only
    by identical models; random weights differ on every load, so theirs is a fresh random token."""
    if weights == "random":
        return f"{spec.name}-random-{uuid.uuid4().hex[:8]}"
    entry = json.dumps({"weights": weights, "entry": spec_entry(spec)}, sort_keys=True)
    return f"{spec.name}-{hashlib.sha256(entry.encode()).hexdigest()[:12]}"


def spec_fragment(spec: ModelSpec, weights_path: str) -> str:
    """spec as a models.yaml of one entry whose weights are the file weights_path (relative to the fragment's
    folder, or absolute): `Explainer(name, models_file=...)` and the CLI's --model-file read it back."""
    entry = spec_entry(spec)
    entry["weights"] = {"path": weights_path, **({"sha256": spec.weights["sha256"]} if "sha256" in spec.weights
                                                  else {})}
    header = (f"# {spec.title}: a CAM Explorer model entry. Keep {weights_path} next to this file, then\n"
              f"# python -m cam_core explain IMAGE --model-file THIS_FILE --out map.npz\n")
    return header + yaml.safe_dump({"models": {spec.name: entry}}, sort_keys=False, allow_unicode=True,
                                   default_flow_style=None)


def _check_architecture(source: str, architecture: str) -> None:
    if source not in SOURCES:
        raise CamError(f"the architecture's source must be torchvision or timm, not {source!r}")
    if f"{source}:{architecture}" not in set(architectures()):
        raise CamError(f"{source} has no classification model {architecture!r}")


def _kwargs(source: str, architecture: str, classes: int, state: dict[str, torch.Tensor] | None) -> dict[str, Any]:
    """Constructor arguments: the number of classes and, for torchvision's GoogLeNet and Inception-v3, whether the
    weights carry the auxiliary classifiers (their slow scipy initialisation is skipped)."""
    kwargs: dict[str, Any] = {"num_classes": classes}
    if source == "torchvision" and architecture in ("googlenet", "inception_v3"):
        kwargs["aux_logits"] = state is not None and any(key.startswith(AUX_PREFIXES) for key in state)
        kwargs["init_weights"] = False
    return kwargs


def _classes_in(source: str, architecture: str, state: dict[str, torch.Tensor]) -> int:
    """The number of classes the weights' head has (the rows of its last linear or convolution weight), or the
    default when the file has no tensor of that name (the mismatch is reported when the weights are loaded)."""
    weight = state.get(f"{_classifier_name(source, architecture)}.weight")
    return int(weight.shape[0]) if weight is not None and weight.dim() >= 2 else DEFAULT_CLASSES


def _classifier_name(source: str, architecture: str) -> str:
    module = _meta_build(source, architecture)
    last = ""
    for name, child in module.named_modules():
        if isinstance(child, (nn.Linear, nn.Conv2d)) and not name.startswith(AUX_PREFIXES):
            last = name
    return last


def _meta_build(source: str, architecture: str) -> nn.Module:
    """The architecture with its default classes, built without allocating its tensors where it can be."""
    spec = ModelSpec(name=architecture, title=architecture, source=source, architecture=architecture, weights={},
                     preprocessing=IMAGENET, labels=(), target_layer="", head=(),
                     kwargs=_kwargs(source, architecture, DEFAULT_CLASSES, None))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.device("meta"):
                return _build_architecture(spec)
        except (NotImplementedError, RuntimeError):
            return _build_architecture(spec)
