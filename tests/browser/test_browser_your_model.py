"""Your own model in real headless Chromium: "Your model…" in the sidebar opens the panel; a torchvision resnet18
with a random 5-class head (safetensors) and a timm convnext_tiny with one (torch.save .pt), each with a labels
file, load and become the model Compare's grid explains, with the file's class names in the sidebar."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file

from scripts.dashboard_driver import ARGS, CHROMIUM, UPLOADER, choose, grid, no_errors, settle, streamlit_server
from tests.browser.conftest import SHOTS

pytestmark = pytest.mark.browser
playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)

OWN_SHOTS = SHOTS / "your_model"
CLASSES = ["scratch", "dent", "crack", "stain", "no defect"]
METHODS = {"gradcam": "Grad-CAM", "eigencam": "Eigen-CAM", "layercam": "Layer-CAM"}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The users' files: two random 5-class state_dicts (safetensors, .pt) and a labels file."""
    folder = tmp_path_factory.mktemp("own")
    torch.manual_seed(0)
    save_file(torchvision.models.resnet18(num_classes=5).state_dict(), str(folder / "defects_resnet18.safetensors"))
    torch.save(timm.create_model("convnext_tiny", num_classes=5).state_dict(), folder / "defects_convnext.pt")
    (folder / "defects.txt").write_text("\n".join(CLASSES) + "\n")
    return {"resnet18": folder / "defects_resnet18.safetensors", "convnext": folder / "defects_convnext.pt",
            "labels": folder / "defects.txt"}


@pytest.fixture(scope="module")
def tab():
    OWN_SHOTS.mkdir(parents=True, exist_ok=True)
    with streamlit_server("streamlit_your_model.log") as url, \
            playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1500})
        page.goto(f"{url}/?methods={','.join(METHODS)}")
        settle(page, "CAM Explorer")
        yield page
        browser.close()


def uploaded(tab, index: int, path: Path) -> None:
    """Give the index-th file uploader of the page path; wait until it lists the file (found by the end of its name:
    the chip elides the middle of a long one)."""
    tab.locator(UPLOADER).nth(index).set_input_files(str(path))
    tab.locator("[data-testid=stFileUploader]").nth(index).get_by_text(path.name[-10:]).first.wait_for()
    settle(tab)


def load_own_model(tab, architecture: str, typed: str, weights: Path, labels: Path) -> float:
    """From any page: "Your model…" in the sidebar, the architecture typed in, the files uploaded, Load; the
    seconds from typing the architecture to its option being listed."""
    choose(tab, "Model", "Your model", "Your model…")
    settle(tab, "Your model")
    started = time.perf_counter()
    choose(tab, "Architecture", typed, architecture)
    listed = time.perf_counter() - started
    settle(tab)
    uploaded(tab, 0, weights)
    tab.get_by_text("A file: one name a line, or JSON").click()
    settle(tab)
    uploaded(tab, 1, labels)
    tab.get_by_role("button", name="Load", exact=True).click()
    tab.get_by_text("is loaded for this session").first.wait_for(timeout=60_000)
    settle(tab)
    no_errors(tab)
    return listed


def compare_grid(tab, shot: str) -> str:
    """Open Compare, wait for the grid of METHODS, screenshot it; the sidebar's text."""
    tab.locator("[data-testid=stSidebar]").get_by_role("link", name="Compare methods").click()
    settle(tab, "Compare methods")
    pictures = grid(tab, list(METHODS.values()), timeout=60)
    assert all(len(body) > 1000 for _, body in pictures)
    no_errors(tab)
    assert not tab.locator("[data-testid=stMain] [data-testid=stAlertContentError]").count()
    tab.screenshot(path=str(OWN_SHOTS / f"{shot}.png"), full_page=True)
    return tab.locator("[data-testid=stSidebar]").inner_text()


@pytest.mark.parametrize(("architecture", "typed", "weights"), [
    ("resnet18 · torchvision", "resnet18", "resnet18"),
    ("convnext_tiny · timm", "convnext_tiny", "convnext"),
])
def test_a_users_state_dict_loads_and_compare_explains_it(tab, files, architecture, typed, weights):
    listed = load_own_model(tab, architecture, typed, files[weights], files["labels"])
    assert listed < 10, f"the architecture list took {listed:.1f} s to filter"
    print(f"\n{typed}: listed {listed:.1f} s after typing began")
    panel = tab.locator("[data-testid=stMain]").inner_text()
    assert "Target layer (found)" in panel and "5 classes" in panel and "scratch, dent, crack" in panel
    tab.screenshot(path=str(OWN_SHOTS / f"panel_{weights}.png"), full_page=True)
    sidebar = compare_grid(tab, f"compare_{weights}")
    model = tab.locator("[data-testid=stSidebar]").get_by_role("combobox", name="Model").input_value()
    assert typed in model and "5 classes" in model, model
    target = tab.locator("[data-testid=stSidebar]").get_by_role("combobox", name="Target class").input_value()
    assert target.split(" (")[0] in CLASSES, target
    assert "a link cannot carry it" in sidebar
