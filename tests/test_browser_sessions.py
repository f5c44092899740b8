"""Concurrent users: one Streamlit server, four browser sessions (each its own Chromium, driven from its own thread
with its own sync Playwright) upload four different real photos and open Compare at the same moment; each must see
its own photo's prediction and its own maps. Then a file over maxUploadSize is refused politely in one session,
which keeps working.

Four default Compare grids (18 methods each) at once take over 3 minutes on 2 cores, so each session, once on
Compare, clears the methods and keeps three cheap ones (Grad-CAM, Eigen-CAM, Layer-CAM); the four pages still run
at the same time (the test checks that their Compare phases overlap).

Oracle for the maps: the same pictures are recomputed here with cam_core (a fresh Explainer in this process, so
nothing is shared with the server's caches: a later solo run on the same server would reuse the analyses computed
under load and could not catch a mix-up in them) and compared pixel by pixel with the bytes the browser received
(st.image sends them as JPEG, so with a small tolerance); the four photos have different sizes and classes, so a map
from another session fails the shape or the pixel check, and no two sessions may receive the same map."""

from __future__ import annotations

import io
import re
import threading
import time

import numpy as np
import pytest
from PIL import Image

from .test_browser import (
    CHROMIUM,
    SHOTS,
    main_images,
    no_errors,
    pick,
    playwright_api,
    settle,
    streamlit_server,
)

pytestmark = pytest.mark.browser

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
CHEAP = ("gradcam", "eigencam", "layercam")  # the grid each session keeps (4 default grids take > 3 min on 2 cores)
UPLOADER = "[data-testid=stFileUploader] input[type=file]"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def server():
    yield from streamlit_server("streamlit_sessions.log")


def expected(photo) -> dict:
    """What cam_core alone says about photo, read the way the dashboard reads an upload: its top-1 class, its label
    and the default Compare pictures (overlay, opacity 0.6, first colour map, evidence for) of the cheap methods."""
    from cam_core import Explainer, methods
    from cam_core.images import load_image
    from cam_core.render import COLORMAPS, result_picture

    explainer = Explainer("mobilenet_v2")
    analysis = explainer.analyze(load_image(photo.read_bytes()))
    index, label, _ = analysis.top_k(1)[0]
    names = {card.id: card.name for card in methods()}
    pictures = {}
    for method in CHEAP:
        result = analysis.cam(method, target=index, sign="positive")
        picture = result_picture(analysis.image, result.saliency, result.raw, "overlay", 0.6, COLORMAPS[0], result.rgb)
        pictures[names[method]] = np.asarray(picture.convert("RGB"), dtype=np.float32)
    return {"index": index, "label": label, "pictures": pictures}


def grid(tab, names: list[str], timeout: float = 120.0) -> list[tuple[str, bytes]]:
    """(method name, image bytes as the browser received them) for every map of the Compare grid, once the grid
    shows exactly the methods called names, one picture each (a rerun may still be drawing when the page first
    looks idle on a loaded server)."""
    deadline = time.perf_counter() + timeout
    while True:
        settle(tab, timeout=timeout)
        captions = tab.locator("[data-testid=stMain] [data-testid=stImageCaption]").all_inner_texts()
        sources = main_images(tab)
        shown = [caption.split(" · ")[0] for caption in captions]
        if shown == names and len(sources) == len(names):
            break
        if time.perf_counter() > deadline:
            raise AssertionError(f"the grid shows {shown} with {len(sources)} pictures, not {names}")
        time.sleep(0.5)
    images = []
    for name, source in zip(shown, sources, strict=True):
        response = tab.context.request.get(source)
        assert response.ok, (source, response.status)
        images.append((name, response.body()))
    return images


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)


