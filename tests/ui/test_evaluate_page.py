"""The Evaluate page through streamlit.testing.v1.AppTest (no browser): faithfulness curves and scores of the chosen
methods, and the model-randomisation sanity check. Small steps and two checkpoints keep it quick."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from cam_core.evaluation.scoring import score_map
from cam_core.inputs.examples import load_example
from tests.conftest import ROOT

TIMEOUT = 120
STEPS = 5
CHECKPOINTS = 2
METHODS = ["gradcam", "eigencam", "layercam"]


def open_evaluate(**state) -> AppTest:
    """The home page, then the Evaluate page with session choices seeded before its first run."""
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    app.run()
    assert not app.exception, app.exception
    for key, value in {"evaluate_steps": STEPS, "evaluate_checkpoints": CHECKPOINTS, **state}.items():
        app.session_state[key] = value
    app.switch_page("pages/evaluate.py")
    app.run()
    assert not app.exception, app.exception
    return app


def strip_captions(app: AppTest) -> list[str]:
    return [im.proto.imgs[0].caption for im in app.get("image") if " · ρ " in im.proto.imgs[0].caption]


@pytest.fixture(scope="module")
def app() -> AppTest:
    return open_evaluate(evaluate_methods=METHODS)


def test_the_default_page_renders_with_its_default_methods():
    app = open_evaluate()
    assert app.title[0].value == "Evaluate"
    assert not app.error and not app.warning
    assert app.slider(key="evaluate_steps").value == STEPS
    table = app.dataframe[0].value
    assert list(table["Method"]) == ["Grad-CAM", "Grad-CAM++", "Layer-CAM", "Eigen-CAM", "Gradient Poly-CAM"]
    assert "Best — deletion:" in "\n".join(m.value for m in app.markdown)
    assert app.get("download_button"), "the CSV download is missing"


def test_curves_and_one_table_row_per_method_matching_the_api(app, mobilenet):
    assert not app.error and not app.warning
    charts = app.get("plotly_chart")
    assert charts, "the curves chart is missing"
    spec = str(charts[0].proto.spec)
    assert "Deletion" in spec and "Insertion" in spec
    table = app.dataframe[0].value
    assert list(table["Method"]) == ["Grad-CAM", "Eigen-CAM", "Layer-CAM"]
    assert set(table["Increase in confidence"]) <= {"yes", "no"}
    assert ((table["Deletion AUC ↓"] > 0) & (table["Deletion AUC ↓"] < 1)).all()

    analysis = mobilenet.analyze(load_example("chelsea"))
    target = app.session_state["target"]
    expected = score_map(analysis, analysis.cam("gradcam", target=target).saliency, target, steps=STEPS)
    row = table[table["Method"] == "Grad-CAM"].iloc[0]
    assert abs(row["Deletion AUC ↓"] - expected.deletion.auc) < 1e-6
    assert abs(row["Insertion AUC ↑"] - expected.insertion.auc) < 1e-6
    # The page runs torch on one thread (as the dashboard does) and this test on two: float32 sums in another order
    # move a probability by about 1e-6, so the drop (in percent, divided by the probability) by up to about 2e-4.
    assert abs(row["Average Drop % ↓"] - 100 * expected.confidence.drop) < 1e-3


def test_changing_steps_changes_the_table_and_switching_back_is_kept(app):
    before = app.dataframe[0].value
    app.slider(key="evaluate_steps").set_value(STEPS + 3)
    app.run()
    assert not app.exception and not app.error
    changed = app.dataframe[0].value
    assert list(changed["Method"]) == list(before["Method"])
    assert not changed["Deletion AUC ↓"].equals(before["Deletion AUC ↓"])
    app.slider(key="evaluate_steps").set_value(STEPS)
    app.run()
    again = app.dataframe[0].value
    assert again["Deletion AUC ↓"].equals(before["Deletion AUC ↓"])
    assert again["Metric time (s)"].equals(before["Metric time (s)"]), "results must be kept, not recomputed"


def test_sanity_check_shows_the_strip_and_a_verdict(app):
    app.selectbox(key="evaluate_sanity_method").set_value("gradcam")
    app.run()
    assert not strip_captions(app) and any("Press the button" in i.value for i in app.info)
    app.button(key="evaluate_sanity_run").click()
    app.run()
    assert not app.exception
    captions = strip_captions(app)
    assert len(captions) == CHECKPOINTS + 1, captions
    assert captions[0].startswith("original · ρ 1.00")
    assert all(c.startswith("randomised down to") for c in captions[1:])
    verdicts = [m.value for m in [*app.success, *app.error]]
    assert len(verdicts) == 1 and verdicts[0].startswith(("Passes", "Fails")), verdicts
    assert len(app.get("plotly_chart")) == 2, "the ρ / SSIM chart is missing"


def test_the_edge_detector_control_fails(app):
    app.selectbox(key="evaluate_sanity_method").set_value("edge")
    app.run()
    app.button(key="evaluate_sanity_run").click()
    app.run()
    assert not app.exception
    assert len(strip_captions(app)) == CHECKPOINTS + 1
    assert not app.success
    assert len(app.error) == 1 and app.error[0].value.startswith("Fails"), [e.value for e in app.error]
