"""A shared link in real headless Chromium: opening it restores the page, model, example, class and Compare's
methods; the URL follows the user from page to page; refused and animated files are said in the page."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
from PIL import Image

from cam_core.inputs.images import READABLE
from scripts.dashboard_driver import ARGS, CHROMIUM, UPLOADER, no_errors, settle
from tests.browser.conftest import SHOTS
from tests.conftest import DARKNET

pytestmark = pytest.mark.browser
playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
if not (DARKNET / "dog.jpg").exists():
    pytest.skip("Debian package darknet (dog.jpg) is not installed", allow_module_level=True)

ISSUE_SHOTS = SHOTS / "issue16"
LINK = "/compare?model=mobilenet_v2&example=dog&class=717&methods=gradcam,eigencam"


@pytest.fixture(scope="module")
def tab():
    ISSUE_SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser.new_page(viewport={"width": 1500, "height": 2600})
        browser.close()


def opened(url: str) -> tuple[str, dict[str, list[str]]]:
    """A URL's path and query parameters (the browser may write a comma as %2C)."""
    parts = urlsplit(url)
    return parts.path, parse_qs(parts.query)


def shot(tab, name: str) -> None:
    tab.screenshot(path=str(ISSUE_SHOTS / f"{name}.png"), full_page=True)


def test_a_shared_link_opens_compare_with_its_model_example_class_and_methods(tab, server):
    tab.goto(server + LINK)
    settle(tab, "Compare methods")
    no_errors(tab)
    sidebar = tab.locator("[data-testid=stSidebar]")
    assert sidebar.get_by_role("combobox", name="Target class").input_value() == "pickup (717) · 0.000094%"
    assert sidebar.get_by_role("combobox", name="Model").input_value().startswith("mobilenet_v2")
    assert "example: dog" in sidebar.inner_text()
    chips = tab.locator("[data-testid=stMain] [data-testid=stMultiSelect]").first.locator("span[title]")
    assert list(dict.fromkeys(chips.all_inner_texts())) == ["Grad-CAM", "Eigen-CAM"]
    captions = tab.locator("[data-testid=stMain] [data-testid=stImageCaption]").all_inner_texts()
    assert [c.split(" · ")[0] for c in captions][:2] == ["Grad-CAM", "Eigen-CAM"], captions
    warning = tab.locator("[data-testid=stMain] [data-testid=stAlertContentWarning]").first.inner_text()
    assert "pickup 0.000094%" in warning and "barely sees this class" in warning
    assert opened(tab.url) == opened(server + LINK)
    assert sidebar.locator("[data-testid=stCode]").inner_text().strip() == server + LINK
    shot(tab, "link_compare_dog_pickup_warning")

    learn = tab.locator("[data-testid=stSidebar]").get_by_role("link", name="Learn").get_attribute("href")
    assert opened(urljoin(server, learn)) == opened(server + LINK.replace("/compare", "/learn")), learn
    tab.get_by_role("link", name="Home").click()
    settle(tab, "CAM Explorer")
    assert opened(tab.url) == opened(server + LINK.replace("/compare", "/"))
    warning = tab.locator("[data-testid=stMain] [data-testid=stAlertContentWarning]").first.inner_text()
    assert "pickup 0.000094%" in warning


def test_animated_and_refused_files_are_said_in_the_page(tab, server, tmp_path):
    tab.goto(server)
    settle(tab, "CAM Explorer")
    frames = [Image.new("RGB", (96, 64), colour) for colour in ((210, 40, 40), (40, 40, 210), (40, 190, 40))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=120, loop=0)
    gif = tmp_path / "spinner.gif"
    gif.write_bytes(buffer.getvalue())
    tab.locator(UPLOADER).set_input_files(str(gif))
    notice = tab.locator("[data-testid=stMain] [data-testid=stAlertContentInfo]").first
    notice.wait_for(timeout=30_000)
    settle(tab)
    assert "animation of 3 frames" in notice.inner_text() and "first frame" in notice.inner_text()
    assert "?model=mobilenet_v2&class=" in tab.url and "example=" not in tab.url
    assert "This image is an upload: a link cannot carry it" in tab.locator("[data-testid=stSidebar]").inner_text()
    shot(tab, "animated_gif_first_frame")

    pdf = tmp_path / "slides.pdf"
    pdf.write_bytes(b"%PDF-1.4 not a picture")
    tab.locator(UPLOADER).set_input_files(str(pdf))
    error = tab.locator("[data-testid=stMain] [data-testid=stAlertContentError]").first
    error.wait_for(timeout=30_000)
    settle(tab)
    assert "slides.pdf was not used:" in error.inner_text() and READABLE in error.inner_text()
    assert tab.get_by_text("spinner.gif ·").count() == 1, "the previous image stays"
    no_errors(tab)
    shot(tab, "refused_file_message")
