"""Smooth Grad-CAM++, Integrated Grad-CAM, multi-layer Layer-CAM, Zoom-CAM, Gradient Poly-CAM and the guided
methods on real photos: the Egyptian cat's map (in every variant of the methods' settings) peaks on the cat, and
Poly-CAM's refinement gives sharper maps than Grad-CAM."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cam_core.methods.multilayer import refine
from cam_core.render.saliency import saliency_map
from tests.conftest import CAT_FAMILY, NEW_METHODS, cat_on_canvas, peak

EGYPTIAN_CAT = 285


def concentration(saliency: np.ndarray, share: float = 0.5) -> float:
    """The fraction of pixels that hold `share` of the map's total mass (largest values first): smaller = sharper."""
    values = np.sort(np.asarray(saliency, dtype=np.float64).ravel())[::-1]
    cumulative = np.cumsum(values)
    return float((np.searchsorted(cumulative, share * cumulative[-1]) + 1) / values.size)


VARIANTS = [
    ("smoothgradcampp", {}),
    ("smoothgradcampp", {"samples": 4, "sigma": 0.3, "seed": 5}),
    ("intgradcam", {}),
    ("intgradcam", {"steps": 4, "blur": 4.0}),
    ("layercam", {}),
    ("layercam", {"layers": "pyramid"}),
    ("layercam", {"layers": "pyramid", "fusion": "mean"}),
    ("zoomcam", {}),
    ("gradpolycam", {}),
    ("gradpolycam", {"base": "layercam"}),
    ("guidedbackprop", {}),
    ("guidedgradcam", {}),
]


@pytest.fixture(scope="module")
def canvas_analysis(mobilenet, chelsea):
    canvas, box = cat_on_canvas(chelsea)
    analysis = mobilenet.analyze(canvas)
    assert analysis.top_k(1)[0][0] in CAT_FAMILY
    return analysis, box


@pytest.mark.parametrize(("method", "params"), VARIANTS, ids=[f"{m}-{'-'.join(p) or 'default'}" for m, p in VARIANTS])
def test_the_egyptian_cats_map_peaks_on_the_cat(canvas_analysis, mobilenet, method, params):
    analysis, (top, bottom, left, right) = canvas_analysis
    params = dict(params)
    if params.get("layers") == "pyramid":
        params["layers"] = mobilenet.model.pyramid()
    result = analysis.cam(method, target=EGYPTIAN_CAT, **params)
    assert result.target == EGYPTIAN_CAT and result.label == "Egyptian cat"
    row, column = peak(result.saliency)
    assert top <= row < bottom and left <= column < right, (method, params, (row, column))
    inside = result.saliency[top:bottom, left:right].sum() / result.saliency.sum()
    assert inside > 0.6, f"{method} {params}: only {inside:.2f} of the map's mass is on the cat"


@pytest.mark.parametrize("method", NEW_METHODS)
def test_chelseas_own_map_peaks_on_the_cat_not_the_border(mobilenet, chelsea, method):
    result = mobilenet.analyze(chelsea).cam(method, target=EGYPTIAN_CAT)
    row, column = peak(result.saliency)
    height, width = result.saliency.shape
    assert (height, width) == (chelsea.height, chelsea.width)
    assert 0.15 * height < row < 0.95 * height and 0.2 * width < column < 0.8 * width, (method, (row, column))
    assert np.isfinite(result.raw).all() and result.note == ""


IMAGES = ["chelsea", "coffee", "dog_photo"]


@pytest.fixture(scope="module")
def sharpness(mobilenet, request):
    """Concentration (fraction of pixels holding half the mass) of Grad-CAM, of Grad-CAM upsampled through the
    pyramid's sizes with nothing refining it, and of Poly-CAM with each kind of mask, per image (top-1 class)."""
    found = {}
    for name in IMAGES:
        analysis = mobilenet.analyze(request.getfixturevalue(name))
        gradcam = analysis.cam("gradcam")
        sizes = [tuple(analysis.activations(layer).shape[1:]) for layer in mobilenet.model.pyramid()[:-1]]
        flat = refine(torch.from_numpy(gradcam.raw).clamp(min=0), [torch.ones(size) for size in sorted(sizes)])
        row = {
            "gradcam": concentration(gradcam.saliency),
            "cascade": concentration(saliency_map(flat, analysis.size)[0]),
        }
        for masks in ("activations", "layercam"):
            row[masks] = concentration(analysis.cam("gradpolycam", masks=masks).saliency)
        found[name] = row
        print(f"\n{name} ({analysis.top_k(1)[0][1]}): fraction of pixels holding 50% of the mass: "
              + ", ".join(f"{key} {value:.4f}" for key, value in row.items()))
    return found


@pytest.mark.parametrize("name", IMAGES)
def test_gradpolycam_with_class_specific_masks_is_sharper_than_gradcam(sharpness, name):
    row = sharpness[name]
    assert row["layercam"] < row["gradcam"], row


@pytest.mark.parametrize("name", IMAGES)
def test_gradpolycam_refinement_concentrates_the_upsampled_map(sharpness, name):
    """The activation masks move each cell's evidence to where the finer layer responds, so Poly-CAM is sharper than
    the same map upsampled through the same sizes with nothing refining it."""
    row = sharpness[name]
    assert row["activations"] < row["cascade"], row
