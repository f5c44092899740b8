"""Benchmark: cold and warm times of the path, multi-layer and guided methods, against the peers where they compute
the same thing.

    python bench/new_methods.py [--model mobilenet_v2] [--repeats 5] [--threads 2] [--skip-peer]

A report, never a test: the exit code is always 0. Every time is the median of --repeats runs, with
torch.set_num_threads(--threads). Before timing, each method runs once on another photo (coffee), so one-time costs
(kernels, the guided copy of the model: its build is timed separately) stay out of the numbers.

Ours, per method (chelsea, the model's top-1 class first):
  cold       ex.cache.clear(), ex.analyze(photo) (timed apart: one forward hooked at the default layer), then the
             first an.cam(method): the passes the method needs (noisy or path batches, the other layers' hooked
             forwards, the guided pass) and its backward;
  same class the same call again on that Analysis (arithmetic and the resize to the image: everything cached);
  switch     the first call for another class on that Analysis (top-2, top-3, ...): only the backward(s) for the new
             class and the arithmetic.
Peers (one object per method on its own deep copy with trainable parameters; they cache nothing, so every call is
a full forward + backward): the first call, then the median over the same other classes.
  gradcam                   pytorch-grad-cam GradCAM (for scale)
  smoothgradcampp           torchcam SmoothGradCAMpp, num_samples = our samples (8), std = our sigma × input range
  layercam                  pytorch-grad-cam LayerCAM, the default layer
  layercam fused            pytorch-grad-cam LayerCAM with the pyramid's layers (mean fusion at 224×224), and
                            torchcam LayerCAM on the same layers + LayerCAM.fuse_cams (our fusion="max")
  guidedbackprop (resnet18) pytorch-grad-cam GuidedBackpropReLUModel; both on torchvision resnet18 with random
                            weights, since the peer only guides nn.ReLU (on mobilenet_v2's ReLU6 it guides nothing)
  guidedgradcam (resnet18)  the peer's README recipe: GuidedBackpropReLUModel × GradCAM's 224×224 map
intgradcam, zoomcam and gradpolycam have no peer here.
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from switch import cpu_model, load_average  # bench/ is the script's own folder

from cam_core import Explainer
from cam_core.registry import get_method


def median_ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1e3


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def trainable_copy(module: torch.nn.Module) -> torch.nn.Module:
    model = copy.deepcopy(module)
    model.requires_grad_(True)
    return model.eval()


def ours_times(ex: Explainer, picture, method: str, params: dict, classes: list[int], repeats: int
               ) -> tuple[list[float], list[float]]:
    """Cold times (fresh Analysis, first map) and class-switch times of an.cam(method, **params)."""
    cold, switch = [], []
    for run in range(repeats):
        ex.cache.clear()
        gc.collect()
        an = ex.analyze(picture)
        cold.append(timed(lambda an=an: an.cam(method, target=classes[0], **params)))
        other = classes[1 + run % (len(classes) - 1)]
        switch.append(timed(lambda an=an, other=other: an.cam(method, target=other, **params)))
    ex.cache.clear()
    gc.collect()
    return cold, switch


class Row:
    def __init__(self, label: str, model: str):
        self.label, self.model = label, model
        self.cold: list[float] = []
        self.cold_total: list[float] = []
        self.same: list[float] = []
        self.switch: list[float] = []
        self.peers: list[tuple[str, list[float], list[float]] | tuple[str, str]] = []


def ours(ex: Explainer, picture, label: str, method: str, params: dict, classes: list[int], repeats: int) -> Row:
    """Cold, same-class and class-switch timings of an.cam(method, **params)."""
    row = Row(label, ex.name)
    top1 = classes[0]
    for _ in range(repeats):
        ex.cache.clear()
        gc.collect()  # free the previous Analysis outside the timed region
        started = time.perf_counter()
        an = ex.analyze(picture)
        analyzed = time.perf_counter()
        an.cam(method, target=top1, **params)
        finished = time.perf_counter()
        row.cold.append(finished - analyzed)
        row.cold_total.append(finished - started)
    for _ in range(repeats):
        row.same.append(timed(lambda an=an: an.cam(method, target=top1, **params)))
    for target in classes[1 : repeats + 1]:
        row.switch.append(timed(lambda an=an, target=target: an.cam(method, target=target, **params)))
    ex.cache.clear()
    gc.collect()
    return row


def peer_times(name: str, make: Callable[[int], object], classes: list[int], repeats: int, row: Row) -> None:
    """The peer's first call (top-1 class) and its median over the other classes."""
    try:
        first = [timed(lambda: make(classes[0]))]
        others = [timed(lambda target=target: make(target)) for target in classes[1 : repeats + 1]]
        row.peers.append((name, first, others))
    except Exception as exc:  # noqa: BLE001 - a report: say what failed and go on
        row.peers.append((name, f"failed: {type(exc).__name__}: {exc}"))
    gc.collect()


