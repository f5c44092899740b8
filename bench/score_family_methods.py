"""Benchmark: cold and class-switch times of Score-CAM, its faster option, SS-CAM and IS-CAM against the peers, and
how close the faster Score-CAM's map stays to the full one.

    python bench/score_family_methods.py [--model mobilenet_v2] [--layer NAME] [--samples N] [--repeats 3]
                                         [--threads 2] [--skip-peer] [--skip-timing]

A report, never a test: the exit code is always 0. Times are medians of --repeats runs with
torch.set_num_threads(--threads).

Timing (chelsea, at --layer, default the model's default layer):
  cold    ex.cache.clear(), ex.analyze(photo) (not counted), then the first an.cam(method): every masked pass
          (channels × samples of them) and the arithmetic;
  switch  the first call for another class on that Analysis (top-2, top-3, ...): the passes are cached, only the
          weights change.
  SS-CAM and IS-CAM run --samples samples a channel (default: their cards' 10); the cost is linear in it.
Peers (their own deep copy with trainable parameters; they cache nothing, so every call runs every pass): the first
call (top-1) and the median over the other classes.
  scorecam        pytorch-grad-cam ScoreCAM (the card's peer), batch size 32
  sscam, iscam    torchcam 0.5.0 SSCAM (std 2) and ISCAM with num_samples = our samples, batch size 32
  scorecam top N  tf-keras-vis's Faster Score-CAM (max_N) is a TensorFlow library, not installed: no peer
Faster Score-CAM fidelity (chelsea, coffee, and dog where darknet is installed, at the model's default
layer): Pearson r of the raw map with top_channels = 10 % and 25 % against the full Score-CAM's, top-1 class, and
the cold time of each (the full Score-CAM's passes are cached apart from the faster ones' on a fresh Analysis).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from new_methods import median_ms, ours_times, timed, trainable_copy  # bench/ is the script's own folder
from switch import cpu_model, load_average

from cam_core import Explainer
from cam_core.registry import get_method

FRACTIONS = (0.1, 0.25)
DOG = Path("/usr/share/darknet/data/dog.jpg")


def peer_times(make: Callable[[int], object], classes: list[int], repeats: int) -> tuple[list[float], list[float]]:
    """The peer's first calls (top-1 class) and its calls for the other classes."""
    first = [timed(lambda: make(classes[0])) for _ in range(repeats)]
    others = [timed(lambda target=target: make(target)) for target in classes[1 : repeats + 1]]
    gc.collect()
    return first, others


def gradcam_scorecam_call(model, layer: str, model_input: torch.Tensor) -> Callable[[int], object]:
    from pytorch_grad_cam import ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cam = ScoreCAM(model=model, target_layers=[dict(model.named_modules())[layer]])
    cam.batch_size = 32
    return lambda target: cam(input_tensor=model_input, targets=[ClassifierOutputTarget(target)])


def torchcam_call(kind: str, model, layer: str, model_input: torch.Tensor, samples: int) -> Callable[[int], object]:
    from torchcam.methods import ISCAM, SSCAM

    def run(target: int) -> object:
        extractor_class, options = (SSCAM, {"std": 2.0}) if kind == "sscam" else (ISCAM, {})
        with extractor_class(model, target_layer=layer, batch_size=32, num_samples=samples, **options) as extractor:
            with torch.no_grad():
                model(model_input)
            return extractor(class_idx=target)

    return run


