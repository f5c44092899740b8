"""Class names, offline."""

from __future__ import annotations

from functools import lru_cache

from cam_core.errors import CamError


@lru_cache(maxsize=None)
def _imagenet1k() -> tuple[str, ...]:
    from torchvision.models import MobileNet_V2_Weights

    return tuple(MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])


LABEL_SETS = {"imagenet1k": _imagenet1k}


def label_set(name: str | tuple[str, ...] | list[str]) -> list[str]:
    """The class names of a label set named in models.yaml, or the names a models.yaml entry lists itself."""
    if not isinstance(name, str):
        return list(name)
    if name not in LABEL_SETS:
        raise CamError(f"unknown label set {name!r}; known: {', '.join(LABEL_SETS)}")
    return list(LABEL_SETS[name]())

