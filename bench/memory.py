"""Benchmark: the process's resident memory over 100 different uploads in a row on one Explainer.

    python bench/memory.py [--model mobilenet_v2] [--images 100] [--cache-bytes N] [--methods gradcam,layercam,...]

Each image is a distinct ~800×600 photo (scripts/measure.py's: a random crop of a scikit-image photo, resized, maybe
flipped, with noise). For each: analyze + cam for every method (default: gradcam, layercam, clustercam — the last
scores masked inputs and keeps the score matrix and the channel clusters in the Analysis), then VmRSS from
/proc/self/status.
Prints the RSS after images 1, 10, 50 and 100, the peak, and what the cache holds (bytes, entries).
A report, never a test: the exit code is always 0.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cam_core import Explainer  # noqa: E402
from scripts.measure import MIB, distinct_images, rss_bytes  # noqa: E402


def run(explainer: Explainer, images: list[np.ndarray], methods: list[str], quiet: bool = False) -> list[int]:
    """analyze + each method's map for each image; the RSS after each image."""
    curve = []
    for i, image in enumerate(images, 1):
        analysis = explainer.analyze(image)
        for method in methods:
            analysis.cam(method)
        curve.append(rss_bytes())
        if not quiet and (i in (1, 10, 50, 100) or i % 25 == 0):
            print(f"  image {i:3d}: RSS {curve[-1] / MIB:7.1f} MiB, cache {explainer.cache.nbytes / MIB:6.1f} MiB "
                  f"in {len(explainer.cache)} analyses", flush=True)
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--cache-bytes", type=int, default=None, help="default: $CAM_CACHE_BYTES or 1 GiB")
    parser.add_argument("--methods", default="gradcam,layercam,clustercam")
    args = parser.parse_args()
    methods = args.methods.split(",")
    images = distinct_images(args.images)
    start = rss_bytes()
    explainer = Explainer(args.model, cache_bytes=args.cache_bytes)
    loaded = rss_bytes()
    print(f"{args.model}, cache bound {explainer.cache.max_bytes / MIB:.0f} MiB, methods {', '.join(methods)}, "
          f"{len(images)} images of {images[0].shape[1]}×{images[0].shape[0]}")
    print(f"RSS before the model {start / MIB:.1f} MiB (images generated), after loading it {loaded / MIB:.1f} MiB")
    started = time.perf_counter()
    curve = run(explainer, images, methods)
    seconds = time.perf_counter() - started
    entries = len(explainer.cache)
    held = explainer.cache.nbytes
    print(f"{len(images)} images in {seconds:.1f} s ({seconds / len(images) * 1000:.0f} ms each)")
    marks = [n for n in (1, 10, 50, 100) if n <= len(curve)]
    print("RSS after image " + ", ".join(f"{n}: {curve[n - 1] / MIB:.1f} MiB" for n in marks))
    print(f"peak RSS {max(curve) / MIB:.1f} MiB (image {int(np.argmax(curve)) + 1}); "
          f"growth from image 10 to the last {(curve[-1] - curve[min(9, len(curve) - 1)]) / MIB:+.1f} MiB")
    print(f"cache holds {held / MIB:.1f} MiB in {entries} analyses ({held / max(entries, 1) / MIB:.2f} MiB each) "
          f"of a {explainer.cache.max_bytes / MIB:.0f} MiB bound")


if __name__ == "__main__":
    main()
