"""The engine part of RISE, occlusion and LIME: their perturbed inputs are scored once per image and spec, every
class at once (a class switch runs no pass), in batches that report progress and partial maps, and the cached
scores are counted in the Analysis' size."""

from __future__ import annotations

import numpy as np
import pytest

from cam_core.registry import get_method
from tests.conftest import count_passes, fresh_analysis

FEW = {"rise": {"samples": 32}, "occlusion": {"window": 112, "stride": 56}, "lime": {"samples": 32, "segments": 20}}


@pytest.mark.parametrize("method", tuple(FEW))
def test_a_class_switch_runs_no_pass_and_the_scores_are_counted(method, mobilenet, chelsea):
    analysis = fresh_analysis(mobilenet, chelsea)
    before = analysis.nbytes
    first = analysis.cam(method, **FEW[method])
    scores = analysis.input_scores(get_method(method).card.input_spec(first.params))
    assert scores.complete and analysis.nbytes - before >= scores.nbytes >= scores.logits.numel() * 4
    with count_passes(mobilenet.model.module, mobilenet.fast_model()) as passes:
        for target in (282, 1, 717):
            again = analysis.cam(method, target=target, **FEW[method])
            assert again.target == target and not np.array_equal(again.raw, first.raw)
    assert passes == [], f"{method}: a class switch ran {len(passes)} model passes"


@pytest.mark.parametrize("method", tuple(FEW))
def test_batches_report_progress_and_partial_maps_and_do_not_change_the_map(method, mobilenet, chelsea):
    seen, partial = [], []
    streamed = fresh_analysis(mobilenet, chelsea).cam(
        method, batch_size=8, progress=lambda done, total: seen.append((done, total)), partial=partial.append,
        **FEW[method])
    total = seen[-1][1]
    assert seen[-1] == (total, total) and [done for done, _ in seen] == sorted({done for done, _ in seen})
    assert len(partial) == len(seen) - 1 and all("scored so far" in result.note for result in partial)
    assert streamed.note == "" and partial[-1].raw.shape == streamed.raw.shape
    whole = fresh_analysis(mobilenet, chelsea).cam(method, batch_size=64, **FEW[method])
    np.testing.assert_allclose(streamed.raw, whole.raw, rtol=1e-4, atol=1e-5 * float(np.abs(whole.raw).max()))
