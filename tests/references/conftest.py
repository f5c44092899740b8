"""The references' shared set-up: each two-object photo's reference copy of the network, forward hooks, gradients
and batched probabilities in plain torch (never cam_core's method functions), and the comparison every reference
test makes: Pearson r ≥ R_MIN between our raw map and the reference's, both before the final ReLU."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.conftest import TWO_OBJECT_PHOTOS, pearson, photo_classes, two_object_photo

R_MIN = 0.99
CLASS_KINDS = ("top", "second", "negative")


MEASURED: dict[str, list[float | None]] = {}  # None: both maps blank


@pytest.fixture(scope="session", autouse=True)
def report():
    """`python -m pytest tests/references -s` prints the lowest r per method (README's Definitions)."""
    yield
    for method, values in sorted(MEASURED.items()):
        found = [value for value in values if value is not None]
        blank = f", {len(values) - len(found)} blank in both" if len(found) < len(values) else ""
        print(f"{method:24s} lowest r {min(found, default=float('nan')):.4f} over {len(values)} maps{blank}")


@dataclass
class Reference:
    """A photo's reference copy of the network, its model input, and what the references computed so far."""

    model: torch.nn.Module
    input: torch.Tensor
    classes: dict[str, int]
    memo: dict = field(default_factory=dict)

    def remember(self, key, compute):
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]


@pytest.fixture(scope="module")
def references(mobilenet) -> dict[str, Reference]:
    found = {}
    for name in TWO_OBJECT_PHOTOS:
        analysis = mobilenet.analyze(two_object_photo(name))
        found[name] = Reference(mobilenet.module_copy().eval(), analysis.input.detach().clone(),
                                photo_classes(analysis, name))
    return found


def module(model: torch.nn.Module, name: str) -> torch.nn.Module:
    return dict(model.named_modules())[name]


def forward(model: torch.nn.Module, x: torch.Tensor, layers: tuple[str, ...]) -> tuple[torch.Tensor, dict]:
    """Logits and the outputs of layers, caught by forward hooks."""
    caught = {}
    hooks = [module(model, name).register_forward_hook(lambda m, i, o, name=name: caught.__setitem__(name, o))
             for name in layers]
    try:
        logits = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return logits, caught


def activations_and_gradients(ref: Reference, layer: str, target: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, h, w) activations at layer and the gradient of target's logit there."""

    def compute():
        logits, caught = forward(ref.model, ref.input.clone().requires_grad_(True), (layer,))
        (gradient,) = torch.autograd.grad(logits[0, target], caught[layer])
        return caught[layer][0].detach(), gradient[0]

    return ref.remember(("grad", layer, target), compute)


def probabilities_of(model: torch.nn.Module, inputs: torch.Tensor, batch: int = 32) -> torch.Tensor:
    """The softmax probabilities of inputs, in batches. The same arithmetic as one NCHW batch after another, only
    faster: each batch is laid out channels-last (oneDNN's fast path on CPU, about twice as fast) and batches run
    side by side, one per core (torch itself runs on one intra-op thread in the tests)."""

    def run(start: int) -> torch.Tensor:
        with torch.no_grad():
            chunk = inputs[start:start + batch].contiguous(memory_format=torch.channels_last)
            return torch.softmax(model(chunk), dim=1)

    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        return torch.cat(list(pool.map(run, range(0, len(inputs), batch))))


def minmax(x: torch.Tensor) -> torch.Tensor:
    """x scaled to [0, 1]; a constant map has no range and stays zero."""
    return (x - x.min()) / (x.max() - x.min()) if x.max() > x.min() else torch.zeros_like(x)


def up(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]


def ours(mobilenet, name: str, method: str, target: int, **kwargs):
    return mobilenet.analyze(two_object_photo(name)).cam(method, target=target, **kwargs)


def check(ours_map: np.ndarray, reference: torch.Tensor, what: str) -> None:
    """r ≥ R_MIN between the maps before the final ReLU (so a class with no positive evidence still compares); where
    the reference is blank (all zero: a map rectified inside, such as a Poly-CAM layer's), ours must be blank too."""
    reference = reference.detach().double().numpy()
    method = what.rsplit(" ", 2)[0]
    if not np.any(reference):
        assert not np.any(ours_map), f"{what}: the reference map is blank, ours is not"
        MEASURED.setdefault(method, []).append(None)
        return
    r = pearson(ours_map, reference, what)
    MEASURED.setdefault(method, []).append(r)
    assert r >= R_MIN, f"{what}: Pearson r with the paper's re-implementation is {r:.4f} < {R_MIN}"