def session(index: int, photo, server: str, start: threading.Barrier, out: dict, names, big=None) -> None:
    """One user, in its own thread, with its own Playwright and Chromium: upload photo, wait for the others, open
    Compare, keep only the methods called names, and read the grid."""
    record = out[index] = {}
    try:
        with playwright_api.sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            context = browser.new_context(viewport={"width": 1500, "height": 1100})
            tab = context.new_page()
            tab.goto(server)
            settle(tab, "CAM Explorer", timeout=120)
            tab.locator(UPLOADER).set_input_files(str(photo))
            tab.get_by_text(f"{photo.name} ·").first.wait_for(timeout=90_000)
            settle(tab, timeout=120)
            no_errors(tab)
            record["explaining"] = tab.get_by_text("Explaining:").first.locator("..").inner_text()
            start.wait(timeout=180)

            record["start"] = time.perf_counter()
            tab.get_by_role("link", name="Compare methods").click()
            tab.locator("[data-testid=stMain] h1", has_text="Compare methods").wait_for(timeout=60_000)
            methods = tab.locator("[data-testid=stMultiSelect]").first
            clear = methods.locator("svg[title='Clear all']")
            clear = clear if clear.count() else methods.get_by_role("button", name="Clear all")
            clear.click()
            settle(tab, timeout=120)
            for name in names:
                pick(tab, methods, name)
                settle(tab, timeout=120)
            tab.keyboard.press("Escape")
            settle(tab, "Compare methods", timeout=120)
            record["grid"] = grid(tab, names)
            record["end"] = time.perf_counter()
            no_errors(tab)
            record["heading"] = tab.locator("[data-testid=stMain] h3").first.inner_text()
            tab.locator("[data-testid=stMain] h1").click()
            tab.screenshot(path=str(SHOTS / f"session_{index}.png"), full_page=True)

            if big is not None:
                tab.get_by_role("link", name="Home").click()
                settle(tab, "CAM Explorer", timeout=120)
                home = main_images(tab)
                tab.locator(UPLOADER).set_input_files(str(big))
                message = tab.get_by_text(re.compile(r"File must be .* or smaller"))
                message.first.wait_for(timeout=30_000)
                settle(tab, timeout=120)
                record["refusal"] = message.first.inner_text()
                record["refusal_visible"] = message.first.is_visible()
                no_errors(tab)
                record["home_kept"] = main_images(tab) == home
                record["caption_kept"] = tab.get_by_text(f"{photo.name} ·").count() > 0
                record["explaining_kept"] = tab.get_by_text("Explaining:").first.locator("..").inner_text()
                tab.screenshot(path=str(SHOTS / "session_0_big_upload.png"), full_page=True)
                tab.locator("[data-testid=stMain] [data-testid=stButton] button:not([disabled])").first.click()
                settle(tab, timeout=120)
                no_errors(tab)
                record["switched"] = tab.get_by_text("Explaining:").first.locator("..").inner_text()
            browser.close()
    except BaseException as exc:  # noqa: BLE001 - reported by the test in the main thread
        record["error"] = exc
        start.abort()


def test_four_sessions_at_once_each_see_their_own_maps(server, tmp_path):
    from skimage import data

    SHOTS.mkdir(parents=True, exist_ok=True)
    photos = []
    for name in PHOTOS:
        path = tmp_path / f"{name}.png"
        Image.fromarray(getattr(data, name)()).save(path)
        photos.append(path)
    big = tmp_path / "big.png"
    with open(big, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n")
        handle.truncate(26 * 1024 * 1024 + 1)
    truths = [expected(photo) for photo in photos]
    assert len({truth["index"] for truth in truths}) == len(PHOTOS), "the photos must have different top-1 classes"
    assert "cat" in truths[0]["label"] and truths[1]["label"] == "espresso", [t["label"] for t in truths]

    from cam_core import methods

    names = [card.name for card in methods() if card.id in CHEAP]
    start = threading.Barrier(len(photos))
    out: dict[int, dict] = {}
    threads = [threading.Thread(target=session, args=(i, photo, server, start, out, names, big if i == 0 else None))
               for i, photo in enumerate(photos)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not any(thread.is_alive() for thread in threads), "a session hung"
    for i in range(len(photos)):
        if "error" in out[i]:
            print(f"session {i} ({photos[i].name}): {out[i]['error']!r}"[:2000])
    for i in range(len(photos)):
        if "error" in out[i]:
            raise AssertionError(f"session {i} ({photos[i].name}) failed") from out[i]["error"]

    latest_start = max(out[i]["start"] for i in out)
    earliest_end = min(out[i]["end"] for i in out)
    print(f"\n4 sessions in {time.perf_counter() - began:.1f} s; Compare settled after "
          + ", ".join(f"{out[i]['end'] - out[i]['start']:.1f} s" for i in sorted(out)))
    assert latest_start < earliest_end, "the four Compare pages must have been computing at the same time"

    for i, truth in enumerate(truths):
        wanted = f"{truth['label']} ({truth['index']})"
        assert wanted in out[i]["explaining"], (photos[i].name, out[i]["explaining"], wanted)
        assert out[i]["heading"].startswith(wanted), (photos[i].name, out[i]["heading"], wanted)
        shown = dict(out[i]["grid"])
        for name, oracle in truth["pictures"].items():
            got = pixels(shown[name])
            assert got.shape == oracle.shape, (photos[i].name, name, got.shape, oracle.shape)
            own = float(np.abs(got - oracle).mean())
            assert own < 2.0, f"{photos[i].name} {name}: mean |difference| {own:.2f} from cam_core's picture"

    for method in dict(out[0]["grid"]):
        maps = [dict(out[i]["grid"]).get(method) for i in out]
        present = [m for m in maps if m is not None]
        assert len(set(present)) == len(present), f"{method}: two sessions got the same map"

    record = out[0]
    assert record["refusal_visible"] and "25" in record["refusal"], record["refusal"]
    assert record["home_kept"] and record["caption_kept"], "the previous image must still be shown"
    assert record["explaining_kept"] == record["explaining"], record["explaining_kept"]
    assert record["switched"] != record["explaining"] and "Explaining:" in record["switched"], record["switched"]
