"""Concurrent users, as in a classroom: one Streamlit server, four browser sessions at once (each its own Chromium,
driven from its own thread with its own sync Playwright). Two stay on the default example photo and two upload
their own; all open Compare with its default grid at the same moment. Each must see its own photo's prediction
and maps, with no error. Then a file over maxUploadSize is refused politely in one session, which keeps working.

Oracle for the maps: the same pictures are recomputed here with cam_core (a fresh Explainer in this process, so
nothing is shared with the server's caches) and compared pixel by pixel with the bytes the browser received
(st.image sends them as JPEG, so with a small tolerance). Sessions with different photos must never receive the same
map; the two on the shared example get the same one (computed once on the server).

`student` is the session that bench/classroom.py runs 8 or 16 of."""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .test_browser import (
    ARGS,
    CHROMIUM,
    SHOTS,
    main_images,
    no_errors,
    playwright_api,
    settle,
    streamlit_server,
)

pytestmark = pytest.mark.browser

UPLOADS = ("coffee", "astronaut")
SESSIONS = (None, None, *UPLOADS)  # None: the default example (chelsea)
CHECKED = ("gradcam", "eigencam", "layercam", "groupcam", "guidedbackprop")  # recomputed here, picture by picture
UPLOADER = "[data-testid=stFileUploader] input[type=file]"
POLL = 0.5  # how often a student's driver looks at its page (its queries cost the browsers' shared CPU)


@pytest.fixture(scope="module")
def server():
    yield from streamlit_server("streamlit_sessions.log")


def default_grid() -> list[str]:
    """The names of the methods Compare shows by default, in order."""
    from cam_core import methods

    return [card.name for card in methods() if card.cost in ("instant", "fast")]


def expected(image: Image.Image) -> dict:
    """What cam_core alone says about image, read the way the dashboard reads it: its top-1 class, its label and the
    default Compare pictures (overlay, opacity 0.6, first colour map, evidence for) of the CHECKED methods."""
    from cam_core import Explainer, methods
    from cam_core.render.pictures import COLORMAPS, result_picture

    analysis = Explainer("mobilenet_v2").analyze(image)
    index, label, _ = analysis.top_k(1)[0]
    names = {card.id: card.name for card in methods()}
    pictures = {}
    for method in CHECKED:
        result = analysis.cam(method, target=index)
        picture = result_picture(analysis.image, result.saliency, result.raw, "overlay", 0.6, COLORMAPS[0], result.rgb)
        pictures[names[method]] = np.asarray(picture.convert("RGB"), dtype=np.float32)
    return {"index": index, "label": label, "pictures": pictures}


def grid(tab, names: list[str], timeout: float) -> list[tuple[str, bytes]]:
    """(method name, image bytes as the browser received them) for every map of the Compare grid, once the grid
    shows exactly the methods called names, one finished picture each (a rerun may still be drawing when the page
    first looks idle on a loaded server)."""
    deadline = time.perf_counter() + timeout
    while True:
        settle(tab, timeout=max(1.0, deadline - time.perf_counter()), poll=POLL)
        captions = tab.locator("[data-testid=stMain] [data-testid=stImageCaption]").all_inner_texts()
        sources = main_images(tab)
        shown = [caption.split(" · ")[0] for caption in captions]
        complete = sorted(shown) == sorted(names) and len(sources) == len(names)  # the DOM lists column by column
        if complete and not any(" · so far" in c for c in captions):
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


def student(url: str, photo: Path | None, start: threading.Barrier, record: dict, names: list[str],
            timeout: float = 300.0, shot: Path | None = None, chromium: str = CHROMIUM,
            cookies: dict[str, str] | None = None) -> None:
    """One student, in its own thread with its own Playwright and Chromium: open the dashboard, upload photo (or
    stay on the default example when None), wait for the class, open Compare and read its grid of the methods
    called names. Fills record with the times (perf_counter) and what the page showed; an exception goes into
    record["error"] and breaks the barrier for the others. chromium: the browser to run (a wrapper that lowers its
    priority models students' own machines); cookies: set in the browser before the first visit."""
    try:
        with playwright_api.sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=chromium, args=ARGS)
            context = browser.new_context(viewport={"width": 1500, "height": 1100})
            context.add_cookies([{"name": k, "value": v, "url": url} for k, v in (cookies or {}).items()])
            tab = context.new_page()
            record["tab"] = tab
            tab.goto(url, timeout=timeout * 1000)
            settle(tab, "CAM Explorer", timeout=timeout, poll=POLL)
            if photo is not None:
                tab.locator(UPLOADER).set_input_files(str(photo), timeout=timeout * 1000)
                tab.get_by_text(f"{photo.name} ·").first.wait_for(timeout=timeout * 1000)
                settle(tab, timeout=timeout, poll=POLL)
            no_errors(tab)
            record["explaining"] = tab.get_by_text("Explaining:").first.locator("..").inner_text()
            start.wait(timeout=timeout)

            record["start"] = time.perf_counter()
            tab.get_by_role("link", name="Compare methods").click()
            tab.locator("[data-testid=stMain] h1", has_text="Compare methods").wait_for(timeout=timeout * 1000)
            record["first_map"] = first_map(tab, timeout)
            record["grid"] = grid(tab, names, timeout)
            record["end"] = time.perf_counter()
            no_errors(tab)
            record["alerts"] = tab.locator("[data-testid=stMain] [data-testid=stAlert]").all_inner_texts()
            record["heading"] = tab.locator("[data-testid=stMain] h3").first.inner_text()
            if shot is not None:
                tab.locator("[data-testid=stMain] h1").click()
                tab.screenshot(path=str(shot), full_page=True)
            record.pop("tab")
            browser.close()
    except BaseException as exc:  # noqa: BLE001 - reported by the caller in its own thread
        record["error"] = exc
        start.abort()


