"""Benchmark: what a class or method switch costs in cam_core, against the bare model and pytorch-grad-cam.

    python bench/switch.py [--model mobilenet_v2] [--repeats 20] [--image PATH]

Prints (a report, never a test: the exit code is always 0):
  1. the bare model: a plain forward + backward of the top-1 logit on a deepcopy with trainable parameters (what a
     plain Grad-CAM implementation pays per call), and a plain forward under no_grad;
  2. cold: ex.analyze(image) + the first Grad-CAM map after ex.cache.clear(), and its ratio to (1);
  3. warm class switch per method: a fresh Analysis per method, then --repeats calls of an.cam(method, target=c) for
     as many distinct classes (the top ones), each the first call for that class on that Analysis;
  4. the same calls through pytorch-grad-cam, one CAM object per method on its own deepcopy of the model;
  5. a table with PASS/FAIL against the targets below.
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cam_core import Explainer, methods  # noqa: E402

# The methods whose class switch at one layer is one backward through the head, or nothing: they read gradients, the
# classifier's weights or the activations alone (from the registry's cards; pyramid methods are bench/new_methods.py's).
CARDS = {card.id: card for card in methods()
         if card.needs - {"layer_stack"} <= {"gradients", "class_weights"} and not card.pyramid_by_default}
METHODS = tuple(CARDS)
COLD_TARGET = 1.5  # cold analyze + first gradcam ≤ 1.5 × (forward + backward)
SWITCH_TARGET_MS = 5.0  # warm class switch median ≤ 5 ms
SPEEDUP_TARGET = 10.0  # peer median / our median ≥ 10


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def ms(seconds: list[float]) -> tuple[float, float]:
    """(median, p90) in milliseconds."""
    values = np.asarray(seconds) * 1e3
    return float(np.median(values)), float(np.percentile(values, 90))


def load_picture(path: str | None):
    if path is None:
        import skimage.data

        return skimage.data.chelsea(), "skimage.data.chelsea()"
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return image.copy(), path


def bare_model(ex: Explainer, model_input: torch.Tensor, runs: int) -> tuple[list[float], list[float]]:
    """Timings of a plain forward + backward of the top-1 logit, and of a plain no_grad forward."""
    module = copy.deepcopy(ex.model.module).eval()
    for parameter in module.parameters():
        parameter.requires_grad_(True)

    def forward_backward() -> None:
        logits = module(model_input)
        logits[0, int(logits[0].argmax())].backward()

    def forward() -> None:
        with torch.no_grad():
            module(model_input)

    both, fwd = [], []
    for _ in range(2):  # warm-up
        module.zero_grad(set_to_none=True)
        forward_backward()
        forward()
    for _ in range(runs):
        module.zero_grad(set_to_none=True)
        started = time.perf_counter()
        forward_backward()
        both.append(time.perf_counter() - started)
    for _ in range(runs):
        started = time.perf_counter()
        forward()
        fwd.append(time.perf_counter() - started)
    gc.collect()
    return both, fwd


def cold(ex: Explainer, picture, runs: int) -> list[float]:
    """Timings of ex.analyze(picture) + an.cam('gradcam') with an empty cache."""
    times = []
    for run in range(runs + 1):  # the first is a warm-up
        ex.cache.clear()
        gc.collect()  # the previous Analysis (and its graph) is freed here, not inside the timed region
        started = time.perf_counter()
        an = ex.analyze(picture)
        an.cam("gradcam")
        elapsed = time.perf_counter() - started
        del an
        if run:
            times.append(elapsed)
    return times


def ours_switch(ex: Explainer, picture, classes: list[int]) -> dict[str, tuple[list[float], int]]:
    """Per method: the timings of one an.cam(method, target=c) per class on a fresh Analysis, and how many of those
    calls computed a new gradient (seen as a growth of an.nbytes)."""
    warm = ex.analyze(picture)
    for method in METHODS:  # warm-up: first-call costs (imports, kernels) paid outside the timed region
        warm.cam(method)
    del warm
    results = {}
    for method in METHODS:
        ex.cache.clear()
        gc.collect()
        an = ex.analyze(picture)
        times, fresh = [], 0
        for target in classes:
            before = an.nbytes
            started = time.perf_counter()
            an.cam(method, target=target)
            times.append(time.perf_counter() - started)
            fresh += an.nbytes > before
        results[method] = (times, fresh)
        del an
    return results


def peer_switch(ex: Explainer, model_input: torch.Tensor, classes: list[int]) -> dict[str, list[float] | str]:
    """Per method: the timings of the same calls through pytorch-grad-cam (or a reason it could not run)."""
    try:
        import pytorch_grad_cam as pgc
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError as exc:
        return {method: f"pytorch-grad-cam missing ({exc})" for method in METHODS}
    peers = {card.id: getattr(pgc, peer.name) for card in CARDS.values() for peer in card.peers
             if peer.library == "pytorch-grad-cam"}
    results: dict[str, list[float] | str] = {}
    for method in METHODS:
        cls = peers.get(method)
        if cls is None:
            results[method] = "n/a"
            continue
        module = copy.deepcopy(ex.model.module).eval()
        for parameter in module.parameters():
            parameter.requires_grad_(True)  # pytorch-grad-cam needs an output that requires grad
        layer = dict(module.named_modules())[ex.default_layer]
        cam_obj = cls(model=module, target_layers=[layer])
        try:
            cam_obj(input_tensor=model_input, targets=[ClassifierOutputTarget(classes[0])])  # warm-up
            times = []
            for target in classes:
                started = time.perf_counter()
                cam_obj(input_tensor=model_input, targets=[ClassifierOutputTarget(target)])
                times.append(time.perf_counter() - started)
            results[method] = times
        except Exception as exc:  # noqa: BLE001 - a report: say what failed and go on
            results[method] = f"failed: {type(exc).__name__}: {exc}"
        finally:
            cam_obj.activations_and_grads.release()
            del cam_obj, module
            gc.collect()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mobilenet_v2", help="a models.yaml entry (default mobilenet_v2)")
    parser.add_argument("--repeats", type=int, default=20, help="classes per warm switch (default 20)")
    parser.add_argument("--image", default=None, help="image path (default skimage.data.chelsea())")
    args = parser.parse_args()
    repeats = max(2, args.repeats)
    runs = max(3, repeats // 2)  # bare-model and cold repetitions (10 by default)
    began = time.perf_counter()

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, CPU: {cpu_model()}")
    print(f"python {platform.python_version()}, model {args.model}, load average {load_average()} "
          "(timings are only meaningful on an otherwise idle machine)")

    picture, picture_name = load_picture(args.image)
    ex = Explainer(args.model)
    an = ex.analyze(picture)
    top = an.top_k(min(repeats, len(ex.labels)))
    classes = [index for index, _, _ in top]
    model_input = an.input
    print(f"image {picture_name}, input {tuple(model_input.shape)}, layer {ex.default_layer}, "
          f"top-1 {top[0][0]} {top[0][1]} ({top[0][2]:.2f})")
    del an

    # 1. bare model
    both, fwd = bare_model(ex, model_input, runs)
    both_med, _ = ms(both)
    fwd_med, _ = ms(fwd)
    print(f"\n[1] bare model ({runs} runs, deepcopy with trainable parameters)")
    print(f"    forward + backward of the top-1 logit: median {both_med:.1f} ms")
    print(f"    forward only (no_grad):                median {fwd_med:.1f} ms")

    # 2. cold
    cold_med, cold_p90 = ms(cold(ex, picture, runs))
    cold_ratio = cold_med / both_med
    cold_pass = cold_ratio <= COLD_TARGET
    print(f"\n[2] cold: cache.clear(); analyze + first gradcam ({runs} runs)")
    print(f"    median {cold_med:.1f} ms, p90 {cold_p90:.1f} ms = {cold_ratio:.2f}× forward+backward "
          f"(target ≤ {COLD_TARGET}×) {'PASS' if cold_pass else 'FAIL'}")

    # 3. ours, warm switch
    ours = ours_switch(ex, picture, classes)
    count = len(classes)
    print(f"\n[3] warm class switch, ours: fresh Analysis per method, {count} distinct classes (top-{count})")
    for method, (times, fresh) in ours.items():
        med, p90 = ms(times)
        print(f"    {method:<13} median {med:7.2f} ms  p90 {p90:7.2f} ms  new gradients computed: {fresh}/{len(times)}")

    # 4. pytorch-grad-cam
    peer = peer_switch(ex, model_input, classes)
    print(f"\n[4] pytorch-grad-cam, same {len(classes)} classes, one CAM object per method on its own deepcopy")
    for method, value in peer.items():
        if isinstance(value, str):
            print(f"    {method:<13} {value}")
        else:
            med, p90 = ms(value)
            print(f"    {method:<13} median {med:7.2f} ms  p90 {p90:7.2f} ms")

    # 5. table
    header = ("method", "ours med ms", "ours p90 ms", "peer med ms", "speed-up", f"switch≤{SWITCH_TARGET_MS:g}ms",
              f"speed-up≥{SPEEDUP_TARGET:g}×")
    rows = []
    for method in METHODS:
        times, _ = ours[method]
        med, p90 = ms(times)
        peer_value = peer[method]
        if isinstance(peer_value, str):
            peer_cell, ratio_cell, ratio_status = "n/a", "n/a", "n/a"
        else:
            peer_med, _ = ms(peer_value)
            ratio = peer_med / med
            peer_cell, ratio_cell = f"{peer_med:.2f}", f"{ratio:.1f}×"
            ratio_status = "PASS" if ratio >= SPEEDUP_TARGET else "FAIL"
        rows.append((method, f"{med:.2f}", f"{p90:.2f}", peer_cell, ratio_cell,
                     "PASS" if med <= SWITCH_TARGET_MS else "FAIL", ratio_status))
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]

    def line(cells) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in pairs)

    print(f"\n[5] summary ({args.model}, {picture_name}, torch {torch.__version__}, {torch.get_num_threads()} threads)")
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
    print(f"cold analyze + first gradcam: {cold_med:.1f} ms = {cold_ratio:.2f}× forward+backward ({both_med:.1f} ms; "
          f"forward alone {fwd_med:.1f} ms), target ≤ {COLD_TARGET}×: {'PASS' if cold_pass else 'FAIL'}")
    print(f"total benchmark time {time.perf_counter() - began:.1f} s, load average now {load_average()}")
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - a report: never a failing exit code
        import traceback

        traceback.print_exc()
        print(f"benchmark stopped early: {type(exc).__name__}: {exc}")
    sys.exit(0)
