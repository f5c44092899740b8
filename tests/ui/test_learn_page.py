"""The Learn page through streamlit.testing.v1.AppTest: it teaches every method step by step (the steps of
cam_core.lessons), shows Grad-CAM's weights as numbers, marks where two methods part, and runs no model pass of its
own once the method's quantities are known.

The page and this module share the dashboard's own cached Explainer (tests.conftest.dashboard_explainer, as
tests/lessons/ does), so the expected lessons read the page's Analysis and every model pass runs once. Score-CAM
runs at features.16 (160 channels) and Poly-CAM on two cheap layers to keep their passes short."""

from __future__ import annotations

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cam_core import methods
from cam_core.inputs.examples import load_example
from cam_core.lessons import lesson
from cam_core.views.specificity import specificity
from tests.conftest import CHEAP_LAYER, CHEAP_PYRAMID, ROOT, cheap_settings, count_passes, skip_unless_runs_on

TIMEOUT = 300
SCORE_LAYER = CHEAP_LAYER
IDS = [card.id for card in methods()]
CARDS = {card.id: card for card in methods()}


@pytest.fixture(scope="module")
def explainer(dashboard_explainer):
    return dashboard_explainer


@pytest.fixture(scope="module")
def analysis(explainer):
    return explainer.analyze(load_example("chelsea"))


def page_settings(explainer, method: str) -> dict:
    """What the page asks for by default: the pyramid for multi-layer methods (fewer channels for the slow ones)."""
    if CARDS[method].multi_layer:
        return cheap_settings(CARDS[method]) or {"layers": explainer.model.pyramid()}
    return cheap_settings(CARDS[method]) or {"layer": explainer.default_layer}


@pytest.fixture(scope="module")
def app(explainer) -> AppTest:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    app.run()
    assert not app.exception, app.exception
    return app


def open_learn(app: AppTest, method: str) -> AppTest:
    app.session_state["learn_method"] = method
    app.session_state["learn_layer"] = SCORE_LAYER if method == "scorecam" else "features.18"
    if CARDS[method].cost == "slow" and not CARDS[method].multi_layer:  # SS-CAM, IS-CAM: the cheap layer too
        app.session_state["learn_layer"] = cheap_settings(CARDS[method])["layer"]
    if cheap_settings(CARDS[method]).get("layers"):
        app.session_state[f"learn_layers_{method}_mobilenet_v2"] = list(CHEAP_PYRAMID)
    for name, value in cheap_settings(CARDS[method]).items():  # few samples for the many-pass methods
        if name not in ("layer", "layers"):
            app.session_state[f"learn_{method}_{name}"] = value
    app.switch_page("pages/learn.py")
    app.run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    return app


@pytest.mark.parametrize("method", IDS)
def test_the_page_teaches_every_method(app, explainer, analysis, method):
    skip_unless_runs_on(explainer, CARDS[method])
    open_learn(app, method)
    expected = lesson(analysis, method, **page_settings(explainer, method))
    headings = [h.value for h in app.subheader]
    for number, step in enumerate(expected.steps, start=1):
        assert f"{number}. {step.heading}" in headings
    assert app.get("plotly_chart") and app.get("image")
    assert app.selectbox(key="learn_method").value == method


def test_the_page_shows_gradcams_weights_as_numbers(app, analysis):
    open_learn(app, "gradcam")
    table = next(frame.value for frame in app.dataframe if list(frame.value.columns) == ["channel", "weight"])
    weights = analysis.cam("gradcam").weights
    np.testing.assert_array_equal(table["weight"].to_numpy(), weights[table["channel"].to_numpy()])
    assert len(table) == 12


def test_the_differ_panel_marks_where_gradcam_and_gradcampp_part(app):
    open_learn(app, "gradcam")
    assert app.selectbox(key="learn_other_gradcam").value == "gradcampp"
    assert "they part at the channel weights" in app.info[0].value
    marked = [m.value for m in app.markdown if "they part here" in m.value]
    assert marked == [":red[**3. The channel weights: the mean gradient** · they part here]",
                      ":red[**3. The channel weights: α-weighted positive gradients** · they part here]"]
    app.selectbox(key="learn_other_gradcam").set_value("eigencam")
    app.run()
    assert not app.exception
    assert "Both use the same activations; then they take different steps" in app.info[0].value
    assert [m.value.split("**")[1] for m in app.markdown if "they part here" in m.value] == [
        "2. The gradients of “Egyptian cat”", "2. The positions × channels matrix"]


def test_opening_the_page_runs_no_model_pass_once_gradcam_is_known(explainer):
    coffee = load_example("coffee")
    known = explainer.analyze(coffee)
    known.cam("gradcam")
    specificity(known, "gradcam", known.target(None), known.comparison_class(known.target(None)),
                layer=explainer.default_layer)  # its caption's search of the other layers, once per image
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    app.session_state["image"] = coffee
    app.session_state["image_name"] = "example: coffee"
    app.session_state["image_note"] = "400×600 pixels"
    app.switch_page("pages/learn.py")
    modules = [explainer.model.module, explainer.fast_model(), explainer.guided_model().module]
    with count_passes(*modules) as passes:
        app.run()
    assert not app.exception and not app.error
    assert "1. The activations" in [h.value for h in app.subheader]
    assert "espresso" in app.subheader[1].value
    assert passes == [], f"the Learn page ran {len(passes)} model passes"


def test_the_page_gives_class_specificity_digits_and_ends_the_differ_panel_with_a_difference_map(app):
    open_learn(app, "scorecam")
    assert any(c.value.startswith("How class-specific: r = ") for c in app.caption), [c.value for c in app.caption]
    table = next(frame for frame in app.dataframe if list(frame.value.columns)[0] == "channel")
    column = list(table.value.columns)[1]
    values = table.value[column].to_numpy()
    shown = json.loads(table.proto.columns)[column]["type_config"]["format"] % float(np.abs(values[values != 0]).min())
    assert len(shown.lstrip("-0.").replace(".", "")) >= 3, f"{shown}: the weights need three significant digits"
    ends = [m.value for m in app.markdown if m.value.startswith("**Where they differ:")]
    assert ends == ["**Where they differ: Score-CAM − Grad-CAM**"], ends