def timing(ex: Explainer, picture, layer: str, samples: int, repeats: int, skip_peer: bool) -> None:
    an = ex.analyze(picture)
    classes = [index for index, _, _ in an.top_k(repeats + 1)]
    model_input = an.input.detach().clone()
    channels = an.activations(layer).shape[0]
    del an
    rows = [
        ("scorecam", f"scorecam ({channels} passes)", {}),
        *[("scorecam", f"scorecam top {fraction:.0%} ({max(1, round(fraction * channels))} passes)",
           {"top_channels": fraction}) for fraction in FRACTIONS],
        ("sscam", f"sscam (n={samples}, {channels * samples} passes)", {"samples": samples}),
        ("iscam", f"iscam (n={samples}, {channels * samples} passes)", {"samples": samples}),
    ]
    peer = None if skip_peer else trainable_copy(ex.model.module)
    peers = {} if peer is None else {
        "scorecam": ("pytorch-grad-cam ScoreCAM", gradcam_scorecam_call(peer, layer, model_input)),
        "sscam": (f"torchcam SSCAM (n={samples})", torchcam_call("sscam", peer, layer, model_input, samples)),
        "iscam": (f"torchcam ISCAM (n={samples})", torchcam_call("iscam", peer, layer, model_input, samples)),
    }
    print(f"\ntiming: chelsea at {layer} ({channels} channels), classes {classes}; medians of {repeats}")
    print(f"{'method':38s} {'cold ms':>10s} {'switch ms':>10s}   {'peer':30s} {'first ms':>10s} {'other ms':>10s}")
    for method, label, params in rows:
        cold, switch = ours_times(ex, picture, method, {"layer": layer, **params}, classes, repeats)
        line = f"{label:38s} {median_ms(cold):10.0f} {median_ms(switch):10.1f}"
        if method in peers and not params.get("top_channels"):
            name, call = peers.pop(method)
            first, others = peer_times(call, classes, repeats)
            line += f"   {name:30s} {median_ms(first):10.0f} {median_ms(others):10.0f}"
        else:
            line += "   " + ("no peer (tf-keras-vis is TensorFlow)" if params.get("top_channels") else "")
        print(line, flush=True)


def fidelity(ex: Explainer, photos: dict) -> None:
    layer = ex.default_layer
    print(f"\nfaster Score-CAM against the full Score-CAM at {layer} (top-1 class, raw maps)")
    print(f"{'photo':12s} {'full ms':>9s} " + " ".join(f"{f'top {f:.0%} ms':>12s} {f'r {f:.0%}':>8s}"
                                                  for f in FRACTIONS))
    for name, picture in photos.items():
        ex.cache.clear()
        gc.collect()
        an = ex.analyze(picture)
        seconds = timed(lambda an=an: an.cam("scorecam"))
        full = an.cam("scorecam").raw.ravel()
        cells = [f"{name:12s} {seconds * 1e3:9.0f}"]
        for fraction in FRACTIONS:
            seconds = timed(lambda an=an, fraction=fraction: an.cam("scorecam", top_channels=fraction))
            faster = an.cam("scorecam", top_channels=fraction).raw.ravel()
            cells.append(f"{seconds * 1e3:12.0f} {np.corrcoef(full, faster)[0, 1]:8.4f}")
        print(" ".join(cells), flush=True)
    ex.cache.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--layer", default=None, help="the timing table's layer (default: the model's default)")
    parser.add_argument("--samples", type=int, default=None, help="SS-CAM's and IS-CAM's samples (default: cards')")
    parser.add_argument("--repeats", type=int, default=3, help="runs per median (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--skip-peer", action="store_true", help="leave out pytorch-grad-cam and torchcam")
    parser.add_argument("--skip-timing", action="store_true", help="only the faster Score-CAM's fidelity")
    args = parser.parse_args()
    repeats = max(1, args.repeats)
    torch.set_num_threads(args.threads)
    from PIL import Image
    from skimage import data

    ex = Explainer(args.model)
    samples = args.samples or int(next(p.default for p in get_method("sscam").card.params if p.name == "samples"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, CPU: {cpu_model()}")
    print(f"python {platform.python_version()}, load average {load_average()} (timings are only meaningful on an "
          "otherwise idle machine)")
    ex.analyze(data.coffee()).cam("scorecam", layer=args.layer or ex.default_layer, top_channels=0.01)  # warm-up
    if not args.skip_timing:
        timing(ex, data.chelsea(), args.layer or ex.default_layer, samples, repeats, args.skip_peer)
    photos = {name: getattr(data, name)() for name in ("chelsea", "coffee")}
    if DOG.exists():
        photos["dog"] = np.asarray(Image.open(DOG).convert("RGB"))
    fidelity(ex, photos)
    print(f"\nload average at the end {load_average()}")


if __name__ == "__main__":
    main()
