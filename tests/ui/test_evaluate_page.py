"""The Evaluate page through streamlit.testing.v1.AppTest (no browser): one image's scores with no best, the
pointing columns once there are boxes (the example's, loaded with one click) and boxes that belong to their image,
every bundled example with 95 % intervals and a best only where they separate, uploads with a boxes CSV, and the
sanity check over seeds. Few steps, two methods and two checkpoints keep it quick; drawing a box with the mouse is
the browser test's (tests/browser/test_browser_evaluate.py)."""

from __future__ import annotations

import io
import math

import pandas as pd
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from cam_core.evaluation.boxes import example_boxes
from cam_core.evaluation.intervals import bootstrap_interval
from cam_core.evaluation.pointing import POINTING_TOLERANCE, Box, boxes_for, energy_share, pointing_hit
from cam_core.evaluation.scoring import protocol, score_map
from cam_core.evaluation.sparsity import gini
from cam_core.inputs.examples import examples, load_example
from pages.ui.box_picker import selection_box
from pages.ui.evaluation_tables import FAITHFULNESS, METRICS, ONE_IMAGE, summary_table
from tests.conftest import ROOT

TIMEOUT = 120
STEPS = 5
CHECKPOINTS = 2
METHODS = ["gradcam", "eigencam"]


def open_evaluate(**state) -> AppTest:
    """The home page, then the Evaluate page with session choices seeded before its first run."""
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    app.run()
    assert not app.exception, app.exception
    seeded = {"evaluate_steps": STEPS, "evaluate_checkpoints": CHECKPOINTS, "evaluate_methods": METHODS, **state}
    for key, value in seeded.items():
        app.session_state[key] = value
    app.switch_page("pages/evaluate.py")
    app.run()
    assert not app.exception, app.exception
    return app


def texts(app: AppTest) -> str:
    return "\n".join(m.value for m in [*app.markdown, *app.caption, *app.info])


def table(app: AppTest, column: str) -> pd.DataFrame:
    """The first table on the page with this column (AppTest does not give a dataframe's key)."""
    found = [frame.value for frame in app.dataframe if column in frame.value]
    assert found, f"no table with a {column!r} column"
    return found[0]


def strip_captions(app: AppTest) -> list[str]:
    return [im.proto.imgs[0].caption for im in app.get("image") if " · ρ " in im.proto.imgs[0].caption]


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def app() -> AppTest:
    return open_evaluate()


def test_one_image_shows_each_methods_values_and_no_best(app, mobilenet):
    assert not app.error and not app.warning
    scores = table(app, "Method")
    assert list(scores["Method"]) == ["Grad-CAM", "Eigen-CAM"]
    assert "Pointing % ↑" not in scores, "no box yet: no pointing columns"
    assert "One image: no interval, no best" in texts(app)
    assert "Best, where" not in texts(app)

    analysis = mobilenet.analyze(load_example("chelsea"))
    target = app.session_state["target"]
    saliency = analysis.cam("gradcam", target=target).saliency
    expected = score_map(analysis, saliency, target, steps=STEPS)
    row = scores[scores["Method"] == "Grad-CAM"].iloc[0]
    assert abs(row["Deletion AUC ↓"] - expected.deletion.auc) < 1e-6
    assert abs(row["Insertion AUC ↑"] - expected.insertion.auc) < 1e-6
    # The page runs torch on one thread (as the dashboard does) and this test on two: float32 sums in another order
    # move a probability by about 1e-6, so the drop (in percent, divided by the probability) by up to about 2e-4.
    assert abs(row["Average Drop % ↓"] - 100 * expected.confidence.drop) < 1e-3
    assert abs(row["Gini"] - gini(saliency)) < 1e-9


def test_the_examples_boxes_give_the_pointing_columns_of_the_api(app, mobilenet):
    app.button(key="evaluate_example_boxes").click()
    app.run()
    assert not app.exception and not app.error
    scores = table(app, "Method")
    analysis = mobilenet.analyze(load_example("chelsea"))
    target = app.session_state["target"]
    boxes = boxes_for(example_boxes("chelsea"), target)
    assert boxes, "chelsea's box is for its top class"
    for method, name in (("gradcam", "Grad-CAM"), ("eigencam", "Eigen-CAM")):
        saliency = analysis.cam(method, target=target).saliency
        row = scores[scores["Method"] == name].iloc[0]
        assert row["Pointing % ↑"] == 100 * pointing_hit(saliency, boxes, tolerance=POINTING_TOLERANCE)
        assert abs(row["Energy pointing % ↑"] - 100 * energy_share(saliency, boxes)) < 1e-6
    assert "**Pointing game** (1 box for this class)" in texts(app)
    assert any(m.value.startswith("1. x 15–430, y 0–300 · Egyptian cat (285)") for m in app.markdown)

    app.button(key="evaluate_clear_boxes").click()
    app.run()
    assert "Pointing % ↑" not in table(app, "Method")


