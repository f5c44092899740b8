"""Many sessions on one server: no deadlock, no race, the same maps as alone, and no request stuck behind another's
long pass."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from cam_core import Explainer, methods
from cam_core.passes.inference import pass_chunk
from cam_core.registry import get_method
from cam_core.sharing.once import SharedWork
from cam_core.sharing.slots import FairSlots
from cam_core.sharing.waiting import Wait, on_wait
from tests.conftest import count_passes, fresh_analysis, run_threads, runs_on

FAST = [card.id for card in methods() if card.cost in ("instant", "fast")]
# The cheapest settings of the methods that run many passes: every code path still runs, in a fraction of the time.
LIGHT = {"smoothgradcampp": {"samples": 4}, "intgradcam": {"steps": 4}, "groupcam": {"groups": 6},
         "clustercam": {"groups": 4}, "cosinecam": {"groups": 4}}
SECOND_CLASS = 717  # pickup: a second target for every photo, so class switches run under load too


def every_fast_map(explainer: Explainer, photo) -> dict:
    """(method, class) → (raw, saliency) of every instant or fast method for the top class and a second class."""
    analysis = explainer.analyze(photo)
    found = {}
    for target in (None, SECOND_CLASS):
        for method in (m for m in FAST if runs_on(explainer, get_method(m).card)):
            result = analysis.cam(method, target=target, **LIGHT.get(method, {}))
            found[method, result.target] = (result.raw, result.saliency)
    return found


def test_eight_threads_on_eight_photos_with_every_fast_method_get_their_solo_maps_bit_for_bit(eight_photos):
    """The deadlock of issue 13: mask scores, clusters and the cache's trimming from eight threads at once, under a
    cache bound so small that every new quantity evicts an analysis."""
    alone = Explainer("mobilenet_v2")  # one photo at a time, in this thread, on a model of its own
    solo = [every_fast_map(alone, photo) for photo in eight_photos]
    shared = Explainer("mobilenet_v2", cache_bytes=8 << 20)
    together = run_threads(lambda photo: every_fast_map(shared, photo), eight_photos, timeout=240)
    for index, (alone, loaded) in enumerate(zip(solo, together, strict=True)):
        assert alone.keys() == loaded.keys()
        for key, (raw, saliency) in alone.items():
            assert np.array_equal(raw, loaded[key][0]), f"photo {index} {key}: raw map differs under load"
            assert np.array_equal(saliency, loaded[key][1]), f"photo {index} {key}: saliency differs under load"
    assert shared.cache.nbytes <= max(shared.cache.max_bytes, max(a.nbytes for a in shared.cache._items.values()))
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in shared.model.module.modules())


def test_a_long_pass_in_progress_blocks_neither_another_image_nor_a_class_switch(chelsea, coffee):
    """Score-CAM is held mid-way (its progress callback waits); meanwhile another image's Grad-CAM and this image's
    Grad-CAM for a new class must complete."""
    explainer = Explainer("mobilenet_v2")
    analysis = explainer.analyze(chelsea)
    analysis.cam("gradcam")
    inside, release = threading.Event(), threading.Event()

    def hold(done: int, total: int) -> None:
        inside.set()
        release.wait(60)

    long = threading.Thread(target=lambda: analysis.cam("scorecam", layer="features.16", progress=hold), daemon=True)
    long.start()
    assert inside.wait(60), "Score-CAM never started"
    try:
        quick = run_threads(
            lambda job: job(),
            [lambda: explainer.analyze(coffee).cam("gradcam"), lambda: analysis.cam("gradcam", target=SECOND_CLASS),
             lambda: analysis.cam("layercam", target=281)],
            timeout=30,
        )
        assert [r.method for r in quick] == ["gradcam", "gradcam", "layercam"]
        assert long.is_alive(), "the quick requests must have run while Score-CAM was still in progress"
    finally:
        release.set()
    long.join(60)
    assert not long.is_alive()


class GaveUp(BaseException):
    """What a Streamlit rerun raises in a page's thread (a BaseException, like Streamlit's own)."""


def test_work_abandoned_by_its_session_stops_and_a_waiting_session_takes_it_over(mobilenet, chelsea):
    """Two sessions ask for the same Score-CAM: the first gives up after its first batch (its page moved on), so no
    more of its batches run; the second, which was waiting for that same work, computes it whole."""
    explainer = mobilenet
    analysis = fresh_analysis(explainer, chelsea)
    fast = explainer.fast_model()
    first_batch, second_waits = threading.Event(), threading.Event()
    waits: list[Wait] = []

    def give_up(done: int, total: int) -> None:
        first_batch.set()
        assert second_waits.wait(30)
        raise GaveUp

    def first() -> str:
        try:
            analysis.cam("scorecam", layer="features.16", batch_size=16, progress=give_up)
        except GaveUp:
            return "gave up"
        return "finished"

    def second():
        assert first_batch.wait(30)

        def note(wait: Wait) -> None:
            waits.append(wait)
            second_waits.set()

        with on_wait(note):
            return analysis.cam("scorecam", layer="features.16", batch_size=16)

    with count_passes(fast) as passes:
        outcome, result = run_threads(lambda job: job(), [first, second], timeout=120)
    assert outcome == "gave up"
    assert waits and waits[0].shared, "the second session must have waited for the first's work, not started its own"
    channels = analysis.activations("features.16").shape[0]
    batches, forwards = -(-channels // 16), -(-16 // pass_chunk(fast))  # a batch runs pass_chunk images a forward
    # the first's baseline, ≤ 2 batches in flight, the second's baseline and batches
    assert len(passes) <= 1 + 2 * forwards + 1 + batches * forwards, (len(passes), batches)
    solo = fresh_analysis(explainer, chelsea).cam("scorecam", layer="features.16", batch_size=16)
    assert np.array_equal(result.raw, solo.raw)


def hold_slot(slots: FairSlots) -> tuple[threading.Thread, threading.Event]:
    """A thread that takes slots' only slot and keeps it until the returned event is set."""
    inside, release = threading.Event(), threading.Event()

    def holder() -> None:
        with slots.slot():
            inside.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    assert inside.wait(10)
    return thread, release


