"""Benchmark: cold and class-switch times of Recipro-CAM, FEM, KPCA-CAM and Deep Feature Factorization against the
peers that have them.

    python bench/headless_methods.py [--model mobilenet_v2] [--repeats 5] [--threads 2] [--skip-peer]

A report, never a test: the exit code is always 0. Times are medians of --repeats runs with
torch.set_num_threads(--threads), on chelsea, at the model's default layer unless the row says otherwise.

Ours:
  cold    ex.cache.clear(), ex.analyze(photo) (not counted), then the first an.cam(method): the passes the method
          needs (Recipro-CAM: h·w masked copies through the head, or full passes at a layer the head does not follow;
          DFF: NMF and k concept vectors through the head) and its arithmetic;
  switch  the first call for another class on that Analysis (top-2, top-3, ...).
Peers (pytorch-grad-cam 1.5.7 on their own deep copy with trainable parameters; they cache nothing, so every call is
a full run): the first call (top-1 class) and the median over the other classes.
  fem        pytorch-grad-cam FEM (our aggregate="activations" is its definition)
  kpcacam    pytorch-grad-cam KPCA_CAM
  dff        pytorch-grad-cam DeepFeatureFactorization with the classifier on the concepts (k = 5); it has no
             class-specific map, so its every call is the factorisation and the concepts' scores
  reciprocam no peer (pytorch-grad-cam and torchcam do not implement it)
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from new_methods import median_ms, ours_times, timed, trainable_copy  # bench/ is the script's own folder
from switch import cpu_model, load_average

from cam_core import Explainer

FULL_PASS_LAYER = {"mobilenet_v2": "features.16", "efficientnet_lite0": "blocks.6"}


def peer_times(make: Callable[[int], object], classes: list[int], repeats: int) -> tuple[list[float], list[float]]:
    """The peer's first call (top-1 class), and its calls for the other classes."""
    first = [timed(lambda: make(classes[0]))]
    others = [timed(lambda target=target: make(target)) for target in classes[1 : repeats + 1]]
    gc.collect()
    return first, others


def pgc_call(cam_class, model, layer: str, model_input: torch.Tensor) -> Callable[[int], object]:
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    def make(target: int):
        cam = cam_class(model=model, target_layers=[model.get_submodule(layer)])
        try:
            return cam(input_tensor=model_input.clone(), targets=[ClassifierOutputTarget(target)])
        finally:
            cam.activations_and_grads.release()

    return make


def dff_call(model, layer: str, classifier: str, model_input: torch.Tensor, k: int) -> Callable[[int], object]:
    from pytorch_grad_cam import DeepFeatureFactorization

    def make(_target: int):
        dff = DeepFeatureFactorization(model, model.get_submodule(layer),
                                       computation_on_concepts=model.get_submodule(classifier))
        try:
            return dff(model_input.clone(), k)
        finally:
            dff.activations_and_grads.release()

    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2", choices=sorted(FULL_PASS_LAYER))
    parser.add_argument("--repeats", type=int, default=5, help="runs per median (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--skip-peer", action="store_true", help="leave out pytorch-grad-cam")
    args = parser.parse_args()
    repeats = max(2, args.repeats)
    torch.set_num_threads(args.threads)
    from pytorch_grad_cam import FEM, KPCA_CAM
    from skimage import data

    picture = data.chelsea()
    ex = Explainer(args.model)
    layer, full = ex.default_layer, FULL_PASS_LAYER[args.model]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, CPU: {cpu_model()}")
    print(f"python {platform.python_version()}, load average {load_average()} (timings are only meaningful on an "
          "otherwise idle machine)")
    an = ex.analyze(picture)
    classes = [index for index, _, _ in an.top_k(repeats + 1)]
    model_input = an.input
    an.cam("reciprocam")  # one-time costs (kernels, the replicas) out of the table
    del an
    peer = None if args.skip_peer else trainable_copy(ex.model.module)
    rows = [
        ("reciprocam", f"reciprocam (head, {layer})", {}, None),
        ("reciprocam", f"reciprocam (full passes, {full})", {"layer": full}, None),
        ("fem", "fem", {}, None if peer is None else ("pytorch-grad-cam FEM", pgc_call(FEM, peer, layer, model_input))),
        ("kpcacam", "kpcacam", {},
         None if peer is None else ("pytorch-grad-cam KPCA_CAM", pgc_call(KPCA_CAM, peer, layer, model_input))),
        ("dff", "dff (k = 5)", {},
         None if peer is None else ("pytorch-grad-cam DeepFeatureFactorization (k = 5)",
                                    dff_call(peer, layer, ex.spec.head[-1], model_input, 5))),
    ]
    print(f"model {args.model}, chelsea, default layer {layer}; classes {classes}; medians of {repeats} runs")
    print(f"{'method':36s} {'cold ms':>9s} {'switch ms':>10s}   peer: {'first ms':>9s} {'other ms':>9s}")
    for method, label, params, against in rows:
        cold, switch = ours_times(ex, picture, method, params, classes, repeats)
        line = f"{label:36s} {median_ms(cold):9.1f} {median_ms(switch):10.1f}"
        if against is None:
            line += "   no peer" if method == "reciprocam" else ""
        else:
            name, make = against
            first, others = peer_times(make, classes, repeats)
            line += f"   {median_ms(first):9.1f} {median_ms(others):9.1f}  {name}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
