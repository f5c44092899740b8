"""Benchmark: Score-CAM and Ablation-CAM cold against pytorch-grad-cam, and the class switch of the five methods
that score masked or ablated inputs.

    python bench/slow_methods.py [--model mobilenet_v2] [--repeats 20] [--skip-peer]

A report, never a test: the exit code is always 0. Targets (issue 4): cold Score-CAM ≥ 2× faster than the peer with
the same map, cold Ablation-CAM ≥ 100× faster, class switch ≤ 10 ms median for all five, first partial Score-CAM
map within 2 s.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cam_core import Explainer, methods  # noqa: E402
from cam_core.engine.analysis import DEFAULT_PRECISION  # noqa: E402

# The single-layer methods that score masked or ablated inputs (from the registry's cards).
METHODS = tuple(card.id for card in methods()
                if card.needs & {"mask_scores", "ablation_scores"} and not card.multi_layer)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def peer_cam(peer_class, explainer: Explainer, model_input: torch.Tensor, target: int, **kwargs):
    """pytorch-grad-cam's map at layer resolution and the seconds it took, on its own copy of the model."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = copy.deepcopy(explainer.model.module)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    layer = dict(model.named_modules())[explainer.default_layer]
    peer = peer_class(model=model, target_layers=[layer], **kwargs)
    peer.get_target_width_height = lambda _input: (7, 7)
    started = time.perf_counter()
    result = peer(input_tensor=model_input, targets=[ClassifierOutputTarget(target)])[0]
    return result, time.perf_counter() - started


def cold_scorecam(explainer: Explainer, image, **params) -> tuple[object, float, float]:
    """(result, seconds, seconds to the first partial map) on a fresh Analysis."""
    explainer.cache.clear()
    analysis = explainer.analyze(image)
    explainer.fast_model()
    first = []
    started = time.perf_counter()
    result = analysis.cam("scorecam", partial=lambda _r: first or first.append(time.perf_counter() - started),
                          **params)
    return result, time.perf_counter() - started, first[0] if first else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skip-peer", action="store_true", help="leave out pytorch-grad-cam (it takes ~1 minute)")
    args = parser.parse_args()
    from skimage import data

    image = data.chelsea()
    explainer = Explainer(args.model)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"masked inputs in {DEFAULT_PRECISION}; model {args.model}, layer {explainer.default_layer}, chelsea")

    result, seconds, first = cold_scorecam(explainer, image)
    print(f"\nScore-CAM cold (defaults: the masked input's probability, as the authors' code): {seconds:.2f} s, "
          f"first partial map after {first:.2f} s")
    same, same_seconds, _ = cold_scorecam(explainer, image, weights="logit softmax", baseline="zero",
                                          align_corners=True)
    torch.set_num_threads(1)
    _, single_seconds, single_first = cold_scorecam(explainer, image, weights="logit softmax", baseline="zero",
                                                    align_corners=True)
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"Score-CAM cold, the peer's definition (logit, zeros, aligned corners): {same_seconds:.2f} s; with torch "
          f"single-threaded and batches side by side (the dashboard's setting): {single_seconds:.2f} s")

    explainer.cache.clear()
    analysis = explainer.analyze(image)
    started = time.perf_counter()
    ablation = analysis.cam("ablationcam")
    ablation_seconds = time.perf_counter() - started
    print(f"Ablation-CAM cold (through the head only): {ablation_seconds * 1000:.0f} ms")

    if not args.skip_peer:
        from pytorch_grad_cam import AblationCAM, ScoreCAM

        target = int(analysis.top_k(1)[0][0])
        theirs, peer_score = peer_cam(ScoreCAM, explainer, analysis.input, target)
        match = pearson(np.maximum(same.raw, 0), theirs)
        print(f"\npytorch-grad-cam ScoreCAM (batch 16): {peer_score:.2f} s → ours {peer_score / same_seconds:.1f}× "
              f"faster ({peer_score / single_seconds:.1f}× in the dashboard's setting); "
              f"Pearson of the maps {match:.4f}")
        theirs, peer_ablation = peer_cam(AblationCAM, explainer, analysis.input, target, batch_size=32)
        match = pearson(np.maximum(ablation.raw, 0), theirs)
        print(f"pytorch-grad-cam AblationCAM (batch 32): {peer_ablation:.2f} s → ours "
              f"{peer_ablation / ablation_seconds:.0f}× faster; Pearson of the maps {match:.4f}")

    print(f"\nClass switch, median and p90 over {args.repeats} classes (score matrices already computed):")
    classes = [int(i) for i, *_ in analysis.top_k(args.repeats)]
    for method in METHODS:
        analysis.cam(method)
        times = []
        for target in classes:
            started = time.perf_counter()
            analysis.cam(method, target=target)
            times.append((time.perf_counter() - started) * 1000)
        p90 = float(np.percentile(times, 90))
        verdict = "PASS" if statistics.median(times) <= 10 else "FAIL"
        print(f"  {method:12s} median {statistics.median(times):6.2f} ms  p90 {p90:6.2f} ms  ≤ 10 ms: {verdict}")


if __name__ == "__main__":
    main()