def first_map(tab, timeout: float) -> float:
    """perf_counter time at which the first map of the grid is shown."""
    tab.locator("[data-testid=stMain] [data-testid=stImage] img").first.wait_for(timeout=timeout * 1000)
    return time.perf_counter()


def run_students(url: str, photos: list[Path | None], names: list[str], timeout: float,
                 shots: Path | None = None, chromium: str = CHROMIUM,
                 computing: threading.Event | None = None, cookies: list[dict] | None = None) -> list[dict]:
    """Every student at once (one thread each); their records, in order. Fails with the first error. computing is
    set when all of them are ready and click Compare together; cookies[i] are student i's."""
    start = threading.Barrier(len(photos), action=computing.set if computing else None)
    records: list[dict] = [{} for _ in photos]
    threads = [
        threading.Thread(target=student, args=(url, photo, start, records[i], names, timeout,
                                               None if shots is None else shots / f"session_{i}.png", chromium,
                                               (cookies or [None] * len(photos))[i]), daemon=True)
        for i, photo in enumerate(photos)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout * 3)
    hung = [i for i, thread in enumerate(threads) if thread.is_alive()]
    assert not hung, f"sessions {hung} hung"
    for i, record in enumerate(records):
        if "error" in record and not isinstance(record["error"], threading.BrokenBarrierError):
            raise AssertionError(f"session {i} ({photos[i] or 'default example'}) failed") from record["error"]
    return records


def refuse_big_upload(url: str, big: Path) -> dict:
    """A session uploads a file over maxUploadSize: what the page says, and whether it kept its image."""
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        tab = browser.new_page(viewport={"width": 1500, "height": 1100})
        tab.goto(url)
        settle(tab, "CAM Explorer", timeout=120)
        home, explaining = main_images(tab), tab.get_by_text("Explaining:").first.locator("..").inner_text()
        tab.locator(UPLOADER).set_input_files(str(big))
        message = tab.get_by_text(re.compile(r"File must be .* or smaller"))
        message.first.wait_for(timeout=30_000)
        settle(tab, timeout=120)
        no_errors(tab)
        found = {"refusal": message.first.inner_text(), "visible": message.first.is_visible(),
                 "home_kept": main_images(tab) == home,
                 "explaining_kept": tab.get_by_text("Explaining:").first.locator("..").inner_text() == explaining}
        tab.screenshot(path=str(SHOTS / "session_big_upload.png"), full_page=True)
        tab.locator("[data-testid=stMain] [data-testid=stButton] button:not([disabled])").first.click()
        settle(tab, timeout=120)
        no_errors(tab)
        found["switched"] = tab.get_by_text("Explaining:").first.locator("..").inner_text() != explaining
        browser.close()
    return found


def test_four_sessions_on_the_default_grid_each_see_their_own_maps(server, tmp_path):
    from skimage import data

    SHOTS.mkdir(parents=True, exist_ok=True)
    photos: list[Path | None] = []
    for name in SESSIONS:
        if name is None:
            photos.append(None)
            continue
        photos.append(tmp_path / f"{name}.png")
        Image.fromarray(getattr(data, name)()).save(photos[-1])
    images = {None: Image.fromarray(data.chelsea()), **{p: Image.open(p).convert("RGB") for p in photos if p}}
    truths = {photo: expected(image) for photo, image in images.items()}
    assert len({truth["index"] for truth in truths.values()}) == len(truths), "the photos' top-1 classes must differ"

    names = default_grid()
    began = time.perf_counter()
    records = run_students(server, photos, names, timeout=240, shots=SHOTS)
    latest_start = max(r["start"] for r in records)
    earliest_end = min(r["end"] for r in records)
    print(f"\n{len(records)} sessions ({len(names)} maps each) in {time.perf_counter() - began:.1f} s; grids after "
          + ", ".join(f"{r['end'] - r['start']:.1f} s (first map {r['first_map'] - r['start']:.1f} s)"
                      for r in records))
    assert latest_start < earliest_end, "the Compare pages must have been computing at the same time"

    for photo, record in zip(photos, records, strict=True):
        truth = truths[photo]
        wanted = f"{truth['label']} ({truth['index']})"
        assert wanted in record["explaining"], (photo, record["explaining"], wanted)
        assert record["heading"].startswith(wanted), (photo, record["heading"], wanted)
        assert not record["alerts"], (photo, record["alerts"])
        shown = dict(record["grid"])
        for name, oracle in truth["pictures"].items():
            got = pixels(shown[name])
            assert got.shape == oracle.shape, (photo, name, got.shape, oracle.shape)
            own = float(np.abs(got - oracle).mean())
            allowed = 4.0 if name.startswith("Guided") else 2.0  # JPEG loses more of a high-frequency gradient picture
            assert own < allowed, f"{photo} {name}: mean |difference| {own:.2f} from cam_core's picture"
    for name in names:
        by_photo = {}
        for photo, record in zip(photos, records, strict=True):
            by_photo.setdefault(photo, set()).add(dict(record["grid"])[name])
        assert all(len(maps) == 1 for maps in by_photo.values()) or name == "Guided backprop", name
        distinct = [next(iter(maps)) for maps in by_photo.values()]
        assert len(set(distinct)) == len(distinct), f"{name}: sessions with different photos got the same map"

    big = tmp_path / "big.png"
    with open(big, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n")
        handle.truncate(26 * 1024 * 1024 + 1)
    refused = refuse_big_upload(server, big)
    assert refused["visible"] and "25" in refused["refusal"], refused
    assert refused["home_kept"] and refused["explaining_kept"], "the previous image must still be shown"
    assert refused["switched"], "the session must keep working after the refusal"
