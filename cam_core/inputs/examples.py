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


# What each photo shows, with the ImageNet classes to try: the model can only name the 1000 classes it was trained on,
# so a person, a giraffe or a rocket gets the nearest class it knows (a teaching point, not a bug).
_SKIMAGE = {
    "chelsea": "Chelsea the cat: Egyptian cat (285), tiger cat (282), tabby (281)",
    "coffee": "a cup of espresso (967) on a saucer",
    "astronaut": "astronaut Eileen Collins: ImageNet has no person class, so the model names things near her",
    "rocket": "a rocket on its launch pad: ImageNet has no rocket class (try missile, 657)",
}
_DARKNET = {
    "dog": "a dog, a bicycle and a pickup truck: dog breeds win, pickup (717) barely registers",
    "person": "a person, a dog and a horse: no person class; dog breeds win, sorrel (339) barely registers",
    "eagle": "an eagle: bald eagle (22)",
    "giraffe": "a giraffe and a zebra: ImageNet has no giraffe class, so the top class is another (mobilenet_v2: "
    "bittern); zebra is 340",
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