def test_pass_slots_admit_in_arrival_order_and_say_how_many_are_ahead():
    slots = FairSlots(capacity=lambda: 1)
    holder, release = hold_slot(slots)
    order: list[int] = []
    seen: dict[int, list[int]] = {}

    def queued(index: int) -> None:
        with on_wait(lambda wait: seen.setdefault(index, []).append(wait.ahead)), slots.slot():
            order.append(index)

    waiting = []
    for index in range(3):
        waiting.append(threading.Thread(target=queued, args=(index,)))
        waiting[-1].start()
        while slots.load() != (1, index + 1):
            time.sleep(0.01)
    time.sleep(0.5)
    release.set()
    for thread in [holder, *waiting]:
        thread.join(30)
    assert order == [0, 1, 2]
    assert [seen[i][0] for i in range(3)] == [1, 2, 3], seen  # the running pass and those queued before
    assert slots.load() == (0, 0)


def test_a_waiter_that_gives_up_leaves_the_queue():
    slots = FairSlots(capacity=lambda: 1)
    holder, release = hold_slot(slots)

    def impatient(wait: Wait) -> None:
        raise GaveUp

    with pytest.raises(GaveUp), on_wait(impatient), slots.slot():
        pass
    assert slots.load() == (1, 0)
    release.set()
    holder.join(30)
    assert slots.load() == (0, 0)


def test_shared_work_runs_once_for_simultaneous_askers_and_again_after_a_failure():
    work = SharedWork()
    calls: list[int] = []
    gate = threading.Event()

    def compute() -> int:
        calls.append(1)
        gate.wait(10)
        return len(calls)

    def ask(_):
        return work.run("key", compute)

    threading.Timer(0.5, gate.set).start()
    assert run_threads(ask, range(6), timeout=30) == [1] * 6
    assert len(calls) == 1

    def failing() -> int:
        raise ValueError("broken")

    with pytest.raises(ValueError):
        work.run("other", failing)
    assert work.run("other", lambda: 7) == 7


def test_building_an_inference_copy_does_not_disturb_other_threads_passes(chelsea, coffee):
    """Symbolic tracing patches every module's call in the process, so a copy built that way broke other threads'
    passes ("module is not installed as a submodule"); the copy is now built from hooks on itself."""
    from cam_core.passes.inference import inference_copy

    explainer = Explainer("mobilenet_v2")
    model = explainer.model.module
    example = explainer.analyze(chelsea).input

    def build(_):
        with torch.inference_mode():
            expected = model(example)
        return [type(inference_copy(model, example, expected)).__name__ for _ in range(3)]

    def explain(photo):
        return [Explainer("mobilenet_v2").analyze(photo).cam("gradcam").target for _ in range(3)]

    found = run_threads(lambda job: job[0](job[1]), [(build, None), (explain, coffee), (explain, chelsea)], timeout=120)
    assert found[0] == ["MobileNetV2"] * 3 and len(set(found[1])) == 1 and len(set(found[2])) == 1
