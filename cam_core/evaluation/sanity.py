"""The model-parameter randomisation sanity check (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018):
a map that explains the model must change when the model's learned weights are replaced, block by block from the top.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cam_core.engine.explainer import Explainer
from cam_core.errors import CamError
from cam_core.inputs.images import ImageInput, load_image
from cam_core.scaling import min_max

MapFunction = Callable[[Explainer, Image.Image, int], np.ndarray]

SPLIT_SHARE = 0.25
SSIM_SIZE = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


@dataclass(frozen=True)
class SanityStep:
    """The map after one cumulative randomisation, compared with the original model's map."""

    label: str
    randomised: tuple[str, ...]
    saliency: np.ndarray
    spearman: float
    ssim: float


@dataclass(frozen=True)
class StepSpread:
    """One cascade step over every seed: the rank correlation and SSIM with the original map, one value per seed."""

    label: str
    spearman: tuple[float, ...]
    ssim: tuple[float, ...]


@dataclass(frozen=True)
class SanityReport:
    """A cascading randomisation check of one method on one image and class: the steps (and maps) of the first
    seed, the spread of every step over the seeds, how many seeds pass, the outcome ("pass" when every seed's final
    rank correlation is below the threshold, "fail" when none is, "unclear" otherwise) and a verdict that says how
    sure it is."""

    method: str
    target: int
    steps: tuple[SanityStep, ...]
    seeds: tuple[int, ...]
    spread: tuple[StepSpread, ...]
    passes: int
    outcome: str
    verdict: str
    seconds: float

    @property
    def passed(self) -> bool:
        """Whether every seed passes."""
        return self.outcome == "pass"

    @property
    def nbytes(self) -> int:
        """The bytes its maps hold."""
        return sum(step.saliency.nbytes for step in self.steps)


def _parameter_count(module: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def cascade_blocks(module: torch.nn.Module) -> list[str]:
    """The model's parameterised blocks in forward (registration) order: the top-level children, where any one
    holding more than a quarter of all parameters is replaced by its own children (recursively), and the parameters
    a split module holds itself (a ViT's class token and position embedding) come first, each a block of its own;
    modules without parameters are left out."""
    total = _parameter_count(module)

    def expand(prefix: str, parent: torch.nn.Module) -> list[str]:
        blocks = [f"{prefix}{name}" for name, _ in parent.named_parameters(recurse=False)]
        for name, child in parent.named_children():
            full = f"{prefix}{name}"
            count = _parameter_count(child)
            if count == 0:
                continue
            if count > SPLIT_SHARE * total and next(child.children(), None) is not None:
                blocks.extend(expand(f"{full}.", child))
            else:
                blocks.append(full)
        return blocks

    return expand("", module)


def randomise(module: torch.nn.Module, blocks: Sequence[str], seed: int) -> None:
    """In place: every parameter tensor of the named blocks (modules, or single parameters) redrawn from a normal
    distribution with that tensor's own mean and standard deviation (so activations keep their scale); a tensor
    with one element or no spread is set to its mean. The same seed gives the same weights."""
    modules = dict(module.named_modules())
    parameters = dict(module.named_parameters())
    unknown = [name for name in blocks if name not in modules and name not in parameters]
    if unknown:
        raise CamError(f"the model has no block {', '.join(unknown)}")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in blocks:
            for parameter in modules[name].parameters() if name in modules else [parameters[name]]:
                mean = parameter.mean()
                std = parameter.std() if parameter.numel() > 1 else 0.0
                if std == 0:
                    parameter.fill_(mean)
                else:
                    drawn = torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype)
                    parameter.copy_(drawn * std + mean)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps of the same shape (ties share their mean rank); 0.0 when either map
    is constant."""
    a, b = _pair(a, b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    ranks_a, ranks_b = _ranks(a.ravel()), _ranks(b.ravel())
    ranks_a -= ranks_a.mean()
    ranks_b -= ranks_b.mean()
    return float(np.clip(ranks_a @ ranks_b / np.sqrt((ranks_a @ ranks_a) * (ranks_b @ ranks_b)), -1.0, 1.0))


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of values, tied values sharing the mean of their ranks."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts - 1) / 2)[inverse]


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """The structural similarity (Wang et al. 2004) of two maps in [0, 1]: 11×11 Gaussian window of σ 1.5, K1 0.01,
    K2 0.03, data range 1, averaged over the positions where the window fits."""
    a, b = _pair(a, b)
    if min(a.shape) < SSIM_SIZE:
        raise CamError(f"SSIM needs maps of at least {SSIM_SIZE}×{SSIM_SIZE} pixels, not {a.shape[0]}×{a.shape[1]}")
    offsets = np.arange(SSIM_SIZE) - (SSIM_SIZE - 1) / 2
    window = np.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    window /= window.sum()
    means = _window_means(np.stack([a, b, a * a, b * b, a * b]), window)
    mean_x, mean_y = means[0], means[1]
    var_x = means[2] - mean_x**2
    var_y = means[3] - mean_y**2
    cov = means[4] - mean_x * mean_y
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    similarity = ((2 * mean_x * mean_y + c1) * (2 * cov + c2)) / ((mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2))
    return float(similarity.mean())


def _window_means(maps: np.ndarray, window: np.ndarray) -> np.ndarray:
    """(N, H, W) maps filtered by the separable window, only where it fits (no padding)."""
    size = len(window)
    height, width = maps.shape[1:]
    rows = sum(weight * maps[:, i : height - size + 1 + i] for i, weight in enumerate(window))
    return sum(weight * rows[:, :, i : width - size + 1 + i] for i, weight in enumerate(window))


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two 2-D maps of one shape as float64 arrays."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise CamError(f"maps must be 2-D and of one shape, not {a.shape} and {b.shape}")
    return a, b


def edge_map(image: Image.Image) -> np.ndarray:
    """The Sobel gradient magnitude of the grey image, scaled to [0, 1]: a "saliency map" that ignores the model, the
    check's negative control."""
    grey = np.pad(np.asarray(image.convert("L"), dtype=np.float64), 1, mode="edge")
    rows = grey[:-2] + 2 * grey[1:-1] + grey[2:]
    columns = grey[:, :-2] + 2 * grey[:, 1:-1] + grey[:, 2:]
    across = rows[:, 2:] - rows[:, :-2]
    down = columns[2:] - columns[:-2]
    return _unit(np.hypot(across, down))


