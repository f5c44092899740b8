"""RISE, occlusion and LIME against their papers, re-implemented in plain torch/numpy on the reference copy of the
network (never cam_core's method functions): three two-object photos × three classes, Pearson r ≥ 0.99 between the
maps before the final ReLU (tests/references/conftest.py).

The randomness is not the definition: RISE's grids and shifts and LIME's superpixels and on/off samples are drawn
through the spec's public generators (rise_plan, lime_plan). Everything else is written here from the papers: RISE's
masks with skimage's resize and crop as the authors' code builds them, the masked inputs, the probabilities, and
the weighting (Σ P M / (N·p); the mean drop over the windows covering a pixel; LIME's cosine kernel and a weighted
ridge regression solved in closed form). Few masks, a large window and few samples keep the passes short."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.transform import resize

from cam_core.inputs.input_perturbations import PerturbationSpec, input_picture, lime_plan, rise_plan
from tests.conftest import TWO_OBJECT_PHOTOS
from tests.references.conftest import CLASS_KINDS, check, ours, probabilities_of

RISE = {"samples": 48, "cells": 7, "keep": 0.5, "seed": 3}
OCCLUSION = {"window": 56, "stride": 28}
LIME = {"samples": 64, "segments": 30, "compactness": 10.0, "seed": 5}
KERNEL_WIDTH, ALPHA = 0.25, 1.0


def ref_rise(mobilenet, ref, target):
    """Petsiuk et al. 2018 and eclique/RISE: masks = the grids resized (order 1, reflect) to (s+1)·cell, cropped at
    the shift; S = Σᵢ P_c(I ⊙ Mᵢ) Mᵢ / (N·p)."""
    size = ref.input.shape[-1]

    def compute():
        plan = rise_plan(PerturbationSpec("rise", samples=RISE["samples"], cells=RISE["cells"], keep=RISE["keep"],
                                          seed=RISE["seed"]), size)
        cell = math.ceil(size / RISE["cells"])
        up_size = (RISE["cells"] + 1) * cell
        masks = np.empty((RISE["samples"], size, size), dtype=np.float32)
        for i in range(RISE["samples"]):
            row, column = (int(v) for v in plan.shifts[i])
            grown = resize(plan.grids[i].numpy().astype(np.float32), (up_size, up_size), order=1, mode="reflect",
                           anti_aliasing=False)
            masks[i] = grown[row:row + size, column:column + size]
        masks = torch.from_numpy(masks)
        return masks, probabilities_of(ref.model, ref.input * masks[:, None])

    masks, probabilities = ref.remember("rise", compute)
    return torch.einsum("n,nhw->hw", probabilities[:, target].double(), masks.double()) / (
        RISE["samples"] * RISE["keep"])


def ref_occlusion(mobilenet, ref, target):
    """Zeiler & Fergus 2014: a square of the mean colour (zero input) slid over the image; a pixel's value is the
    mean drop of the class probability over the squares covering it."""
    size, window, stride = ref.input.shape[-1], OCCLUSION["window"], OCCLUSION["stride"]
    starts = list(range(0, size - window + stride, stride))

    def compute():
        occluded = []
        for top in starts:
            for left in starts:
                copy = ref.input.clone()
                copy[..., top:top + window, left:left + window] = 0.0
                occluded.append(copy)
        return probabilities_of(ref.model, torch.cat(occluded)), probabilities_of(ref.model, ref.input)[0]

    occluded, whole = ref.remember("occlusion", compute)
    total, count = torch.zeros(size, size, dtype=torch.float64), torch.zeros(size, size, dtype=torch.float64)
    for index, (top, left) in enumerate((t, c) for t in starts for c in starts):
        total[top:top + window, left:left + window] += float(whole[target] - occluded[index, target])
        count[top:top + window, left:left + window] += 1
    return total / count


def weighted_ridge(x: np.ndarray, y: np.ndarray, weights: np.ndarray, alpha: float) -> np.ndarray:
    """argmin Σ wᵢ (yᵢ − b − βᵀxᵢ)² + α‖β‖², the intercept b unpenalised: centred at the weighted means, solved."""
    x_mean = weights @ x / weights.sum()
    y_mean = weights @ y / weights.sum()
    xc, yc = x - x_mean, y - y_mean
    gram = xc.T @ (weights[:, None] * xc) + alpha * np.eye(x.shape[1])
    return np.linalg.solve(gram, xc.T @ (weights * yc))


def ref_lime(mobilenet, ref, target):
    """Ribeiro et al. 2016: samples weighted by exp(−D²/σ²), D the cosine distance to the all-on sample, a weighted
    ridge regression of the class probability on the on/off vector; each superpixel takes its coefficient."""
    prep = mobilenet.spec.preprocessing

    def compute():
        spec = PerturbationSpec("lime", samples=LIME["samples"], segments=LIME["segments"],
                                compactness=LIME["compactness"], seed=LIME["seed"])
        plan = lime_plan(spec, input_picture(ref.input, prep.mean, prep.std))
        segments, samples = plan.segments.numpy(), plan.samples.numpy()
        masks = torch.from_numpy(samples[:, segments].astype(np.float32))
        return segments, samples, probabilities_of(ref.model, ref.input * masks[:, None])

    segments, samples, probabilities = ref.remember("lime", compute)
    z = samples.astype(np.float64)
    ones = np.ones(z.shape[1])
    norms = np.linalg.norm(z, axis=1) * np.linalg.norm(ones)
    cosine = np.divide(z @ ones, norms, out=np.zeros(len(z)), where=norms > 0)  # nothing on: distance 1
    distance = 1.0 - cosine
    weights = np.exp(-distance**2 / KERNEL_WIDTH**2)
    beta = weighted_ridge(z, probabilities[:, target].double().numpy(), weights, ALPHA)
    return torch.from_numpy(beta[segments])


METHODS = {"rise": (ref_rise, RISE), "occlusion": (ref_occlusion, OCCLUSION),
           "lime": (ref_lime, {**LIME, "kernel_width": KERNEL_WIDTH, "alpha": ALPHA})}
REFERENCED = set(METHODS)


@pytest.mark.parametrize("kind", CLASS_KINDS)
@pytest.mark.parametrize("name", TWO_OBJECT_PHOTOS)
@pytest.mark.parametrize("method", tuple(METHODS))
def test_perturbation_methods_follow_their_papers(mobilenet, references, method, name, kind):
    ref = references[name]
    target = ref.classes[kind]
    reference, params = METHODS[method]
    result = ours(mobilenet, name, method, target, **params)
    check(result.raw, reference(mobilenet, ref, target), f"{method} {name} {kind}")
