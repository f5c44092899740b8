"""Benchmark: how the time per image of the engine's batched passes depends on how many images one forward takes.

    python bench/pass_chunks.py [--models mobilenet_v2,efficientnet_lite0,resnet18] [--images 32] [--repeats 3]
                                [--threads 1,2] [--chunks 1,2,4,8,16,32]

A report, never a test: the exit code is always 0. For each model (resnet18 with random weights: only the timing
matters) and torch thread count it runs the same images in chunks of each size and prints the median milliseconds
per image of:
- masked: the no-grad passes of Score-CAM and its relatives, on the engine's inference copy (batch norms folded,
  channels-last), the input channels-last too;
- masked, NCHW: the same folded copy and input in the default (contiguous) memory format;
- path: the passes of Integrated Grad-CAM and Smooth Grad-CAM++ (Explainer.run: the graph kept above the target
  layer), plus one backward of a class score to that layer.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cam_core import Explainer  # noqa: E402
from cam_core.inputs.examples import load_example  # noqa: E402
from cam_core.passes.inference import chunks, fold_batch_norms  # noqa: E402


def per_image_ms(run: Callable[[torch.Tensor], None], images: torch.Tensor, size: int, repeats: int) -> float:
    """Median over repeats of the milliseconds per image of run over images in chunks of size."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        for part in chunks(len(images), size):
            run(images[part])
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) * 1000 / len(images)


def masked_runner(model: torch.nn.Module, memory_format: torch.memory_format) -> Callable[[torch.Tensor], None]:
    """A no-grad batch through model, its input in memory_format."""
    def run(batch: torch.Tensor) -> None:
        with torch.inference_mode():
            model(batch.contiguous(memory_format=memory_format))

    return run


def path_runner(explainer: Explainer) -> Callable[[torch.Tensor], None]:
    """A batch through Explainer.run at the target layer and one backward of the summed top class to it."""
    layer = explainer.default_layer

    def run(batch: torch.Tensor) -> None:
        found = explainer.run(batch, [layer])
        torch.autograd.grad(found.logits[:, 0].sum(), found.activations[layer])

    return run


def explainer_for(name: str) -> Explainer:
    """The entry's own weights where they are offline, random weights otherwise."""
    try:
        return Explainer(name)
    except Exception:  # noqa: BLE001 - weights that need the internet
        return Explainer(name, weights="random")


def report(name: str, threads: list[int], sizes: list[int], count: int, repeats: int) -> None:
    explainer = explainer_for(name)
    model_input = explainer.analyze(load_example("chelsea")).input
    noise = torch.randn((count, *model_input.shape[1:]), generator=torch.Generator().manual_seed(0))
    images = model_input + 0.1 * noise
    nchw = copy.deepcopy(explainer.model.module).eval().requires_grad_(False)
    fold_batch_norms(nchw, model_input)
    kinds = {
        "masked": masked_runner(explainer.fast_model(), torch.channels_last),
        "masked, NCHW": masked_runner(nchw, torch.contiguous_format),
        "path": path_runner(explainer),
    }
    print(f"\n{name}: ms per image, {count} images in chunks of n (median of {repeats})")
    print(f"| threads | pass | {' | '.join(f'n={size}' for size in sizes)} |")
    print(f"|---|---|{'---|' * len(sizes)}")
    for thread_count in threads:
        torch.set_num_threads(thread_count)
        for kind, run in kinds.items():
            run(images[:2])  # warm-up
            cells = [f"{per_image_ms(run, images, size, repeats):.1f}" for size in sizes]
            print(f"| {thread_count} | {kind} | {' | '.join(cells)} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mobilenet_v2,efficientnet_lite0,resnet18")
    parser.add_argument("--images", type=int, default=32, help="images per measurement (default 32)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per cell, median (default 3)")
    parser.add_argument("--threads", default="1,2", help="torch thread counts (default 1,2)")
    parser.add_argument("--chunks", default="1,2,4,8,16,32", help="chunk sizes (default 1,2,4,8,16,32)")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    sizes = [int(s) for s in args.chunks.split(",")]
    for name in args.models.split(","):
        report(name, threads, sizes, args.images, args.repeats)


if __name__ == "__main__":
    main()
