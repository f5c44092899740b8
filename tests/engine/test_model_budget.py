"""The bound on users' own models: a load beyond it is refused with a message, and the bytes come back when a model
is replaced or its last reference goes (its session ended)."""

from __future__ import annotations

import gc

import pytest

from cam_core import CamError
from cam_core.sharing.model_budget import OWN_CACHE_BYTES, WORKING_COPIES, ModelBudget, model_cost, own_models_limit

MIB = 1 << 20


class Owner:
    """Stands for an Explainer: an object in a reference cycle, as an Explainer is with its analyses."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def budget() -> ModelBudget:
    return ModelBudget(limit=lambda: 100 * MIB)


def test_a_charge_beyond_the_bound_is_refused_with_the_sizes_and_holds_nothing(budget):
    first = Owner()
    budget.charge(first, 60 * MIB, "resnet18")
    with pytest.raises(CamError, match=r"resnet50 needs about 0\.05 GiB.*hold 0\.06 GiB of the 0\.10 GiB"):
        budget.charge(Owner(), 50 * MIB, "resnet50")
    with pytest.raises(CamError, match="CAM_OWN_MODELS_BYTES"):
        budget.check(41 * MIB, "resnet50")
    assert budget.used == 60 * MIB and budget.owners == 1
    budget.check(40 * MIB, "resnet50")


def test_release_gives_the_bytes_back_at_once_and_only_once(budget):
    first, second = Owner(), Owner()
    budget.charge(first, 60 * MIB, "first")
    budget.charge(second, 30 * MIB, "second")
    budget.release(first)
    budget.release(first)
    assert budget.used == 30 * MIB and budget.owners == 1
    budget.charge(Owner(), 70 * MIB, "a replacement")  # fits now
    budget.release(Owner())  # never charged: nothing happens
    assert budget.used <= 100 * MIB


def test_the_bytes_come_back_when_the_owner_is_collected(budget):
    owner = Owner()
    budget.charge(owner, 80 * MIB, "a session's model")
    del owner
    assert budget.used == 80 * MIB  # a cycle: only the collector frees it
    gc.collect()
    assert budget.used == 0 and budget.owners == 0


def test_a_real_explainer_with_an_analysis_is_released_when_collected():
    from PIL import Image

    from cam_core import Explainer

    entry = {"source": "torchvision", "architecture": "resnet18", "kwargs": {"num_classes": 5},
             "labels": ["a", "b", "c", "d", "e"], "target_layer": "layer4", "head": ["avgpool", "flatten", "fc"],
             "preprocessing": {"input_size": 64, "mean": [0.5] * 3, "std": [0.5] * 3}}
    budget = ModelBudget(limit=lambda: 1 << 40)
    explainer = Explainer.from_spec(entry, weights="random", cache_bytes=MIB)
    explainer.analyze(Image.new("RGB", (64, 64))).cam("gradcam")
    budget.charge(explainer, 5 * MIB, "resnet18")
    del explainer
    gc.collect()
    assert budget.used == 0 and budget.owners == 0


def test_the_cost_counts_every_working_copy_and_the_cache():
    assert model_cost(10 * MIB) == WORKING_COPIES * 10 * MIB + OWN_CACHE_BYTES
    assert model_cost(10 * MIB, cache_bytes=0) == WORKING_COPIES * 10 * MIB


def test_the_bound_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("CAM_OWN_MODELS_BYTES", "12345")
    assert own_models_limit() == 12345
    monkeypatch.setenv("CAM_OWN_MODELS_BYTES", "lots")
    with pytest.raises(CamError, match="'lots'"):
        own_models_limit()
    monkeypatch.delenv("CAM_OWN_MODELS_BYTES")
    assert own_models_limit() == 4 << 30