def pgc_call(cam_class, model, layers: list[str], model_input: torch.Tensor, **kwargs) -> Callable[[int], object]:
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    def make(target: int):
        cam = cam_class(model=model, target_layers=[model.get_submodule(name) for name in layers], **kwargs)
        try:
            return cam(input_tensor=model_input.clone(), targets=[ClassifierOutputTarget(target)])
        finally:
            cam.activations_and_grads.release()

    return make


def torchcam_layercam_call(model, layers: list[str], model_input: torch.Tensor) -> Callable[[int], object]:
    from torchcam.methods import LayerCAM

    def make(target: int):
        with LayerCAM(model, layers) as extractor:
            scores = model(model_input.clone())
            cams = extractor(class_idx=target, scores=scores)
            return LayerCAM.fuse_cams(cams)

    return make


def torchcam_smooth_call(model, layer: str, model_input: torch.Tensor, samples: int, std: float):
    from torchcam.methods import SmoothGradCAMpp

    def make(target: int):
        with SmoothGradCAMpp(model, layer, num_samples=samples, std=std) as extractor:
            model(model_input.clone())
            return extractor(class_idx=target)

    return make


def guided_call(model, model_input: torch.Tensor) -> Callable[[int], object]:
    from pytorch_grad_cam import GuidedBackpropReLUModel

    def make(target: int):
        return GuidedBackpropReLUModel(model, device="cpu")(model_input.clone(), target_category=target)

    return make


def guided_gradcam_call(model, layer: str, model_input: torch.Tensor) -> Callable[[int], object]:
    from pytorch_grad_cam import GradCAM

    guided = guided_call(model, model_input)
    gradcam = pgc_call(GradCAM, model, [layer], model_input)

    def make(target: int):
        return guided(target) * gradcam(target)[0][..., None]

    return make