def test_road_adds_its_columns_curves_and_protocols(app):
    app.multiselect(key="evaluate_methods").set_value(["gradcam"])
    app.toggle(key="evaluate_road").set_value(True)
    app.run()
    assert not app.exception and not app.error
    scores = table(app, "Method")
    assert {"ROAD MoRF AUC ↓", "ROAD LeRF AUC ↑"} <= set(scores)
    assert 0 < scores.loc[0, "ROAD MoRF AUC ↓"] < scores.loc[0, "ROAD LeRF AUC ↑"] < 1
    assert "ROAD MoRF" in str(app.get("plotly_chart")[-1].proto.spec)
    assert f"- {protocol('road_morf')}" in texts(app) and f"- {protocol('road_lerf')}" in texts(app)
    app.toggle(key="evaluate_road").set_value(False)
    app.multiselect(key="evaluate_methods").set_value(METHODS)
    app.run()


def test_boxes_are_dropped_when_the_image_changes():
    app = open_evaluate()
    app.button(key="evaluate_example_boxes").click()
    app.run()
    assert "Pointing % ↑" in table(app, "Method")
    app.switch_page("app.py")
    app.run()
    app.selectbox(key="example").select("coffee")
    app.run()
    app.switch_page("pages/evaluate.py")
    app.run()
    assert not app.exception
    assert "Pointing % ↑" not in table(app, "Method")
    assert "No box yet" in texts(app)
    assert "evaluate_boxes" not in app.session_state


def test_a_box_selection_becomes_a_box_in_image_pixels():
    # In the chart, pixel i spans i − ½ … i + ½; the chart shows the image shrunk by scale.
    selection = {"box": [{"x": [19.5, 9.5], "y": [4.5, 29.5]}], "points": []}
    assert selection_box(selection, 100, 80) == Box(10.0, 5.0, 20.0, 30.0)
    assert selection_box(selection, 100, 80, scale=2.0) == Box(20.0, 10.0, 40.0, 60.0)
    assert selection_box({"box": [{"x": [-9.0, 5.5], "y": [70.0, 95.0]}]}, 100, 80) == Box(0.0, 70.5, 6.0, 80.0)
    assert selection_box({"box": [{"x": [3.0, 3.2], "y": [1.0, 9.0]}]}, 100, 80) is None, "under one pixel"
    assert selection_box({"box": [], "points": [{"x": 1, "y": 2}]}, 100, 80) is None


def summary_rows(values: dict[str, list[float]]) -> pd.DataFrame:
    """Per-image rows of methods with these deletion AUCs (insertion AUC the same for all: overlapping)."""
    rows = []
    for method, deletions in values.items():
        for image, value in enumerate(deletions):
            row = {metric.column: math.nan for metric in METRICS}
            rows.append({**row, "image": f"i{image}", "method": method, "deletion_auc": value,
                         "insertion_auc": 0.5 + 0.01 * image})
    return pd.DataFrame(rows)


def test_a_best_only_where_the_intervals_separate():
    styler, words = summary_table(summary_rows({"A": [0.10, 0.11, 0.12, 0.10, 0.11],
                                                "B": [0.50, 0.52, 0.51, 0.50, 0.52]}), FAITHFULNESS)
    assert "Deletion AUC: **A**" in words and "Insertion AUC: no clear difference" in words
    assert styler.to_html().count("background-color: #d8f0dc") == 1, "only A's deletion cell is marked"
    a = bootstrap_interval([0.10, 0.11, 0.12, 0.10, 0.11])
    assert styler.data.loc[0, "Deletion AUC ↓"] == f"{a.mean:.3f} [{a.low:.3f}, {a.high:.3f}]"
    assert styler.data["Images"].tolist() == [5, 5]

    _, one = summary_table(summary_rows({"A": [0.1], "B": [0.5]}), FAITHFULNESS)
    assert f"Deletion AUC: {ONE_IMAGE}" in one and "**" not in one


