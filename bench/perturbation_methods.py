"""Benchmark: cold and class-switch times of RISE, occlusion and LIME, against Captum's Occlusion and Lime in the
same run.

    python bench/perturbation_methods.py [--model mobilenet_v2] [--repeats 3] [--threads 2] [--rise-samples N]
                                         [--skip-peer]

A report, never a test: the exit code is always 0. Every time is the median of --repeats runs, with
torch.set_num_threads(--threads). Each method first runs once with few samples on another photo (coffee), so
one-time costs (kernels, the inference copy of the model) stay out of the numbers.

Ours (bench/new_methods.py's `ours`), per method at its card's defaults (RISE's N: --rise-samples):
  cold       a fresh Analysis of chelsea, then the first an.cam(method): every perturbed input's forward pass
             (batched, all classes kept) and the arithmetic;
  switch     the first call for another class on that Analysis: the re-weighting alone (RISE: the probability-
             weighted sum of the masks; occlusion: the mean drop; LIME: the ridge fit).
Peers (on their own trainable copy; they cache nothing, so every call runs every pass):
  occlusion  captum Occlusion, the same window and stride, baselines 0, on the logits (our score="logit")
  lime       captum Lime with our superpixels, our samples, the cosine kernel and SkLearnRidge(alpha=1)
RISE has no peer among the installed libraries.
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

from new_methods import Row, median_ms, ours, peer_times, trainable_copy  # bench/ is the script's own folder
from switch import cpu_model, load_average

from cam_core import Explainer
from cam_core.inputs.input_perturbations import input_picture
from cam_core.registry import get_method

WARM = {"rise": {"samples": 8}, "occlusion": {"window": 112, "stride": 112}, "lime": {"samples": 8}}


def defaults(method: str) -> dict:
    return {p.name: p.default for p in get_method(method).card.params}


def captum_occlusion_call(model, model_input: torch.Tensor, window: int, stride: int, batch: int):
    from captum.attr import Occlusion

    def make(target: int):
        with torch.no_grad():
            return Occlusion(model).attribute(model_input.clone(), target=target, baselines=0.0,
                                              sliding_window_shapes=(3, window, window), strides=(3, stride, stride),
                                              perturbations_per_eval=batch)

    return make


def captum_lime_call(model, analysis, params: dict, batch: int):
    """Captum's Lime drawing our samples on our superpixels (the plan is rebuilt per call, as a peer would)."""
    from captum._utils.models.linear_model import SkLearnRidge
    from captum.attr import Lime

    from cam_core.inputs.input_perturbations import lime_plan

    prep = analysis.explainer.spec.preprocessing
    spec = get_method("lime").card.input_spec(params)
    width = float(params["kernel_width"])

    def make(target: int):
        plan = lime_plan(spec, input_picture(analysis.input, prep.mean, prep.std))

        def samples(_inputs, **_kwargs):
            for row in plan.samples:
                yield row[None].float()

        def kernel(_original, _perturbed, interpretable, **_kwargs):
            distance = 1.0 - torch.sqrt(interpretable.sum() / interpretable.numel())
            return torch.exp(-distance**2 / width**2)

        lime = Lime(lambda x: torch.softmax(model(x), dim=1), interpretable_model=SkLearnRidge(alpha=params["alpha"]),
                    similarity_func=kernel, perturb_func=samples)
        with torch.no_grad():
            return lime.attribute(analysis.input.clone(), target=target, baselines=0.0,
                                  feature_mask=plan.segments.long()[None, None], n_samples=plan.count,
                                  perturbations_per_eval=batch)

    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--repeats", type=int, default=3, help="runs per median (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--rise-samples", type=int, default=int(defaults("rise")["samples"]),
                        help="RISE's N (default: the card's)")
    parser.add_argument("--skip-peer", action="store_true", help="leave out Captum")
    args = parser.parse_args()
    repeats = max(1, args.repeats)
    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    from skimage import data

    picture, other_picture = data.chelsea(), data.coffee()
    ex = Explainer(args.model)
    methods = [
        (f"rise (N={args.rise_samples})", "rise", {"samples": args.rise_samples}),
        ("occlusion (window 48, stride 16: 144 windows)", "occlusion", {}),
        ("lime (N=1000)", "lime", {}),
    ]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, CPU: {cpu_model()}")
    print(f"python {platform.python_version()}, load average {load_average()} (timings are only meaningful on an "
          "otherwise idle machine)")
    warm = ex.analyze(other_picture)
    for method, params in WARM.items():
        warm.cam(method, **params)
    del warm
    ex.cache.clear()
    gc.collect()
    an = ex.analyze(picture)
    classes = [index for index, _, _ in an.top_k(repeats + 1)]
    model_input = an.input
    print(f"model {args.model}, chelsea, classes {classes}")
    rows: list[Row] = []
    for label, method, params in methods:
        rows.append(ours(ex, picture, label, method, params, classes, repeats))
        print(f"  timed {label}", flush=True)
    if not args.skip_peer:
        peer = trainable_copy(ex.model.module)
        occlusion = defaults("occlusion")
        peer_times("captum Occlusion (logits)",
                   captum_occlusion_call(peer, model_input, occlusion["window"], occlusion["stride"], 32),
                   classes, repeats, rows[1])
        peer_times("captum Lime (our samples, kernel, ridge)", captum_lime_call(peer, an, defaults("lime"), 32),
                   classes, repeats, rows[2])
        del peer
    print(f"\n### {args.model}, chelsea, torch {torch.__version__}, {torch.get_num_threads()} threads, median of "
          f"{repeats}, ms\n")
    print("| method | ours cold | ours class switch | peer | peer first call | peer other classes |")
    print("|---|--:|--:|---|--:|--:|")
    for row in rows:
        cells = [row.label, f"{median_ms(row.cold):.0f}", f"{median_ms(row.switch):.1f}"]
        for entry in row.peers or [("n/a", "", "")]:
            name, first, others = entry if len(entry) == 3 else (entry[0], entry[1], "")
            timing = [f"{median_ms(first):.0f}", f"{median_ms(others):.0f}"] if isinstance(first, list) else \
                [first, others]
            print("| " + " | ".join([*cells, name, *timing]) + " |")
            cells = ["", "", ""]
    print(f"\ntotal benchmark time {time.perf_counter() - began:.0f} s, load average now {load_average()}")


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - a report: never a failing exit code
        import traceback

        traceback.print_exc()
        print(f"benchmark stopped early: {type(exc).__name__}: {exc}")
    sys.exit(0)
