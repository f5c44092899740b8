"""The reproducibility manifest: a JSON-able record of the model (with its weights' sha256), the images (their pixels'
sha256), every map's method, parameters, layers, class and seed, and the library versions; in a zip with the files
it describes or next to a CLI output; and re-running a map from it."""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import zipfile
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cam_core.engine.analysis import DEFAULT_PRECISION, CamResult
from cam_core.engine.explainer import Explainer
from cam_core.errors import CamError
from cam_core.inputs.images import ImageInput, load_image
from cam_core.models.specs import ModelSpec, read_specs, spec_entry, spec_from_entry
from cam_core.provenance.digests import image_sha256, weights_digest
from cam_core.registry import get_method

FORMAT = 1
MANIFEST_NAME = "manifest.json"
PACKAGES = {"cam_core": "cam-explorer", "torch": "torch", "torchvision": "torchvision", "timm": "timm",
            "numpy": "numpy", "pillow": "pillow"}


def versions() -> dict[str, str]:
    """The versions a map depends on: cam_core, torch, torchvision, timm, numpy, Pillow (it resizes the image) and
    Python."""
    found = {}
    for key, package in PACKAGES.items():
        try:
            found[key] = version(package)
        except PackageNotFoundError:
            found[key] = "not installed"
    return found | {"python": platform.python_version()}


def model_record(explainer: Explainer) -> dict[str, Any]:
    """The model: name, title, source, architecture, where its weights came from and their sha256 (of the file,
    else of the state_dict: `sha256_of` says which), its models.yaml entry, preprocessing and label count."""
    spec, digest = explainer.spec, weights_digest(explainer)
    entry = spec_entry(spec)
    return {
        "name": spec.name,
        "title": spec.title,
        "source": spec.source,
        "architecture": spec.architecture,
        "weights_source": explainer.model.weights_source,
        "weights_given": explainer.model.weights_source != entry_weights_source(spec),
        "weights_file": digest.file,
        "weights_sha256": digest.sha256,
        "sha256_of": digest.of,
        "tensors_sha256": digest.tensors_sha256,
        "entry": entry,
        "base_dir": str(spec.base_dir),
        "preprocessing": entry["preprocessing"],
        "labels": len(explainer.labels),
    }


def entry_weights_source(spec: ModelSpec) -> str:
    """The weights_source a model gets from its own entry's weights (load_model's words), "" when it has none."""
    if "download" in spec.weights:
        return f"pretrained ({spec.weights['download']})"
    if "embedded" in spec.weights:
        return f"embedded ({spec.weights['embedded']['package']})"
    if "path" in spec.weights:
        return str((spec.base_dir / spec.weights["path"]).resolve())
    return ""


def image_record(image: ImageInput, name: str | None = None) -> dict[str, Any]:
    """An image as explained: the sha256 of its RGB pixel bytes, its width and height (and its file name, where
    known)."""
    picture = load_image(image)
    record: dict[str, Any] = {"sha256": image_sha256(picture), "width": picture.width, "height": picture.height}
    return record | ({"name": name} if name else {})


def _plain(value: object) -> object:
    """A parameter value as JSON keeps it (numpy scalars become Python numbers)."""
    return value.item() if isinstance(value, np.generic) else value


def map_record(result: CamResult) -> dict[str, Any]:
    """One map: method id and name, every parameter value (defaults filled in), layer(s), target class, label,
    probability, sign, and the seed where the method draws at random (else None)."""
    card = get_method(result.method).card
    params = {name: _plain(value) for name, value in result.params.items()}
    return {
        "method": card.id,
        "name": card.name,
        "params": params,
        "layer": result.layer,
        "layers": list(result.layers),
        "target": result.target,
        "label": result.label,
        "probability": result.probability,
        "sign": result.sign,
        "seed": params.get("seed"),
        "note": result.note,
    }


