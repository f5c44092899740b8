"""Benchmark: what a user waits for in the browser, for the README's figures (the browser tests time nothing).

    python bench/browser_timing.py [--photo PATH] [--no-api]

Starts its own `streamlit run app.py` (so every cache is cold) and drives it in headless Chromium with
scripts/dashboard_driver.py, as tests/browser/ does:
(a) a Compare grid of two methods (Grad-CAM++ and Eigen-CAM) on an uploaded photo (darknet's dog.jpg, else
    scikit-image's chelsea), then a class switch to "pickup": the seconds from the click on the class to the
    repainted grid;
(b) a cold Score-CAM at the default layer (1280 masked passes) in a new session landing on /compare: the seconds
    from the click on the method to its first partial map, and to the complete map;
(c) unless --no-api, the same cold Score-CAM through the API in this process on one torch thread, as the dashboard
    runs it.
A report, never a test: it prints the numbers (and keeps screenshots in artifacts/screenshots/ when that folder's
parent exists).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.dashboard_driver import (  # noqa: E402
    ARGS,
    CHROMIUM,
    UPLOADER,
    add_score_cam,
    choose,
    choose_methods,
    main_images,
    no_errors,
    playwright_api,
    settle,
    streamlit_server,
)

DOG = Path("/usr/share/darknet/data/dog.jpg")
SHOTS = ROOT / "artifacts" / "screenshots"


def a_photo(given: Path | None) -> Path:
    """The photo to upload: given, else darknet's dog.jpg, else chelsea written to a temporary file."""
    if given is not None:
        return given
    if DOG.exists():
        return DOG
    from PIL import Image
    from skimage import data

    path = Path(tempfile.mkdtemp(prefix="timing-")) / "chelsea.png"
    Image.fromarray(data.chelsea()).save(path)
    return path


def class_switch_repaint(tab, photo: Path) -> tuple[float, str]:
    """(a): upload photo, show Grad-CAM++ and Eigen-CAM on Compare, switch the class to pickup; the repaint's
    seconds and what the home page said it explains."""
    settle(tab, "CAM Explorer", timeout=180)
    tab.locator(UPLOADER).set_input_files(str(photo))
    tab.get_by_text(f"{photo.name} ·").first.wait_for(timeout=120_000)
    settle(tab)
    explaining = tab.get_by_text("Explaining:").first.locator("..").inner_text()
    tab.get_by_role("link", name="Compare methods").click()
    settle(tab, "Compare methods", timeout=180)
    choose_methods(tab, ["Grad-CAM++", "Eigen-CAM"])
    before = main_images(tab)
    switched = choose(tab, "Target class", "pickup", "pickup (717)")
    tab.get_by_role("heading", name="pickup (717)").first.wait_for(timeout=60_000)
    settle(tab)
    repaint = time.perf_counter() - switched
    no_errors(tab)
    if main_images(tab) == before:
        raise SystemExit("the grid did not change with the class: no repaint to time")
    return repaint, explaining


def cold_score_cam(tab, url: str) -> tuple[float, float, str]:
    """(b): land on /compare in a new session and add Score-CAM (default layer); seconds to the first partial map
    and to the complete one, and the first picture's caption."""
    tab.goto(f"{url}/compare")
    settle(tab, "Compare methods", timeout=180)
    timings = add_score_cam(tab, first_timeout=120, complete_timeout=600)
    no_errors(tab)
    return timings


def api_score_cam() -> float:
    """(c): a cold Score-CAM at the default layer on chelsea through the API, torch on one thread."""
    import torch

    from cam_core import Explainer
    from cam_core.inputs.examples import load_example

    torch.set_num_threads(1)
    analysis = Explainer("mobilenet_v2").analyze(load_example("chelsea"))
    started = time.perf_counter()
    analysis.cam("scorecam")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, default=None, help="the photo to upload for (a)")
    parser.add_argument("--no-api", action="store_true", help="skip (c)")
    args = parser.parse_args()
    if playwright_api is None:
        raise SystemExit("needs Playwright (pip install playwright) and Debian's chromium")
    photo = a_photo(args.photo)
    shots = SHOTS if SHOTS.parent.is_dir() else None
    if shots is not None:
        shots.mkdir(exist_ok=True)
    with streamlit_server("browser_timing.log") as url, playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        tab = browser.new_page(viewport={"width": 1500, "height": 1100})
        tab.goto(url)
        repaint, explaining = class_switch_repaint(tab, photo)
        if shots is not None:
            tab.screenshot(path=str(shots / "timing_class_switch.png"), full_page=True)
        print(f"(a) a Compare grid of two methods (Grad-CAM++, Eigen-CAM) on {photo.name} repaints {repaint:.2f} s "
              f"after a class switch to pickup ({explaining.splitlines()[0]})", flush=True)
        other = browser.new_page(viewport={"width": 1500, "height": 1100})
        first, complete, first_text = cold_score_cam(other, url)
        if shots is not None:
            other.screenshot(path=str(shots / "timing_scorecam.png"), full_page=True)
        print(f"(b) a cold Score-CAM at the default layer in the browser: first partial map after {first:.2f} s "
              f"({first_text}), complete after {complete:.2f} s", flush=True)
        browser.close()
    if not args.no_api:
        print(f"(c) the same cold Score-CAM through the API on one thread: {api_score_cam():.2f} s", flush=True)


if __name__ == "__main__":
    main()