def _unit(values: np.ndarray) -> np.ndarray:
    """values min-max scaled to [0, 1] as float32; zeros when constant."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return min_max(values).astype(np.float32)


def _at_input_size(saliency: np.ndarray, size: int) -> np.ndarray:
    """A (H, W) map bilinearly resized to (size, size) and min-max scaled to [0, 1]."""
    values = torch.from_numpy(np.nan_to_num(np.asarray(saliency, dtype=np.float32)))
    if values.ndim != 2:
        raise CamError(f"a saliency map must be (H, W), not {tuple(values.shape)}")
    resized = F.interpolate(values[None, None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return _unit(resized[0, 0].numpy())


def _checkpoint_counts(blocks: int, checkpoints: int) -> list[int]:
    """How many blocks (from the top) are randomised at each checkpoint: evenly spread, ending with all of them."""
    if blocks <= checkpoints:
        return list(range(1, blocks + 1))
    return [(2 * blocks * i + checkpoints) // (2 * checkpoints) for i in range(1, checkpoints + 1)]


def _span(values: Sequence[float]) -> str:
    """0.10–0.32, or 0.10 when every value rounds alike."""
    low, high = f"{min(values):.2f}", f"{max(values):.2f}"
    return low if low == high else f"{low}–{high}"


def _verdict(spread: StepSpread, blank: Sequence[bool], original_blank: bool, threshold: float) -> tuple[int, str, str]:
    """How many seeds pass, the outcome and the verdict, from the last step's spread over the seeds and which seeds'
    last maps are blank."""
    count = len(spread.spearman)
    passes = sum(value < threshold for value in spread.spearman)
    outcome = "pass" if passes == count else "fail" if passes == 0 else "unclear"
    if original_blank:
        return passes, outcome, (
            "Passes only trivially: the original model's map is blank (constant), so its rank correlation counts as "
            "0.00 and the check says nothing about the method."
        )
    seeds = "from one seed only" if count == 1 else f"in {passes if outcome == 'pass' else count} of {count} seeds"
    rho, similarity = _span(spread.spearman), _span(spread.ssim)
    caveat = "; more seeds say how sure this is." if count == 1 else "."
    if outcome == "pass" and all(blank):
        return passes, outcome, (
            f"Passes {seeds}: after randomising every block the map is blank (constant), so its rank correlation "
            f"with the original counts as 0.00 (below {threshold:g}){caveat}"
        )
    if outcome == "pass":
        return passes, outcome, (
            f"Passes {seeds}: after randomising every block the map's rank correlation with the original is {rho} "
            f"(below {threshold:g}; SSIM {similarity}){caveat}"
        )
    if outcome == "fail":
        return passes, outcome, (
            f"Fails {seeds}: after randomising every block the map's rank correlation with the original is still "
            f"{rho} (not below {threshold:g}; SSIM {similarity}), so the map does not depend on what the model "
            f"learned{caveat}"
        )
    return passes, outcome, (
        f"Unclear: {passes} of {count} seeds below {threshold:g} (final rank correlation {rho}, SSIM {similarity}): "
        "whether the map follows what the model learned depends on the random weights drawn."
    )


def randomisation_check(
    explainer: Explainer,
    image: ImageInput,
    method: str | MapFunction,
    target: int | None = None,
    checkpoints: int = 6,
    seeds: Sequence[int] = (0,),
    threshold: float = 0.5,
    progress: Callable[[int, int], None] | None = None,
    **cam_kwargs: object,
) -> SanityReport:
    """Randomise a copy of the explainer's model cumulatively from the top block down, once per seed, and compare
    method's map for target (default: the top-1 class) at each of checkpoints points with the original model's map
    (computed once). method is a method id (cam_kwargs go to Analysis.cam) or a function (explainer, image, target) →
    (H, W) map. The explainer's model and cache are left untouched. progress(done, total) follows the maps."""
    started = time.perf_counter()
    if checkpoints < 1:
        raise CamError(f"checkpoints must be at least 1, not {checkpoints}")
    if not 0 < threshold <= 1:
        raise CamError(f"threshold must be a rank correlation above 0 and at most 1, not {threshold}")
    seeds = tuple(seeds)
    if not seeds or len(set(seeds)) != len(seeds) or not all(isinstance(seed, int) and seed >= 0 for seed in seeds):
        raise CamError(f"seeds must be one or more different whole numbers ≥ 0, not {seeds!r}")
    if callable(method) and cam_kwargs:
        raise CamError(f"{', '.join(cam_kwargs)}: extra parameters apply to method ids only, not to a function")
    picture = load_image(image)
    blocks = cascade_blocks(explainer.model.module)[::-1]
    if not blocks:
        raise CamError(f"model {explainer.name} has no parameterised blocks to randomise")
    counts = _checkpoint_counts(len(blocks), checkpoints)
    total = 1 + len(seeds) * len(counts)
    size = explainer.spec.preprocessing.input_size
    original_model = explainer.with_module(explainer.module_copy(), weights_source=explainer.model.weights_source)
    target = original_model.analyze(picture).target(target)

    def saliency_of(model: Explainer) -> np.ndarray:
        if callable(method):
            found = method(model, picture, target)
        else:
            found = model.analyze(picture).cam(method, target=target, **cam_kwargs).saliency
        return _at_input_size(found, size)

    original = saliency_of(original_model)
    done = 1
    if progress is not None:
        progress(done, total)
    cascades = []
    for seed in seeds:
        working = explainer.module_copy()
        steps = [SanityStep("original", (), original, 1.0, 1.0)]
        randomised = 0
        for index, count in enumerate(counts, start=1):
            randomise(working, blocks[randomised:count], _stream(seed, index))
            randomised = count
            label = f"randomised down to {blocks[count - 1]}"
            saliency = saliency_of(explainer.with_module(working, weights_source=label))
            steps.append(SanityStep(label, tuple(blocks[:count]), saliency,
                                    rank_correlation(original, saliency), ssim(original, saliency)))
            done += 1
            if progress is not None:
                progress(done, total)
        cascades.append(steps)
    spread = tuple(
        StepSpread(column[0].label, tuple(step.spearman for step in column), tuple(step.ssim for step in column))
        for column in zip(*cascades, strict=True)
    )
    blank = [not np.any(steps[-1].saliency) for steps in cascades]
    passes, outcome, verdict = _verdict(spread[-1], blank, not np.any(original), threshold)
    name = method if isinstance(method, str) else getattr(method, "__name__", type(method).__name__)
    return SanityReport(name, target, tuple(cascades[0]), seeds, spread, passes, outcome, verdict,
                        time.perf_counter() - started)


def _stream(seed: int, step: int) -> int:
    """The generator seed of one cascade step of one seed: independent streams for every (seed, step) pair."""
    return int(np.random.SeedSequence((seed, step)).generate_state(1, dtype=np.uint64)[0] >> 1)
