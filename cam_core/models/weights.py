"""Reading weight files safely (safetensors or a tensors-only state_dict) into a built architecture."""

from __future__ import annotations

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
            return load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types for a bad file
            raise CamError(f"{path} is not a readable safetensors file: {exc}") from exc
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CamError(
            f"{path} holds more than tensors (a pickle that could run code), so it is refused; "
            "save a state_dict or a safetensors file instead"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - torch.load raises several types for a bad file
        raise CamError(f"{path} is not a weights file torch can read: {exc}") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CamError(f"{path} does not hold a state_dict (a mapping of names to tensors)")
    return state


def load_weights(module: nn.Module, path: Path, copy: str, what: str) -> None:
    """Load path into module: by parameter name, or in order where the names differ but the layout matches."""
    state = read_state_dict(path)
    if copy == "in_order":
        state = _rename_in_order(module, state, what)
    elif copy != "by_name":
        raise CamError(f"unknown weight copy mode {copy!r} (by_name | in_order)")
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            parts.append(f"{len(wrong)} of another shape (e.g. {'; '.join(wrong[:2])})")
        raise CamError(f"{what} does not fit the architecture: " + ", ".join(parts))
    module.load_state_dict(state, strict=True)


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
