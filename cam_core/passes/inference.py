"""A fast, private inference copy of a model for the many masked-input passes of Score-CAM and its relatives."""

from __future__ import annotations

import contextlib
import copy
import itertools
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

import torch
from torch import nn

from cam_core.errors import CamError

Progress = Callable[[int, int], None]
Part = TypeVar("Part")
Result = TypeVar("Result")
PLAIN_CONV_SUBCLASSES = frozenset({"Conv2dSame"})  # convolutions that only pad first (timm's "same" padding)
# Images per forward of the batched passes (masked inputs, path points), by the size of the network's weights
# (bench/pass_chunks.py, 1 thread, ms per image at 1 / 4 / 32 images a forward). Weights that fit in the CPU's cache
# are read from it by every forward, so a larger forward only pushes its activations out of the cache: one image at a
# time is fastest (mobilenet_v2, 14 MB: masked 18 / 25 / 30, path 45 / 52 / 92; efficientnet_lite0, 19 MB: masked
# 36 / 44 / 58). Larger weights are read from memory by every forward, and the more images share that read the better
# (resnet18, 47 MB: masked 266 / 235 / 146, path 213 / 115 / 104).
CACHED_WEIGHT_BYTES = 32 * 2**20
SMALL_MODEL_CHUNK = 1
LARGE_MODEL_CHUNK = 32


def inference_copy(model: nn.Module, example: torch.Tensor, expected: torch.Tensor) -> nn.Module:
    """A copy of model for batched inference: each batch norm that directly follows a convolution folded into it,
    channels-last memory. The shared model is never touched; the copy must give `expected` (the model's logits for
    example), else a plain copy is used.

    The folding is found by running the copy once with hooks on its own modules (never by symbolic tracing, which
    patches every module's call in the process and breaks other threads' passes)."""
    fast = copy.deepcopy(model).eval()
    for parameter in fast.parameters():
        parameter.requires_grad_(False)
    fold_batch_norms(fast, example)
    try:
        fast = fast.to(memory_format=torch.channels_last)
    except RuntimeError:  # buffers that are not 4-D (transformers' position tables) keep their layout
        pass
    with torch.inference_mode():
        got = fast(example.contiguous(memory_format=torch.channels_last))
    if not torch.allclose(expected, got, rtol=1e-3, atol=1e-3):
        fast = copy.deepcopy(model).eval()
    return fast


def fold_batch_norms(model: nn.Module, example: torch.Tensor) -> int:
    """Fold every eval-mode BatchNorm2d whose input is exactly a convolution's output into that convolution, in place,
    and return how many were folded. A batch norm with an activation after it (timm's BatchNormAct2d) keeps the
    activation."""
    outputs: dict[int, tuple[nn.Conv2d, torch.Tensor]] = {}
    pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d]] = []

    def after_conv(module, _inputs, output):
        outputs[id(output)] = (module, output)  # kept alive so that no later tensor reuses its id

    def before_norm(module, inputs):
        conv, _ = outputs.get(id(inputs[0]), (None, None))
        if conv is not None and module.track_running_stats and module.running_var is not None:
            pairs.append((conv, module))

    convolutions = [m for m in model.modules() if type(m) is nn.Conv2d or type(m).__name__ in PLAIN_CONV_SUBCLASSES]
    handles = [m.register_forward_hook(after_conv) for m in convolutions]
    handles += [m.register_forward_pre_hook(before_norm) for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    try:
        with torch.inference_mode():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    parents = {id(child): (parent, name) for parent in model.modules() for name, child in parent.named_children()}
    folded = 0
    for conv, norm in {id(norm): (conv, norm) for conv, norm in pairs}.values():
        if id(norm) not in parents:
            continue
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps) if norm.affine else torch.rsqrt(
            norm.running_var + norm.eps
        )
        shift = (norm.bias if norm.affine else 0.0) - norm.running_mean * scale
        bias = conv.bias if conv.bias is not None else torch.zeros_like(norm.running_mean)
        conv.weight = nn.Parameter(conv.weight * scale.reshape(-1, 1, 1, 1), requires_grad=False)
        conv.bias = nn.Parameter(bias * scale + shift, requires_grad=False)
        parent, name = parents[id(norm)]
        rest = [getattr(norm, part) for part in ("drop", "act") if isinstance(getattr(norm, part, None), nn.Module)]
        setattr(parent, name, nn.Sequential(*rest) if rest else nn.Identity())
        folded += 1
    return folded


def chunks(count: int, size: int) -> Iterator[slice]:
    """Consecutive slices of at most size covering range(count)."""
    for start in range(0, count, size):
        yield slice(start, min(start + size, count))


def pass_chunk(model: nn.Module) -> int:
    """How many images one forward of model takes in the batched passes (see CACHED_WEIGHT_BYTES)."""
    weights = sum(parameter.numel() * parameter.element_size() for parameter in model.parameters())
    return SMALL_MODEL_CHUNK if weights <= CACHED_WEIGHT_BYTES else LARGE_MODEL_CHUNK


def batch_parts(count: int, batch_size: int, size: int) -> Iterator[tuple[slice, bool]]:
    """The parts of range(count) a pass runs, at most size each, without crossing the batches of batch_size, each
    with whether it ends its batch (where progress and partial results are reported)."""
    for batch in chunks(count, batch_size):
        for part in chunks(batch.stop - batch.start, size):
            yield slice(batch.start + part.start, batch.start + part.stop), batch.start + part.stop == batch.stop


def run_in_order(parts: Iterable[Part], run: Callable[[Part], Result], done: Callable[[Part, Result], None],
                 workers: int) -> None:
    """run(part) for every part, up to workers of them side by side, and done(part, result) in the caller's thread
    in the parts' order. A part is handed to the pool only once done() of the one before it has returned, so a caller
    that gives up there (raises) leaves at most the parts already running, and runs no more."""
    remaining = iter(parts)
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        running = deque((part, pool.submit(run, part)) for part in itertools.islice(remaining, workers))
        while running:
            part, future = running.popleft()
            done(part, future.result())
            running.extend((part, pool.submit(run, part)) for part in itertools.islice(remaining, 1))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def batch_workers() -> int:
    """How many batches run side by side: more than one when torch is limited to fewer threads than there are cores
    (the dashboard runs torch single-threaded so that many small operations do not spin against each other)."""
    return max(1, min(4, (os.cpu_count() or 1) // max(1, torch.get_num_threads())))


def autocast(precision: str) -> contextlib.AbstractContextManager:
    """The context a batch of passes runs in: nothing for "float32", bfloat16 autocast for "bfloat16"."""
    if precision == "float32":
        return contextlib.nullcontext()
    if precision == "bfloat16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    raise CamError(f"precision must be float32 or bfloat16, not {precision!r}")
