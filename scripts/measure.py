"""Measuring a process, shared by the memory test (tests/engine/test_memory.py) and the memory benchmarks
(bench/memory.py, bench/server_memory.py, bench/classroom.py): a process's resident memory, and a supply of distinct
real photos to upload one after another.

Neither a test nor a benchmark itself: both sides import from here, so that tests and bench never import each other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

MIB = 1 << 20
# scikit-image's photos that distinct_images crops, resizes and perturbs.
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "cat", "immunohistochemistry", "hubble_deep_field")


def rss_bytes(pid: int | str = "self") -> int:
    """The resident set size (VmRSS) of process pid (default: this process), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def distinct_images(count: int, size: tuple[int, int] = (800, 600), seed: int = 0) -> list[np.ndarray]:
    """count different (height, width, 3) uint8 photos of size (width, height): random crops of scikit-image
    photos, resized, flipped at random, with a little noise (so no two are equal)."""
    from skimage import data

    rng = np.random.default_rng(seed)
    sources = [np.asarray(Image.fromarray(getattr(data, name)()).convert("RGB")) for name in PHOTOS]
    images = []
    for i in range(count):
        photo = sources[i % len(sources)]
        height, width = photo.shape[:2]
        h = int(rng.integers(height // 2, height + 1))
        w = int(rng.integers(width // 2, width + 1))
        top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        crop = Image.fromarray(photo[top : top + h, left : left + w]).resize(size, Image.BILINEAR)
        array = np.asarray(crop, dtype=np.int16)
        if rng.random() < 0.5:
            array = array[:, ::-1]
        array = array + rng.integers(-8, 9, size=array.shape, dtype=np.int16)
        images.append(np.ascontiguousarray(np.clip(array, 0, 255).astype(np.uint8)))
    return images
