"""A method lives in one place: registered in one call (its card, its function, its lesson), it is at once in the
method list, the CLI, the README's table, the API with its parameters checked, Learn, the Channels rankings and the
pages' pickers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cam_core import CamError, methods, registry
from cam_core.cli import main
from cam_core.lessons import lesson
from cam_core.lessons.steps import Step, array, weight_bars
from cam_core.methods.catalogue import markdown_table
from cam_core.methods.common import weighted_sum
from cam_core.registry import CamInputs, MethodCard, MethodOutput, Param, register
from cam_core.views.channels import channel_scores, rankings
from tests.conftest import open_app

CARD = MethodCard(
    id="meanchannel",
    name="Mean channel",
    family="test",
    needs=frozenset(),
    cost="instant",
    summary="Every channel weighs the same.",
    explanation="The channels' mean, times a scale.",
    formula=r"L = \frac{s}{C}\sum_k A^k",
    paper="none (a test)",
    definition="the mean of the channels",
    reference="hand-computed tensors",
    ranking="Mean-channel weight",
    params=(Param("scale", 1.0, "what the mean is multiplied by", minimum=0.0, maximum=10.0),),
    class_specific=False,
)


def compute(inputs: CamInputs, scale: float) -> MethodOutput:
    channels = inputs.activations.shape[0]
    weights = torch.full((channels,), scale / channels, dtype=inputs.activations.dtype)
    return MethodOutput(weighted_sum(weights, inputs.activations), weights)


def steps(source) -> list[Step]:
    return [Step("weights", "Equal weights", f"Each of the {source.weights.numel()} channels weighs the same.",
                 "one weight for all", (weight_bars(source.weights, "weight"),), array(source.weights))]


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setattr(registry, "_METHODS", dict(registry._METHODS))
    register(CARD, compute, steps)


def test_a_method_registered_in_one_call_is_everywhere(registered, mobilenet, chelsea, capsys):
    assert [card.id for card in methods()][-1] == "meanchannel"
    assert main(["methods"]) == 0
    assert "meanchannel\ttest\tinstant\tMean channel" in capsys.readouterr().out.splitlines()
    assert markdown_table().splitlines()[-1].startswith("| `meanchannel` | Mean channel | instant | the mean of")
    analysis = mobilenet.analyze(chelsea)
    result = analysis.cam("meanchannel", scale=2.0)
    np.testing.assert_allclose(result.raw, 2.0 * analysis.activations().mean(dim=0).numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(CamError, match="scale must be between 0.0 and 10.0"):
        analysis.cam("meanchannel", scale=20.0)
    story = lesson(analysis, "meanchannel", scale=2.0)
    assert [step.stage for step in story.steps] == ["weights", "relu", "upsample", "overlay"]
    np.testing.assert_array_equal(story.raw, result.raw)
    assert rankings()["meanchannel"] == "Mean-channel weight"
    np.testing.assert_array_equal(channel_scores(analysis, "meanchannel"), analysis.cam("meanchannel").weights)


def test_the_pages_offer_it_without_a_line_of_their_own(registered):
    app = open_app()
    for page, key, label in (("compare", "compare_methods", CARD.name),
                             ("learn", "learn_method", f"{CARD.name} · {CARD.family}")):
        app.switch_page(f"pages/{page}.py")
        app.run()
        assert not app.exception, app.exception
        widget = app.multiselect(key=key) if page == "compare" else app.selectbox(key=key)
        assert label in widget.options, f"{page} does not offer the new method"
        if page == "compare":
            assert "meanchannel" in widget.value, "an instant method joins Compare's default grid"


def test_the_registry_refuses_a_second_method_of_the_same_id(registered):
    with pytest.raises(ValueError, match="registered twice"):
        register(CARD, compute, steps)