def method_defaults(method_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Methods run at their defaults (an evaluation's): by id, the name, every parameter's default and the seed
    where the method draws at random (else None)."""
    found = {}
    for method_id in method_ids:
        card = get_method(method_id).card
        params = {p.name: p.default for p in card.params}
        found[card.id] = {"name": card.name, "params": params, "seed": params.get("seed")}
    return found


def manifest(explainer: Explainer, kind: str, images: Sequence[ImageInput], maps: Sequence[CamResult],
             names: Sequence[str | None] | None = None, image_of: Sequence[int] | None = None,
             **extra: object) -> dict[str, Any]:
    """The manifest of a download or output of kind (map, grid, figure, evaluation, cli-explain…): the model, the
    images (names: their file names, where known), the maps (image_of: the index of each map's image; by default
    every map is of the only image, or map i of image i), the precision and torch threads, the versions, and extra
    (what the kind adds, such as an evaluation's settings) under "extra"."""
    if image_of is None:
        if len(images) == 1 or not maps:
            image_of = [0] * len(maps)
        elif len(images) == len(maps):
            image_of = list(range(len(maps)))
        else:
            raise CamError(f"{len(maps)} maps of {len(images)} images: say which image each map is of (image_of)")
    if len(image_of) != len(maps) or any(not 0 <= i < len(images) for i in image_of):
        raise CamError(f"image_of must give one image index (0..{len(images) - 1}) per map")
    names = list(names) if names is not None else [None] * len(images)
    return {
        "format": FORMAT,
        "kind": kind,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": model_record(explainer),
        "images": [image_record(image, name) for image, name in zip(images, names, strict=True)],
        "maps": [map_record(result) | {"image": int(index)} for result, index in zip(maps, image_of, strict=True)],
        "precision": DEFAULT_PRECISION,
        "torch_threads": torch.get_num_threads(),
        "versions": versions(),
        "extra": {key: _jsonable(value) for key, value in extra.items()},
    }


def _jsonable(value: object) -> object:
    """value with numpy scalars and arrays, tuples and paths made JSON types."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return _plain(value)


def manifest_json(record: Mapping[str, Any]) -> bytes:
    """The manifest as indented UTF-8 JSON."""
    return (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode()


def with_files(record: Mapping[str, Any], files: Mapping[str, bytes]) -> dict[str, Any]:
    """The manifest with the sha256 of each file it describes, by file name, under "files"."""
    listed = dict(record.get("files", {}))
    listed.update({name: hashlib.sha256(data).hexdigest() for name, data in files.items()})
    return {**record, "files": listed}


def zip_with_manifest(files: Mapping[str, bytes], record: Mapping[str, Any]) -> bytes:
    """One zip of the files and manifest.json (which lists each file's sha256)."""
    if MANIFEST_NAME in files:
        raise CamError(f"a file in the zip may not be called {MANIFEST_NAME}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr(MANIFEST_NAME, manifest_json(with_files(record, files)))
    return buffer.getvalue()


def manifest_path(output_path: str | os.PathLike) -> Path:
    """Where the manifest of a CLI output goes: next to it, named after it (x.npz → x.manifest.json), so that
    several outputs in one folder keep their own."""
    output = Path(output_path)
    return output.with_name(f"{output.stem}.{MANIFEST_NAME}")


def write_manifest(output_path: str | os.PathLike, record: Mapping[str, Any],
                   others: Sequence[str | os.PathLike] = ()) -> Path:
    """Write the manifest of output_path (and of the other outputs it goes with, such as an explanation's PNG) next
    to it, listing each output's sha256; its path."""
    outputs = [Path(output_path), *(Path(other) for other in others)]
    target = manifest_path(output_path)
    target.write_bytes(manifest_json(with_files(record, {path.name: path.read_bytes() for path in outputs})))
    return target


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """A manifest.json (or a zip holding one) as a dict; a CamError when it is neither."""
    source = Path(path)
    try:
        data = source.read_bytes()
        if zipfile.is_zipfile(source):
            with zipfile.ZipFile(source) as archive:
                data = archive.read(MANIFEST_NAME)
        record = json.loads(data)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise CamError(f"{source} is not a manifest.json, nor a zip holding one: {exc}") from exc
    if not isinstance(record, dict) or not {"model", "maps", "images"} <= set(record):
        raise CamError(f"{source} is not a CAM Explorer manifest (it has no model, maps and images)")
    return record


def rebuild(record: Mapping[str, Any], weights: str | os.PathLike | None = None) -> Explainer:
    """The Explainer a manifest's model names: its models.yaml entry where one of that name is equal to the
    recorded entry, else the recorded entry itself (weights: your own weights file, for a model whose weights are
    not in the entry); a CamError naming both digests when the weights are not the recorded ones."""
    model = record["model"]
    name, entry = model["name"], model["entry"]
    if weights is None and model.get("weights_given"):
        source = model["weights_source"]
        if not Path(source).is_file():
            raise CamError(f"the manifest's {name} was made with weights from outside its entry ({source}): give "
                           f"that file (--weights) of sha256 {model['weights_sha256']}")
        weights = source
    known = read_specs()
    if name in known and spec_entry(known[name]) == entry:
        explainer = Explainer(name, weights=weights)
    else:
        spec = spec_from_entry(name, entry, Path(model.get("base_dir") or Path.cwd()))
        explainer = Explainer.from_spec(spec, weights=weights)
    digest = weights_digest(explainer)
    if digest.tensors_sha256 != model["tensors_sha256"]:
        recorded = f"{model['weights_sha256']} ({model['sha256_of']}{_named(model.get('weights_file'))})"
        given = f"{digest.sha256} ({digest.of}{_named(digest.file)})"
        raise CamError(f"the weights are not the manifest's: it records {model['name']} with weights sha256 "
                       f"{recorded}, these are {given} from {explainer.model.weights_source}"
                       + ("" if weights else "; give the weights it was made with (--weights)"))
    return explainer


def _named(file: str | None) -> str:
    return f" {file}" if file else ""


def reproduce(record: Mapping[str, Any], image: ImageInput, weights: str | os.PathLike | None = None,
              item: int = 0, explainer: Explainer | None = None) -> CamResult:
    """Map number item of the manifest, computed again on image with the recorded model, method, class, layer(s),
    sign and parameters (explainer: one rebuild gave, to reuse); a CamError naming both sha256 when the image or
    the weights are not the recorded ones. In float32 on the same torch thread count, the map is the same bits."""
    maps = record["maps"]
    if not isinstance(item, int) or not 0 <= item < len(maps):
        raise CamError(f"the manifest has {len(maps)} maps (0..{len(maps) - 1}), not {item!r}")
    wanted = maps[item]
    recorded = record["images"][wanted.get("image", 0)]
    picture = load_image(image)
    found = image_sha256(picture)
    if found != recorded["sha256"]:
        raise CamError(
            f"the image is not the manifest's: it records {recorded.get('name', 'an image')} "
            f"{recorded['width']}×{recorded['height']} with pixels sha256 {recorded['sha256']}, this one is "
            f"{picture.width}×{picture.height} with sha256 {found}")
    explainer = explainer or rebuild(record, weights)
    card = get_method(wanted["method"]).card
    where = {"layers": wanted["layers"]} if card.multi_layer else {"layer": wanted["layer"]}
    return explainer.analyze(picture).cam(wanted["method"], target=wanted["target"], sign=wanted["sign"],
                                          precision=record.get("precision", DEFAULT_PRECISION), **where,
                                          **wanted["params"])

