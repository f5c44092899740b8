"""The Figure page in real headless Chromium: six methods chosen, three bundled photos added, the preview shown, and
the PNG, PDF and SVG downloads, each a zip of the figure and a manifest naming the six methods and three images.
The PDF's page (rendered by pdftoppm) and the page itself are saved in artifacts/screenshots/figure/."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from cam_core.inputs.examples import examples
from scripts.dashboard_driver import ARGS, CHROMIUM, no_errors, pick, settle, type_into
from tests.browser.conftest import SHOTS

pytestmark = pytest.mark.browser
playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
if "dog" not in examples():
    pytest.skip("darknet's dog.jpg is not installed", allow_module_level=True)

FIGURE_SHOTS = SHOTS / "figure"
PHOTOS = ("dog", "chelsea", "coffee")
METHODS = {"gradcam": "Grad-CAM", "gradcampp": "Grad-CAM++", "hirescam": "HiRes-CAM", "eigencam": "Eigen-CAM",
           "layercam": "Layer-CAM", "guidedgradcam": "Guided Grad-CAM"}


@pytest.fixture(scope="module")
def tab(server):
    """The Figure page with the six methods and the three photos, once its preview is shown."""
    FIGURE_SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(viewport={"width": 1500, "height": 3000}, accept_downloads=True).new_page()
        page.goto(f"{server}/figure")
        settle(page, "Figure", timeout=180)
        methods = clear_methods_of(page)
        for name in METHODS.values():  # no rows yet: each pick reruns the page without computing anything
            pick(page, methods, name)
        page.keyboard.press("Escape")
        settle(page)
        page.get_by_role("tab", name="Examples").click()
        photos = page.locator("[data-testid=stMultiSelect]").filter(has_text="Bundled photos")
        for name in PHOTOS:
            type_into(page, photos.locator("input"), name, option=f"{name}:")
            page.get_by_role("option", name=f"{name}:").first.click()
        page.keyboard.press("Escape")
        page.get_by_role("button", name="Add", exact=True).first.click()
        page.locator("[data-testid=stImageCaption]", has_text="3 images × 6 methods").wait_for(timeout=120_000)
        settle(page, timeout=120)
        no_errors(page)
        yield page
        browser.close()


def clear_methods_of(page):
    """The methods multiselect, emptied (dashboard_driver.clear_methods empties the page's first multiselect: here
    that is the bundled photos')."""
    methods = page.locator("[data-testid=stMultiSelect]").filter(has_text="Methods (columns)")
    clear = methods.get_by_role("button", name="Clear all")
    (clear if clear.count() else methods.locator("svg[title='Clear all']")).click()
    settle(page)
    return methods


def download(tab, fmt: str) -> zipfile.ZipFile:
    with tab.expect_download(timeout=120_000) as started:
        tab.get_by_role("button", name=f"{fmt.upper()} + manifest").click()
    assert started.value.suggested_filename == f"cam_figure_{fmt}.zip"
    return zipfile.ZipFile(io.BytesIO(Path(started.value.path()).read_bytes()))


def test_the_page_shows_the_rows_and_the_preview(tab):
    main = tab.locator("[data-testid=stMain]")
    for number, name in enumerate(PHOTOS, start=1):
        assert main.get_by_text(f"{number}. {name}", exact=True).count() == 1
    preview = main.locator("[data-testid=stImage] img").last
    width = preview.evaluate("img => img.naturalWidth")
    assert width > 1000  # the figure's PNG, not a thumbnail
    tab.locator("[data-testid=stMain]").screenshot(path=str(FIGURE_SHOTS / "figure_page.png"))


@pytest.mark.parametrize("fmt", ["png", "pdf", "svg"])
def test_each_download_holds_the_figure_and_its_manifest(tab, fmt, tmp_path):
    archive = download(tab, fmt)
    assert sorted(archive.namelist()) == sorted([f"cam_figure.{fmt}", "manifest.json"])
    record = json.loads(archive.read("manifest.json"))
    figure = record["extra"]["figure"]
    assert [m["id"] for m in figure["methods"]] == list(METHODS)
    assert [r["image"] for r in figure["rows"]] == list(PHOTOS)
    assert len(record["maps"]) == 18 and figure["format"] == fmt
    data = archive.read(f"cam_figure.{fmt}")
    if fmt == "png":
        assert Image.open(io.BytesIO(data)).width > 1000
    elif fmt == "svg":
        assert b"<svg" in data[:2000] and data.count(b"<image") == 3 * (1 + 6)
    else:
        assert data.startswith(b"%PDF")
        pdf = tmp_path / "cam_figure.pdf"
        pdf.write_bytes(data)
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-singlefile", str(pdf), str(FIGURE_SHOTS / "figure_pdf")],
                       check=True)
        page = Image.open(FIGURE_SHOTS / "figure_pdf.png")
        assert page.width > 600