def test_every_example_gives_means_with_intervals_and_the_rows(mobilenet):
    app = open_evaluate(evaluate_scope="examples")
    assert not app.exception and not app.error and not app.warning, [w.value for w in app.warning]
    rows = table(app, "image")
    assert len(rows) == 2 * len(examples())
    assert set(rows["image"]) == set(examples())
    summary = table(app, "Deletion AUC ↓")
    assert list(summary["Method"]) == ["Grad-CAM", "Eigen-CAM"]
    assert (summary["Images"] == len(examples())).all()
    grad = rows[rows["method"] == "Grad-CAM"]
    expected = bootstrap_interval(grad["deletion_auc"].tolist())
    assert summary.loc[0, "Deletion AUC ↓"] == f"{expected.mean:.3f} [{expected.low:.3f}, {expected.high:.3f}]"
    with_boxes = grad["pointing_percent"].notna()
    pointing = table(app, "Pointing % ↑")
    assert pointing.loc[0, "Images"] == with_boxes.sum() >= len(examples()) - 1
    assert "Best, where the 95 % intervals separate: Deletion AUC:" in texts(app)
    labels = [b.label for b in app.get("download_button")]
    assert labels == ["Per-image rows as CSV (zip with manifest)"], labels

    dog = grad[grad["image"] == "dog"].iloc[0]
    analysis = mobilenet.analyze(load_example("dog"))
    saliency = analysis.cam("gradcam", target=int(dog["class"])).saliency
    boxes = boxes_for(example_boxes("dog"), int(dog["class"]))
    assert dog["pointing_percent"] == 100 * pointing_hit(saliency, boxes, tolerance=POINTING_TOLERANCE)


def test_uploads_are_scored_with_the_boxes_of_a_csv_and_a_bad_file_is_a_warning(chelsea, coffee):
    app = open_evaluate(evaluate_scope="uploads", evaluate_methods=["gradcam"])
    assert any("Upload one or more images" in i.value for i in app.info)
    app.file_uploader(key="evaluate_uploads").set_value([
        ("cat.png", png(chelsea), "image/png"), ("cup.png", png(coffee), "image/png"),
        ("notes.png", b"not a picture", "image/png")])
    app.file_uploader(key="evaluate_boxes_csv").set_value(
        ("boxes.csv", b"file,label,x0,y0,x1,y1\ncat.png,,15,0,430,300\n", "text/csv"))
    app.run()
    assert not app.exception and not app.error
    assert len(app.warning) == 1 and app.warning[0].value.startswith("notes.png")
    rows = table(app, "image")
    assert list(rows["image"]) == ["cat.png", "cup.png"]
    assert rows["pointing_percent"].notna().tolist() == [True, False]
    assert table(app, "Pointing % ↑").loc[0, "Images"] == 1


def test_sanity_check_over_seeds_shows_the_spread_and_says_how_sure(app):
    app.selectbox(key="evaluate_sanity_method").set_value("gradcam")
    app.number_input(key="evaluate_seeds").set_value(2)
    app.run()
    assert not strip_captions(app) and any("Press the button" in i.value for i in app.info)
    app.button(key="evaluate_sanity_run").click()
    app.run()
    assert not app.exception
    captions = strip_captions(app)
    assert len(captions) == CHECKPOINTS + 1, captions
    assert captions[0].startswith("original · ρ 1.00")
    verdicts = [m.value for m in [*app.success, *app.error, *app.warning]]
    assert len(verdicts) == 1 and "2 seeds" in verdicts[0] and "one seed" not in verdicts[0], verdicts
    chart = str(app.get("plotly_chart")[-1].proto.spec)
    assert "min–max over 2 seeds" in chart and "mean of 2 seeds" in chart


def test_one_seed_is_marked_as_such_and_the_edge_control_fails(app):
    app.selectbox(key="evaluate_sanity_method").set_value("edge")
    app.number_input(key="evaluate_seeds").set_value(1)
    app.run()
    app.button(key="evaluate_sanity_run").click()
    app.run()
    assert not app.exception
    assert len(strip_captions(app)) == CHECKPOINTS + 1
    assert not app.success
    assert len(app.error) == 1 and "one seed" in app.error[0].value.lower(), [e.value for e in app.error]
    assert "min–max" not in str(app.get("plotly_chart")[-1].proto.spec)

