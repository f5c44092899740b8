"""The views' screenshots, taken in headless Chromium from a fresh `streamlit run app.py`:

    python scripts/screenshots.py [--out DIR]

writes to DIR (default artifacts/screenshots/views/):
1. Compare on darknet's dog.jpg for "pickup", opened from a shared link: the low-probability warning and every
   default map's class-specificity caption and colour bar;
2. Compare, four methods, pickup against "Eskimo dog" on a shared scale, with the difference row;
3. Learn's "Why does it differ?" (Grad-CAM against Grad-CAM++) ending with the difference map;
4. Clusters at k = 16 on a shared scale by gain (every cluster in the legend);
5. Channels: the picked channel's overlay with its colour bar;
6. Evaluate over every bundled example with the default methods: intervals and the pointing columns.
It prints how long each took. A record for people, never a test.

    python scripts/screenshots.py --all-methods [--skip ID,...] [--out DIR]

instead writes Compare with every method mobilenet_v2 runs, at its default settings, on dog.jpg for the dog (Eskimo
dog, the top class) and for the bicycle (bicycle-built-for-two): the second one reuses every class-independent pass.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.dashboard_driver import ARGS, CHROMIUM, choose, no_errors, playwright_api, settle, streamlit_server  # noqa: E402

LINK = "example=dog&class=717"  # darknet's dog.jpg, explained for "pickup"
DOG_CLASSES = {"dog": 248, "bicycle": 444}  # Eskimo dog (top-1), bicycle-built-for-two


def shot(page, out: Path, name: str, started: float) -> None:
    """Screenshot the whole page (Streamlit scrolls inside its main block: the viewport is tall) into out/name."""
    no_errors(page)
    page.screenshot(path=str(out / name), full_page=True)
    print(f"{name}: {time.perf_counter() - started:.1f} s")


def open_page(page, url: str, path: str, title: str, timeout: float = 300) -> float:
    """Open url/path and wait until the page titled title has settled; when it started."""
    started = time.perf_counter()
    page.goto(f"{url}/{path}")
    settle(page, title, timeout=timeout)
    return started


def every_method(out: Path, skip: list[str]) -> None:
    """Compare with every method the default model runs (but those in skip), on dog.jpg for the dog and for the
    bicycle."""
    from cam_core import Explainer, methods

    explainer = Explainer("mobilenet_v2")
    ids = ",".join(card.id for card in methods() if not explainer.unmet(card) and card.id not in skip)
    with streamlit_server("streamlit_screenshots_all.log") as url, playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 9000})
        for name, index in DOG_CLASSES.items():
            started = open_page(page, url, f"compare?example=dog&class={index}&methods={ids}", "Compare methods",
                                timeout=3600)
            maps = page.locator("[data-testid=stMain] [data-testid=stImage]")
            while maps.count() < len(ids.split(",")) and time.perf_counter() - started < 3600:
                time.sleep(1)
            settle(page, timeout=3600)
            shot(page, out, f"compare_all_methods_dog_jpg_{name}.png", started)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "screenshots" / "views")
    parser.add_argument("--all-methods", action="store_true", help="Compare with every method, dog and bicycle")
    parser.add_argument("--skip", default="", help="with --all-methods: method ids to leave out, comma-separated")
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.all_methods:
        every_method(out, [name for name in args.skip.split(",") if name])
        return
    with streamlit_server("streamlit_screenshots.log") as url, playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 3400})

        started = open_page(page, url, f"compare?{LINK}", "Compare methods")
        shot(page, out, "1_compare_pickup_warning_and_specificity.png", started)

        started = open_page(page, url, f"compare?{LINK}&methods=gradcam,gradcampp,layercam,scorecam", "Compare methods")
        choose(page, "Compare with a second class", "Eskimo", "Eskimo dog")
        settle(page, timeout=300)
        for label in ("Shared scale", "Difference row (first − second class)"):
            page.get_by_text(label, exact=True).click()
            settle(page, timeout=120)
        shot(page, out, "2_compare_shared_scale_and_difference_row.png", started)

        started = open_page(page, url, f"learn?{LINK}", "Learn")
        page.locator("[data-testid=stMain]").evaluate("main => main.scrollTo(0, main.scrollHeight)")
        shot(page, out, "3_learn_why_does_it_differ.png", started)

        started = open_page(page, url, f"clusters?{LINK}", "Clusters")
        slider = page.locator("[data-testid=stSlider]").filter(has_text="k (number of clusters)").get_by_role("slider")
        while slider.input_value() != "16":
            slider.focus()
            slider.press("ArrowRight")
            settle(page, timeout=300)
        page.get_by_text("Shared scale by gain", exact=True).click()
        settle(page, timeout=120)
        shot(page, out, "4_clusters_shared_scale_by_gain.png", started)

        started = open_page(page, url, f"channels?{LINK}", "Channels")
        shot(page, out, "5_channels_colour_bar.png", started)

        started = open_page(page, url, f"evaluate?{LINK}", "Evaluate")
        page.get_by_text("All bundled examples", exact=True).click()
        settle(page, timeout=1200)
        page.locator("[data-testid=stMain] h1").click()
        shot(page, out, "6_evaluate_all_examples.png", started)
        browser.close()


if __name__ == "__main__":
    main()
