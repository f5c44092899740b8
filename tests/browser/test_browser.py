"""End to end in real headless Chromium: start `streamlit run app.py`, upload a photo, compare two methods, switch
the class, and keep screenshots of every page in artifacts/screenshots/."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from scripts.dashboard_driver import (
    ARGS,
    CHROMIUM,
    add_score_cam,
    choose,
    choose_methods,
    main_images,
    no_errors,
    pick,
    settle,
)
from tests.browser.conftest import SHOTS
from tests.conftest import DARKNET

pytestmark = pytest.mark.browser
playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def page(server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        tab = browser.new_page(viewport={"width": 1500, "height": 1100})
        tab.goto(server)
        yield tab
        browser.close()


def keep(tab, picture: str, note: str, text: str) -> None:
    """A full-page screenshot SHOTS/picture.png, and text in SHOTS/note.txt and on stdout."""
    tab.screenshot(path=str(SHOTS / f"{picture}.png"), full_page=True)
    (SHOTS / f"{note}.txt").write_text(text + "\n")
    print(text)


def test_upload_compare_switch_class_and_every_page(page):
    settle(page)
    photo = DARKNET / "dog.jpg" if (DARKNET / "dog.jpg").exists() else None
    if photo is None:
        from PIL import Image
        from skimage import data

        photo = SHOTS / "chelsea.png"
        Image.fromarray(data.chelsea()).save(photo)
    page.locator("[data-testid=stFileUploader] input[type=file]").set_input_files(str(photo))
    page.get_by_text(f"{photo.name} ·").first.wait_for(timeout=60_000)
    settle(page)
    no_errors(page)
    explaining = page.get_by_text("Explaining:").first.locator("..").inner_text()
    page.screenshot(path=str(SHOTS / "home.png"), full_page=True)

    page.get_by_role("link", name="Compare methods").click()
    settle(page, "Compare methods")
    choose_methods(page, ["Grad-CAM++", "Eigen-CAM"])
    no_errors(page)
    captions = page.locator("[data-testid=stMain] [data-testid=stImageCaption]").all_inner_texts()
    assert [c.split(" · ")[0] for c in captions] == ["Grad-CAM++", "Eigen-CAM"], captions
    before = main_images(page)
    page.screenshot(path=str(SHOTS / "compare.png"), full_page=True)

    switched = choose(page, "Target class", "pickup", "pickup (717)")
    page.get_by_role("heading", name="pickup (717)").first.wait_for(timeout=30_000)
    settle(page)
    repaint = time.perf_counter() - switched
    after = main_images(page)
    no_errors(page)
    assert len(after) == len(before) == 2
    assert after[0] != before[0], "Grad-CAM++'s map must change with the class"
    page.screenshot(path=str(SHOTS / "compare_pickup.png"), full_page=True)
    (SHOTS / "repaint.txt").write_text(f"class switch repaint in the browser: {repaint:.2f} s ({explaining})\n")
    print(f"class switch repaint: {repaint:.2f} s")
    assert repaint < 5.0, f"repaint after a class switch took {repaint:.2f} s"

    for link, shot in (("Learn", "learn.png"), ("Channels", "channels.png"), ("Clusters", "clusters.png")):
        page.get_by_role("link", name=link).click()
        settle(page, link)
        page.locator("[data-testid=stMain] [data-testid=stImage]").first.wait_for(timeout=60_000)
        settle(page, link)
        page.screenshot(path=str(SHOTS / shot), full_page=True)
        no_errors(page)
        assert page.locator("[data-testid=stMain] [data-testid=stImage]").count() > 0
        assert page.locator("[data-testid=stMain] [data-testid=stAlertContentError]").count() == 0


def test_landing_on_compare_and_score_cam_shows_a_partial_map_early(page, server):
    tab = page.context.browser.new_page(viewport={"width": 1500, "height": 1100})
    tab.goto(f"{server}/compare")
    settle(tab, "Compare methods")
    assert tab.get_by_role("link", name="Channels").count() == 1, "landing on a page must give the full navigation"
    first_picture, complete, first_text = add_score_cam(tab, first_timeout=60, complete_timeout=120)
    tab.keyboard.press("Escape")
    tab.locator("[data-testid=stMain] h1").click()
    keep(tab, "compare_scorecam", "scorecam", f"Score-CAM in the browser: first picture after {first_picture:.2f} s "
         f"({first_text}), complete after {complete:.2f} s")
    no_errors(tab)
    assert "so far" in first_text, "a partial map must show before Score-CAM completes"
    tab.close()


def test_new_methods_render_with_their_settings(page, server):
    """Guided backpropagation shows as a grey RGB gradient picture, not a colour-mapped overlay; Layer-CAM's layer
    multiselect in Method settings fuses a second layer and changes its map."""
    from io import BytesIO

    import numpy as np
    from PIL import Image

    tab = page.context.browser.new_page(viewport={"width": 1500, "height": 1800})
    tab.goto(f"{server}/compare")
    settle(tab, "Compare methods")
    choose_methods(tab, ["Layer-CAM", "Gradient Poly-CAM", "Guided Backpropagation"])
    no_errors(tab)
    captions = tab.locator("[data-testid=stMain] [data-testid=stImageCaption]").all_inner_texts()
    assert [c.split(" · ")[0] for c in captions] == ["Layer-CAM", "Gradient Poly-CAM", "Guided Backpropagation"], \
        captions

    def saturation(index: int) -> float:
        shot = tab.locator("[data-testid=stMain] [data-testid=stImage] img").nth(index).screenshot()
        hsv = np.asarray(Image.open(BytesIO(shot)).convert("HSV"), dtype=np.float32)
        return float(hsv[..., 1].mean())

    assert saturation(2) < 0.5 * saturation(0), "guided backprop must be a grey gradient picture, not an overlay"
    before = main_images(tab)
    tab.get_by_text("Method settings").first.click()
    layers = tab.locator("[data-testid=stMultiSelect]").filter(has_text="features.18").first
    pick(tab, layers, "features.14.conv.0")
    settle(tab)
    tab.keyboard.press("Escape")
    settle(tab)
    no_errors(tab)
    after = main_images(tab)
    assert after[0] != before[0], "fusing a second layer must change Layer-CAM's map"
    assert after[2] == before[2], "the guided map must not change when Layer-CAM's layers do"
    tab.screenshot(path=str(SHOTS / "compare_new_methods.png"), full_page=True)
    tab.close()