def warm_up(ex: Explainer, picture, methods: list[tuple[str, str, dict]]) -> float:
    """One call of every method on another photo; returns the seconds the guided copy took to build."""
    build = timed(ex.guided_model)
    an = ex.analyze(picture)
    for _, method, params in methods:
        an.cam(method, **params)
    del an
    ex.cache.clear()
    gc.collect()
    return build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--repeats", type=int, default=5, help="runs per median (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--skip-peer", action="store_true", help="leave out pytorch-grad-cam and torchcam")
    args = parser.parse_args()
    repeats = max(1, args.repeats)
    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    from skimage import data

    picture, other_picture = data.chelsea(), data.coffee()
    ex = Explainer(args.model)
    pyramid = ex.model.pyramid()
    layer = ex.default_layer
    smooth_defaults = {p.name: p.default for p in get_method("smoothgradcampp").card.params}
    methods = [
        ("gradcam", "gradcam", {}),
        (f"smoothgradcampp (n={smooth_defaults['samples']})", "smoothgradcampp", {}),
        ("intgradcam", "intgradcam", {}),
        ("layercam", "layercam", {}),
        (f"layercam fused max ({len(pyramid)} layers)", "layercam", {"layers": pyramid, "fusion": "max"}),
        (f"zoomcam ({len(pyramid)} layers)", "zoomcam", {}),
        (f"gradpolycam ({len(pyramid)} layers)", "gradpolycam", {}),
        ("guidedbackprop", "guidedbackprop", {}),
        ("guidedgradcam", "guidedgradcam", {}),
    ]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, CPU: {cpu_model()}")
    print(f"python {platform.python_version()}, load average {load_average()} (timings are only meaningful on an "
          "otherwise idle machine)")
    build = warm_up(ex, other_picture, methods)
    an = ex.analyze(picture)
    classes = [index for index, _, _ in an.top_k(repeats + 1)]
    model_input = an.input
    span = float(model_input.max() - model_input.min())
    del an
    analyze = []
    for _ in range(repeats):
        ex.cache.clear()
        gc.collect()
        analyze.append(timed(lambda: ex.analyze(picture)))
    ex.cache.clear()
    print(f"model {args.model}, chelsea, default layer {layer}, pyramid {', '.join(pyramid)}; classes {classes}")
    print(f"analyze (one forward hooked at {layer}): median {median_ms(analyze):.1f} ms; guided copy built once per "
          f"Explainer in {build * 1e3:.0f} ms (not in the table)")

    rows = []
    for label, method, params in methods:
        rows.append(ours(ex, picture, label, method, params, classes, repeats))
        print(f"  timed {label}", flush=True)

    if not args.skip_peer:
        from pytorch_grad_cam import GradCAM, LayerCAM

        peer = trainable_copy(ex.model.module)
        by_label = {row.label: row for row in rows}
        peer_times("pytorch-grad-cam GradCAM", pgc_call(GradCAM, peer, [layer], model_input), classes, repeats,
                   by_label["gradcam"])
        smooth = by_label[methods[1][0]]
        peer_times(
            f"torchcam SmoothGradCAMpp (n={smooth_defaults['samples']})",
            torchcam_smooth_call(peer, layer, model_input, int(smooth_defaults["samples"]),
                                 float(smooth_defaults["sigma"]) * span),
            classes, repeats, smooth,
        )
        peer_times("pytorch-grad-cam LayerCAM", pgc_call(LayerCAM, peer, [layer], model_input), classes, repeats,
                   by_label["layercam"])
        fused = by_label[methods[4][0]]
        peer_times(f"pytorch-grad-cam LayerCAM ({len(pyramid)} layers, mean)",
                   pgc_call(LayerCAM, peer, pyramid, model_input), classes, repeats, fused)
        peer_times(f"torchcam LayerCAM + fuse_cams ({len(pyramid)} layers, max)",
                   torchcam_layercam_call(peer, pyramid, model_input), classes, repeats, fused)
        del peer

    # Guided methods against GuidedBackpropReLUModel: resnet18 with random weights (plain nn.ReLU).
    torch.manual_seed(0)
    resnet = Explainer("resnet18", weights="random")
    guided_methods = [("guidedbackprop", "guidedbackprop", {}), ("guidedgradcam", "guidedgradcam", {})]
    resnet_build = warm_up(resnet, other_picture, guided_methods)
    an = resnet.analyze(picture)
    resnet_classes = [index for index, _, _ in an.top_k(repeats + 1)]
    resnet_input = an.input
    del an
    print(f"resnet18 (random weights): guided copy built in {resnet_build * 1e3:.0f} ms; classes {resnet_classes}")
    guided_rows = [ours(resnet, picture, label, method, params, resnet_classes, repeats)
                   for label, method, params in guided_methods]
    if not args.skip_peer:
        peer = trainable_copy(resnet.model.module)
        peer_times("pytorch-grad-cam GuidedBackpropReLUModel", guided_call(peer, resnet_input), resnet_classes,
                   repeats, guided_rows[0])
        peer_times("GuidedBackpropReLUModel × GradCAM (README)",
                   guided_gradcam_call(peer, resnet.default_layer, resnet_input), resnet_classes, repeats,
                   guided_rows[1])
        del peer
    rows.extend(guided_rows)

    print(f"\n### {args.model} (guided peers on resnet18 random), chelsea, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, median of {repeats}, ms\n")
    print("| method | model | ours cold | ours cold + analyze | ours same class | ours class switch | peer "
          "| peer first call | peer other classes |")
    print("|---|---|--:|--:|--:|--:|---|--:|--:|")
    for row in rows:
        cells = [row.label, row.model, f"{median_ms(row.cold):.1f}", f"{median_ms(row.cold_total):.1f}",
                 f"{median_ms(row.same):.2f}", f"{median_ms(row.switch):.2f}"]
        peers = row.peers or [("n/a", "")]
        for index, entry in enumerate(peers):
            lead = cells if index == 0 else ["", "", "", "", "", ""]
            if len(entry) == 2:
                print("| " + " | ".join([*lead, entry[0], entry[1] or "", ""]) + " |")
            else:
                name, first, others = entry
                print("| " + " | ".join([*lead, name, f"{median_ms(first):.1f}", f"{median_ms(others):.1f}"]) + " |")
    print(f"\ntotal benchmark time {time.perf_counter() - began:.0f} s, load average now {load_average()}")


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - a report: never a failing exit code
        import traceback

        traceback.print_exc()
        print(f"benchmark stopped early: {type(exc).__name__}: {exc}")
    sys.exit(0)
