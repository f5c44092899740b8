"""SHA-256 digests of what a map depends on: the image's pixels and the model's weights (once per loaded network)."""

from __future__ import annotations

import hashlib
import importlib.util
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import torch

from cam_core.inputs.images import ImageInput, load_image

CHUNK = 1 << 20


@dataclass(frozen=True)
class WeightsDigest:
    """The weights' sha256 and what it is of: "file" (the weights file the network was loaded from, named by file)
    or "state_dict" (its tensors' names, dtypes, shapes and bytes in order, where no file holds them);
    tensors_sha256 is the state_dict digest in either case (what two loads of the same tensors share)."""

    sha256: str
    of: str
    file: str | None
    tensors_sha256: str


_DIGESTS: weakref.WeakKeyDictionary[torch.nn.Module, WeightsDigest] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def image_sha256(image: ImageInput) -> str:
    """The sha256 of an image's RGB pixel bytes, row by row, as the model is given them."""
    return hashlib.sha256(load_image(image).tobytes()).hexdigest()


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def tensors_sha256(module: torch.nn.Module) -> str:
    """The sha256 over a network's state_dict: each entry's name, dtype, shape and bytes, in order."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def weights_file(explainer) -> Path | None:
    """The file an Explainer's weights were read from (its models.yaml path, an embedded package's file or your own
    file), or None (downloaded or random weights)."""
    spec, source = explainer.spec, explainer.model.weights_source
    if source.startswith("embedded (") and "embedded" in spec.weights:
        embedded = spec.weights["embedded"]
        package = importlib.util.find_spec(embedded["package"])
        if package is not None and package.origin is not None:
            return Path(package.origin).parent / embedded["file"]
        return None
    path = Path(source)
    return path if path.is_file() else None


def weights_digest(explainer) -> WeightsDigest:
    """The WeightsDigest of an Explainer's network, computed once per network (kept while the network lives)."""
    module = explainer.model.module
    with _LOCK:
        found = _DIGESTS.get(module)
        if found is None:
            tensors = tensors_sha256(module)
            path = weights_file(explainer)
            found = (WeightsDigest(file_sha256(path), "file", path.name, tensors) if path is not None
                     else WeightsDigest(tensors, "state_dict", None, tensors))
            _DIGESTS[module] = found
    return found
