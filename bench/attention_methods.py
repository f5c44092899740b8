"""Benchmark: cold and class-switch times of attention rollout and Chefer et al.'s relevance on ViT-S/16 and
DeiT-S/16 (random weights: none are offline; the times do not depend on the weights).

    python bench/attention_methods.py [--repeats 5] [--threads 2] [--skip-peer]

A report, never a test: the exit code is always 0. Every time is the median of --repeats runs, with
torch.set_num_threads(--threads); each method runs once on another photo (coffee) before timing.

Ours, per method (chelsea, the model's top-1 class first), as bench/new_methods.py times them:
  cold       after ex.analyze(photo) (one forward hooked at the default layer, timed apart), the first an.cam(method):
             the attention pass (one forward with every block's probabilities written out) and, for Chefer, the
             backward to all of them; "cold + analyze" adds the Analysis' first pass;
  same class the same call again (arithmetic only);
  switch     the first call for another class: rollout reads no class (arithmetic only); Chefer runs one backward.
No peer has attention rollout or Chefer's relevance (pytorch-grad-cam 1.5.7, torchcam 0.5.0, captum 0.9.0;
torchcam's LeGrad needs torchvision's nn.MultiheadAttention blocks). For scale, Grad-CAM at the default layer:
ours and pytorch-grad-cam's GradCAM (patch tokens reshaped to the grid; it caches nothing: every call is a full
forward + backward).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from new_methods import Row, median_ms, ours, peer_times, pgc_call, timed, trainable_copy  # bench/'s own folder
from switch import cpu_model, load_average

from cam_core import Explainer

MODELS = ("vit_small_patch16_224", "deit_small_patch16_224")
METHODS = [
    ("rollout", "rollout", {}),
    ("rollout (max, discard 0.9)", "rollout", {"fusion": "max", "discard_ratio": 0.9}),
    ("chefer", "chefer", {}),
    ("gradcam (for scale)", "gradcam", {}),
]


def patch_grid(explainer: Explainer):
    """pytorch-grad-cam's reshape_transform: (B, prefix + h·w, C) tokens → (B, C, h, w)."""
    prefix, (height, width) = explainer.layout.prefix, explainer.layout.grid

    def reshape(tokens: torch.Tensor) -> torch.Tensor:
        return tokens[:, prefix:, :].reshape(tokens.shape[0], height, width, -1).permute(0, 3, 1, 2)

    return reshape


def bench_model(name: str, picture, other_picture, repeats: int, skip_peer: bool) -> list[Row]:
    torch.manual_seed(0)
    ex = Explainer(name, weights="random")
    an = ex.analyze(other_picture)
    for _, method, params in METHODS:
        an.cam(method, **params)
    ex.cache.clear()
    an = ex.analyze(picture)
    classes = [index for index, _, _ in an.top_k(repeats + 1)]
    model_input = an.input
    del an
    analyze = []
    for _ in range(repeats):
        ex.cache.clear()
        gc.collect()
        analyze.append(timed(lambda: ex.analyze(picture)))
    ex.cache.clear()
    print(f"{name} (random weights), chelsea, default layer {ex.default_layer}; classes {classes}; analyze (one "
          f"forward hooked there): median {median_ms(analyze):.1f} ms", flush=True)
    rows = [ours(ex, picture, label, method, params, classes, repeats) for label, method, params in METHODS]
    if not skip_peer:
        from pytorch_grad_cam import GradCAM

        peer = trainable_copy(ex.model.module)
        peer_times("pytorch-grad-cam GradCAM", pgc_call(GradCAM, peer, [ex.default_layer], model_input,
                                                        reshape_transform=patch_grid(ex)), classes, repeats, rows[-1])
        del peer
    gc.collect()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per median (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--skip-peer", action="store_true", help="leave out pytorch-grad-cam")
    args = parser.parse_args()
    repeats = max(1, args.repeats)
    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    from skimage import data

    picture, other_picture = data.chelsea(), data.coffee()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, CPU: {cpu_model()}")
    print(f"python {platform.python_version()}, load average {load_average()} (timings are only meaningful on an "
          "otherwise idle machine)")
    rows = [row for name in MODELS for row in bench_model(name, picture, other_picture, repeats, args.skip_peer)]

    print(f"\n### attention methods, chelsea, torch {torch.__version__}, {torch.get_num_threads()} threads, median of "
          f"{repeats}, ms\n")
    print("| method | model | ours cold | ours cold + analyze | ours same class | ours class switch | peer "
          "| peer first call | peer other classes |")
    print("|---|---|--:|--:|--:|--:|---|--:|--:|")
    for row in rows:
        cells = [row.label, row.model, f"{median_ms(row.cold):.1f}", f"{median_ms(row.cold_total):.1f}",
                 f"{median_ms(row.same):.2f}", f"{median_ms(row.switch):.2f}"]
        for entry in row.peers or [("no peer has it", "")]:
            if len(entry) == 2:  # no peer, or the peer failed (the reason)
                timing = [entry[1], ""]
            else:
                timing = [f"{median_ms(entry[1]):.1f}", f"{median_ms(entry[2]):.1f}"]
            print("| " + " | ".join([*cells, entry[0], *timing]) + " |")
    print(f"\ntotal benchmark time {time.perf_counter() - began:.0f} s, load average now {load_average()}")


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - a report: never a failing exit code
        import traceback

        traceback.print_exc()
        print(f"benchmark stopped early: {type(exc).__name__}: {exc}")
    sys.exit(0)
