"""Reading weight files safely (safetensors or a tensors-only state_dict) into a built architecture."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import torch
from torch import nn

from cam_core.errors import CamError


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file or a state_dict saved with torch.save; never runs code from the file."""
    if not path.is_file():
        raise CamError(f"weights file {path} not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return unwrapped(load_file(str(path)))
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types for a bad file
            raise CamError(f"{path} is not a readable safetensors file: {exc}") from exc
    return _torch_state(path, str(path))


def state_from_bytes(data: bytes, what: str) -> dict[str, torch.Tensor]:
    """Tensors from the bytes of a safetensors file or of a torch.save state_dict (an upload), read in memory;
    never runs code from them."""
    if _looks_like_safetensors(data):
        from safetensors.torch import load

        try:
            return unwrapped(load(data))
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types for a bad file
            raise CamError(f"{what} is not a readable safetensors file: {exc}") from exc
    return _torch_state(io.BytesIO(data), what)


def _looks_like_safetensors(data: bytes) -> bool:
    """A safetensors file: an 8-byte little-endian header length, then a JSON header."""
    if len(data) < 9:
        return False
    header = int.from_bytes(data[:8], "little")
    return 0 < header <= len(data) - 8 and data[8:9] == b"{"


def _torch_state(source: Path | io.BytesIO, what: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CamError(
            f"{what} holds more than tensors (a pickle that could run code, such as a whole pickled model), so it "
            "is refused; save a state_dict (torch.save(model.state_dict(), ...)) or a safetensors file instead"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - torch.load raises several types for a bad file
        raise CamError(f"{what} is not a weights file torch can read (a safetensors file or a torch.save "
                       f"state_dict): {exc}") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if isinstance(state, torch.Tensor):
        raise CamError(f"{what} holds one tensor {tuple(state.shape)}, not a state_dict (a mapping of parameter "
                       "names to tensors)")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CamError(f"{what} does not hold a state_dict (a mapping of names to tensors)")
    return unwrapped(state)


WRAPPER_PREFIX = "module."  # what torch.nn.DataParallel and DistributedDataParallel put before every name


def unwrapped(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """state with the `module.` prefix of a model saved inside DataParallel / DistributedDataParallel taken off, where
    every name has it; otherwise state as it is."""
    if state and all(name.startswith(WRAPPER_PREFIX) for name in state):
        return {name[len(WRAPPER_PREFIX):]: tensor for name, tensor in state.items()}
    return state


def load_weights(module: nn.Module, path: Path, copy: str, what: str) -> None:
    """Load path into module: by parameter name, or in order where the names differ but the layout matches."""
    fit_state(module, read_state_dict(path), copy, what)


def fit_state(module: nn.Module, state: dict[str, torch.Tensor], copy: str, what: str) -> None:
    """Load state into module (by name or in order); a CamError listing the missing, unexpected and misshapen
    tensors with their shapes when it does not fit."""
    if copy == "in_order":
        state = _rename_in_order(module, state, what)
    elif copy != "by_name":
        raise CamError(f"unknown weight copy mode {copy!r} (by_name | in_order)")
    expected = module.state_dict()
    missing = [f"{k} {tuple(v.shape)}" for k, v in expected.items() if k not in state]
    unexpected = [f"{k} {tuple(v.shape)}" for k, v in state.items() if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing tensors: {_listed(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors: {_listed(unexpected)}")
        if wrong:
            parts.append(f"{len(wrong)} of another shape (e.g. {'; '.join(wrong[:2])})")
        raise CamError(f"{what} does not fit the architecture: " + "; ".join(parts))
    module.load_state_dict(state, strict=True)


def _listed(names: list[str], shown: int = 3) -> str:
    return ", ".join(names[:shown]) + (", …" if len(names) > shown else "")


def _rename_in_order(module: nn.Module, state: dict[str, torch.Tensor], what: str) -> dict[str, torch.Tensor]:
    """Give the file's tensors the architecture's names, pairing them in order and checking every shape."""
    expected = module.state_dict()
    ours = [k for k in expected if not k.endswith("num_batches_tracked")]
    theirs = [k for k in state if not k.endswith("num_batches_tracked")]
    if len(ours) != len(theirs):
        raise CamError(f"{what} has {len(theirs)} tensors, the architecture {len(ours)}")
    renamed = {}
    for mine, other in zip(ours, theirs, strict=True):
        if state[other].shape != expected[mine].shape:
            raise CamError(f"{what}: tensor {other} {tuple(state[other].shape)} does not fit {mine}")
        renamed[mine] = state[other]
    for name, tensor in expected.items():
        if name.endswith("num_batches_tracked"):
            renamed[name] = tensor
    return renamed
