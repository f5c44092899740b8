"""Benchmark: cold and class-switch times of FullGrad, Finer-CAM and ShapleyCAM, against the peers' implementations.

    python bench/gradient_family_methods.py [--model mobilenet_v2] [--repeats 3] [--threads 2] [--skip-peer]

A report, never a test: the exit code is always 0. Every time is the median of --repeats runs, with
torch.set_num_threads(--threads), on scikit-image's chelsea; each method first runs once on coffee, so one-time
costs (kernels) stay out of the numbers.

Ours, per method:
  cold    ex.cache.clear(), then ex.analyze(photo) and the first an.cam(method) for the top-1 class: every pass the
          method needs (FullGrad: a pass whose graph reaches the input; Finer-CAM: the backwards of the target and
          its compared classes; ShapleyCAM: a backward that keeps its graph and one through it) and the arithmetic;
  switch  the first call for another class on that Analysis (top-2, top-3, ...): only what depends on the class.
Peers cache nothing, so every call is a full forward and backward; their first call (top-1) and the median over the
same other classes:
  fullgrad    pytorch-grad-cam FullGrad (its 224×224 map; most of its time is cv2-resizing every channel)
  finercam    pytorch-grad-cam FinerCAM (the authors' objective) and torchcam FinerCAM (its γ = 0.6 mean)
  shapleycam  pytorch-grad-cam ShapleyCAM with ClassifierOutputReST
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from new_methods import median_ms, timed, trainable_copy  # bench/ is the script's own folder
from switch import cpu_model, load_average

from cam_core import Explainer

METHODS = ("fullgrad", "finercam", "shapleycam")


def ours(ex: Explainer, picture, method: str, classes: list[int], repeats: int) -> tuple[list[float], list[float]]:
    """Cold times (fresh Analysis, its first pass included) and class-switch times of an.cam(method)."""
    cold, switch = [], []
    for _ in range(repeats):
        ex.cache.clear()
        gc.collect()
        started = time.perf_counter()
        an = ex.analyze(picture)
        an.cam(method, target=classes[0])
        cold.append(time.perf_counter() - started)
    for target in classes[1 : repeats + 1]:
        switch.append(timed(lambda an=an, target=target: an.cam(method, target=target)))
    ex.cache.clear()
    gc.collect()
    return cold, switch


def pgc_call(make_cam: Callable[[], object], model_input: torch.Tensor, targets: Callable[[int], dict]):
    """A pytorch-grad-cam call for one class: a new object each time (hooks released after)."""

    def make(target: int):
        cam = make_cam()
        base = getattr(cam, "base_cam", cam)
        try:
            return cam(input_tensor=model_input.clone(), **targets(target))
        finally:
            base.activations_and_grads.release()

    return make


def torchcam_finer_call(model: torch.nn.Module, layer: str, model_input: torch.Tensor):
    from torchcam.methods import FinerCAM

    def make(target: int):
        with FinerCAM(model, layer, gamma=0.6, num_references=3) as extractor:
            scores = model(model_input.clone())
            return extractor(class_idx=target, scores=scores)

    return make


def peers(ex: Explainer, model_input: torch.Tensor) -> dict[str, list[tuple[str, Callable[[int], object]]]]:
    from pytorch_grad_cam import FinerCAM, FullGrad, ShapleyCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputReST, ClassifierOutputTarget

    model = trainable_copy(ex.model.module)
    layer = model.get_submodule(ex.default_layer)
    return {
        "fullgrad": [("pytorch-grad-cam FullGrad", pgc_call(
            lambda: FullGrad(model, []), model_input, lambda c: {"targets": [ClassifierOutputTarget(c)]}))],
        "finercam": [
            ("pytorch-grad-cam FinerCAM", pgc_call(
                lambda: FinerCAM(model, [layer]), model_input, lambda c: {"targets": None, "target_idx": c})),
            ("torchcam FinerCAM", torchcam_finer_call(model, ex.default_layer, model_input)),
        ],
        "shapleycam": [("pytorch-grad-cam ShapleyCAM", pgc_call(
            lambda: ShapleyCAM(model, [layer]), model_input, lambda c: {"targets": [ClassifierOutputReST(c)]}))],
    }


def peer_times(make: Callable[[int], object], classes: list[int], repeats: int) -> tuple[float, float] | str:
    """The peer's first call (top-1) and its median over the other classes, in ms, or what failed."""
    try:
        first = timed(lambda: make(classes[0]))
        others = [timed(lambda target=target: make(target)) for target in classes[1 : repeats + 1]]
    except Exception as exc:  # noqa: BLE001 - a report: say what failed and go on
        return f"failed: {type(exc).__name__}: {exc}"
    finally:
        gc.collect()
    return first * 1e3, median_ms(others)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--repeats", type=int, default=3, help="runs per median (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--skip-peer", action="store_true", help="leave out pytorch-grad-cam and torchcam")
    args = parser.parse_args()
    repeats = max(1, args.repeats)
    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    from skimage import data

    picture, other_picture = data.chelsea(), data.coffee()
    ex = Explainer(args.model)
    warm = ex.analyze(other_picture)
    for method in METHODS:
        warm.cam(method)
    del warm
    ex.cache.clear()
    an = ex.analyze(picture)
    classes = [index for index, _, _ in an.top_k(repeats + 1)]
    model_input = an.input
    del an
    print(f"{args.model} on chelsea · {cpu_model()} · {platform.python_version()} · torch {torch.__version__} · "
          f"{args.threads} threads · load {load_average()} · median of {repeats}")
    print(f"{'method':12s} {'ours cold ms':>13s} {'ours switch ms':>15s}   peer (first call ms / another class ms)")
    found = {} if args.skip_peer else peers(ex, model_input)
    for method in METHODS:
        cold, switch = ours(ex, picture, method, classes, repeats)
        line = f"{method:12s} {median_ms(cold):13.0f} {median_ms(switch):15.1f}"
        for name, make in found.get(method, []):
            times = peer_times(make, classes, repeats)
            line += f"   {name}: " + (times if isinstance(times, str) else f"{times[0]:.0f} / {times[1]:.0f}")
        print(line, flush=True)
    print(f"total {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
