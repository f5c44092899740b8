"""Real photos available offline: scikit-image's samples and, where installed, Debian darknet's test images."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PIL import Image

from cam_core.errors import ImageError

DARKNET_DATA = Path("/usr/share/darknet/data")


def _skimage(name: str) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        from skimage import data

        return Image.fromarray(getattr(data, name)())

    return load


def _darknet(name: str) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        with Image.open(DARKNET_DATA / f"{name}.jpg") as image:
            return image.convert("RGB")

    return load


_SKIMAGE = {
    "chelsea": "Chelsea the cat (Egyptian cat)",
    "coffee": "a cup of espresso",
    "astronaut": "astronaut Eileen Collins",
    "rocket": "a rocket on the launch pad",
}
_DARKNET = {
    "dog": "dog, bicycle and pickup truck",
    "person": "person, dog and horse",
    "eagle": "an eagle",
    "giraffe": "giraffe and zebra",
}


def examples() -> dict[str, tuple[str, Callable[[], Image.Image]]]:
    """Example name → (description, loader), only those present on this machine."""
    found = {name: (text, _skimage(name)) for name, text in _SKIMAGE.items()}
    for name, text in _DARKNET.items():
        if (DARKNET_DATA / f"{name}.jpg").is_file():
            found[name] = (text, _darknet(name))
    return found


def load_example(name: str) -> Image.Image:
    """The example photo called name."""
    available = examples()
    if name not in available:
        raise ImageError(f"no example called {name!r}; available here: {', '.join(available)}")
    return available[name][1]()
