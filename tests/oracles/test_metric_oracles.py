"""Our metrics against the peers' where the definitions match, on real maps of the embedded model (mobilenet_v2) for
the bundled example photos and their boxes drawn by eye.

- Quantus 0.6.0 (read in its site-packages source): each metric's evaluate_batch, the score itself, which its
  __call__ runs after preprocessing that with abs=False, normalise=False leaves the map as given (our maps are ≥ 0,
  so abs changes nothing) and after input checks that take 0.3 s per full-size map; s_batch is the boxes filled in
  as integer pixel slices [y0:y1, x0:x1] (the example boxes have integer corners, so these are the pixels whose
  centre is in a box, our rule):
  - `PointingGame`: a hit when any pixel holding the map's maximum is in the mask: our pointing_hit at tolerance 0
    (the tolerance, which Quantus lacks, is tested on hand-made maps in tests/evaluation/test_pointing.py);
  - `RelevanceMassAccuracy`: Σ map inside the mask / Σ map: our energy_share;
  - `Sparseness`: the Gini index Σ (2i − n − 1) xᵢ / (n Σ x) of the sorted values, after adding 1e-7 to each: our gini;
  - `Complexity`: −Σ p log(p + 1e-12) with p = |x| / Σ|x|: our entropy (0 log 0 = 0).
- torchcam 0.5.0 `ClassificationMetric`: Average Drop max(0, p − p_map) / (p + 1e-7) and Increase in Confidence
  p < p_map, with p_map the softmax probability of the input multiplied by the map resized to it: our Average Drop and
  Increase in Confidence. Its CAM extractor is handed our map at the input's size (map_at_input), so what is compared
  is the metric, not the map; both run on the same copy of the network.
"""

from __future__ import annotations

import copy
import warnings
from contextlib import contextmanager
from functools import partial

import numpy as np
import pytest
import torch

from cam_core.evaluation.boxes import example_boxes
from cam_core.evaluation.metrics import average_drop, confidence_change, increase_in_confidence, map_at_input
from cam_core.evaluation.pointing import boxes_for, energy_share, pointing_hit
from cam_core.evaluation.sparsity import entropy, gini
from cam_core.inputs.examples import examples, load_example

quantus = pytest.importorskip("quantus", reason="pip install quantus==0.6.0 (scripts/install.sh --test)")
metrics = pytest.importorskip("torchcam.metrics")

METHODS = ("gradcam", "gradcampp", "layercam", "eigencam")


@pytest.fixture(scope="module")
def maps(mobilenet) -> list[tuple[str, int, np.ndarray, list]]:
    """(photo, class, map, the class's boxes) for every example photo, every method, and every class that has boxes
    in the photo plus the top class."""
    found = []
    for name in examples():
        analysis = mobilenet.analyze(load_example(name))
        boxes = example_boxes(name)
        classes = dict.fromkeys([analysis.target(None), *(box.label for box in boxes if box.label is not None)])
        for method in METHODS:
            for target in classes:
                saliency = analysis.cam(method, target=target).saliency.astype(np.float64)
                found.append((name, target, saliency, boxes_for(boxes, target)))
    return found


def filled(boxes, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape)
    for box in boxes:
        mask[int(box.y0) : int(box.y1), int(box.x0) : int(box.x1)] = 1
    return mask


def quantus_score(metric, saliency: np.ndarray, mask: np.ndarray | None = None) -> float:
    """metric's score of one map (a batch of one, one channel); the input is unused by these metrics."""
    batch = saliency[None, None].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if mask is None:
            scores = metric.evaluate_batch(x_batch=np.zeros((1, 3, 1, 1)), a_batch=batch)
        else:
            scores = metric.evaluate_batch(a_batch=batch, s_batch=mask[None, None])
    return float(scores[0])


def test_pointing_game_and_energy_share_match_quantus(maps):
    pointing = quantus.PointingGame(abs=False, normalise=False, disable_warnings=True)
    mass = quantus.RelevanceMassAccuracy(abs=False, normalise=False, disable_warnings=True)
    hits = []
    for name, target, saliency, boxes in maps:
        if not boxes:
            continue
        mask = filled(boxes, saliency.shape)
        hit = pointing_hit(saliency, boxes)
        assert hit == bool(quantus_score(pointing, saliency, mask)), (name, target)
        assert energy_share(saliency, boxes) == pytest.approx(quantus_score(mass, saliency, mask), abs=1e-9)
        hits.append(hit)
    assert len(hits) >= 40 and 0 < sum(hits) < len(hits)  # both hits and misses were compared


def test_gini_and_entropy_match_quantus_sparseness_and_complexity(maps):
    sparseness = quantus.Sparseness(abs=False, normalise=False, disable_warnings=True)
    complexity = quantus.Complexity(abs=False, normalise=False, disable_warnings=True)
    ginis = []
    for name, target, saliency, _ in maps[::2]:
        ginis.append(gini(saliency))
        assert ginis[-1] == pytest.approx(quantus_score(sparseness, saliency), abs=1e-5), (name, target)
        assert entropy(saliency) == pytest.approx(quantus_score(complexity, saliency), abs=1e-5), (name, target)
    assert max(ginis) - min(ginis) > 0.2  # maps of very different sparseness were compared


class GivenMap:
    """A torchcam CAM extractor that hands over one fixed map (at the input's size)."""

    def __init__(self, model: torch.nn.Module, cam: torch.Tensor) -> None:
        self.model, self.cam = model, cam

    def __call__(self, class_idx=None, scores=None, normalized=True, **kwargs) -> list[torch.Tensor]:
        return [self.cam[None]]

    def fuse_cams(self, cams: list[torch.Tensor]) -> torch.Tensor:
        return cams[0]

    @contextmanager
    def _hooks_off(self):
        yield


def test_average_drop_and_increase_in_confidence_match_torchcam(mobilenet):
    network = copy.deepcopy(mobilenet.model.module).eval()
    changes = []
    for name in examples():
        analysis = mobilenet.analyze(load_example(name))
        for method in ("gradcam",):
            result = analysis.cam(method)
            change = confidence_change(network, analysis.input, result.saliency, result.target)
            extractor = GivenMap(network, map_at_input(result.saliency, analysis.input))
            theirs = metrics.ClassificationMetric(extractor, partial(torch.softmax, dim=-1))
            theirs.update(analysis.input, class_idx=result.target)
            summary = theirs.summary()
            assert change.drop == pytest.approx(summary["avg_drop"], abs=1e-5), (name, method)
            assert change.increase == bool(summary["conf_increase"]), (name, method)
            changes.append(change)
    drops = [change.drop for change in changes]
    assert average_drop(changes) == pytest.approx(100 * np.mean(drops))
    assert max(drops) - min(drops) > 0.2  # maps that keep and maps that lose the confidence were compared
    assert 0 <= increase_in_confidence(changes) <= 100
