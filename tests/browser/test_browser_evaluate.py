"""The Evaluate page in real headless Chromium: a box drawn with the mouse on eagle.jpg gives the pointing game (a
hit around the eagle, a miss in a corner, as cam_core says), every bundled example gives means with 95 % intervals
and the per-image rows and manifest download, and the sanity check runs over seeds. Screenshots in
artifacts/screenshots/issue16/."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest

from cam_core.evaluation.pointing import POINTING_TOLERANCE, Box, pointing_hit
from cam_core.inputs.examples import examples, load_example
from scripts.dashboard_driver import ARGS, CHROMIUM, clear_methods, no_errors, pick, settle
from tests.browser.conftest import SHOTS

pytestmark = pytest.mark.browser
playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
if "eagle" not in examples():
    pytest.skip("darknet's eagle.jpg is not installed", allow_module_level=True)

ISSUE_SHOTS = SHOTS / "issue16"
EAGLE = Box(150, 100, 580, 440)  # around the eagle in eagle.jpg (773 × 512)
CORNER = Box(6, 6, 90, 70)  # the top left corner: sky


@pytest.fixture(scope="module")
def tab(server):
    ISSUE_SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1500, "height": 2600}, accept_downloads=True)
        page = context.new_page()
        page.goto(f"{server}/evaluate?example=eagle")
        # Cheap settings at once, without waiting for the default methods' first scores (each change stops that run).
        steps = page.locator("[data-testid=stSlider]").filter(has_text="Steps").get_by_role("slider")
        steps.wait_for(timeout=180_000)
        steps.focus()
        steps.press("Home")  # 5 steps
        methods = clear_methods(page)
        settle(page, "Evaluate", timeout=180)
        pick(page, methods, "Grad-CAM")
        page.keyboard.press("Escape")
        settle(page, timeout=120)
        no_errors(page)
        yield page
        browser.close()


def drag_box(tab, box: Box, width: int) -> None:
    """Drag on the box picker from one corner of box (image pixels) to the other: the chart's plot area spans the
    picture, width pixels wide."""
    area = tab.locator("[data-testid=stPlotlyChart] .nsewdrag").first.bounding_box()
    per_pixel = area["width"] / width

    def at(x: float, y: float) -> tuple[float, float]:
        return area["x"] + x * per_pixel, area["y"] + y * per_pixel

    tab.mouse.move(*at(box.x0, box.y0))
    tab.mouse.down()
    tab.mouse.move(*at(box.x1, box.y1), steps=12)
    tab.mouse.up()
    settle(tab, timeout=60)
    no_errors(tab)


def pointing_text(tab) -> str:
    return tab.locator("[data-testid=stMain] [data-testid=stMarkdown]", has_text="the peak is").first.inner_text()


def test_a_box_drawn_with_the_mouse_gives_the_pointing_game(tab, mobilenet):
    analysis = mobilenet.analyze(load_example("eagle"))
    saliency = analysis.cam("gradcam", target=analysis.top_k(1)[0][0]).saliency
    assert pointing_hit(saliency, [EAGLE], tolerance=POINTING_TOLERANCE)
    assert not pointing_hit(saliency, [CORNER], tolerance=POINTING_TOLERANCE), "the oracle"
    assert tab.get_by_text("No box yet").count() == 1
    assert tab.get_by_text("the peak is").count() == 0

    drag_box(tab, EAGLE, load_example("eagle").width)
    listed = tab.locator("[data-testid=stMain] li", has_text="any class").all_inner_texts()
    assert len(listed) == 1, listed
    corners = [float(v) for part in listed[0].split(" · ")[0].replace("x ", "").split(", y ") for v in part.split("–")]
    assert all(abs(a - b) <= 2 for a, b in zip(corners, (EAGLE.x0, EAGLE.x1, EAGLE.y0, EAGLE.y1), strict=True)), listed
    assert "the peak is inside for Grad-CAM" in pointing_text(tab)
    tab.screenshot(path=str(ISSUE_SHOTS / "evaluate_drawn_box.png"), full_page=True)

    tab.get_by_role("button", name="Clear the boxes").click()
    settle(tab)
    assert tab.get_by_text("No box yet").count() == 1
    drag_box(tab, CORNER, load_example("eagle").width)
    assert "the peak is outside for Grad-CAM" in pointing_text(tab)


def test_every_example_gives_intervals_and_the_rows_download_with_the_manifest(tab):
    tab.get_by_text("All bundled examples", exact=True).click()
    settle(tab, timeout=120)
    pick(tab, tab.locator("[data-testid=stMultiSelect]").first, "Eigen-CAM")
    tab.keyboard.press("Escape")
    settle(tab, timeout=120)
    no_errors(tab)
    main = tab.locator("[data-testid=stMain]")
    assert main.get_by_text("Best, where the 95 % intervals separate: Deletion AUC").count() == 1
    assert main.get_by_text("Best, where the 95 % intervals separate: Pointing").count() == 1
    assert main.locator("[data-testid=stDataFrame]").count() >= 3, "faithfulness, pointing and sparsity tables"
    assert "Deletion AUC" in main.locator("[data-testid=stPlotlyChart]").last.inner_text()
    tab.locator("[data-testid=stMain] h1").click()
    tab.screenshot(path=str(ISSUE_SHOTS / "evaluate_all_examples.png"), full_page=True)

    with tab.expect_download() as got:
        tab.get_by_role("button", name="Per-image rows as CSV (zip with manifest)").click()
    with zipfile.ZipFile(got.value.path()) as archive:
        (name,) = [name for name in archive.namelist() if name.endswith(".csv")]
        rows = list(csv.DictReader(io.StringIO(archive.read(name).decode())))
        record = json.loads(archive.read("manifest.json"))
    assert len(rows) == 2 * len(examples())
    assert {row["method"] for row in rows} == {"Grad-CAM", "Eigen-CAM"}
    assert {"deletion_auc", "insertion_auc", "pointing_percent", "energy_pointing_percent", "gini"} <= set(rows[0])
    assert len(record["images"]) == len(record["extra"]["settings"]["images"]) == len(examples())
    assert len(record["maps"]) == 2 * len(examples()) and name in record["files"]
    manifest = record["extra"]["settings"]
    assert manifest["model"] == "mobilenet_v2" and manifest["steps"] == 5 and manifest["baseline"] == "rise"
    assert set(manifest["methods"]) == {"gradcam", "eigencam"}
    assert manifest["cam_core_version"] and manifest["date"] and manifest["layer"] == "features.18"


def test_the_sanity_check_over_seeds(tab):
    thumb = tab.locator("[data-testid=stSlider]").filter(has_text="Checkpoints").get_by_role("slider")
    thumb.focus()
    for _ in range(2):
        thumb.press("ArrowLeft")
        settle(tab)
    assert thumb.input_value() == "3"
    tab.get_by_role("button", name="Run the sanity check").click()
    tab.locator("[data-testid=stMain] [data-testid=stImageCaption]", has_text="ρ").first.wait_for(timeout=90_000)
    settle(tab, timeout=90)
    no_errors(tab)
    captions = tab.locator("[data-testid=stMain] [data-testid=stImageCaption]").all_inner_texts()
    assert len([c for c in captions if "ρ" in c]) == 4, captions
    verdict = tab.locator("[data-testid=stMain] [data-testid^=stAlertContent]").last.inner_text()
    assert "3 seeds" in verdict, verdict
    assert "min–max over 3 seeds" in tab.locator("[data-testid=stMain] [data-testid=stPlotlyChart]").last.inner_text()
    tab.locator("[data-testid=stMain]").evaluate("main => main.scrollTo(0, main.scrollHeight)")
    tab.screenshot(path=str(ISSUE_SHOTS / "evaluate_sanity_seeds.png"), full_page=True)
