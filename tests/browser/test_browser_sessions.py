"""Concurrent users, as in a classroom: one Streamlit server, four browser sessions at once (each its own Chromium,
driven from its own thread with its own sync Playwright). Two stay on the default example photo and two upload
their own; all open Compare with its default grid at the same moment. Each must see its own photo's prediction
and maps, with no error. Then a file over maxUploadSize is refused politely in one session, which keeps working.

Oracle for the maps: the same pictures are recomputed here with cam_core (this process's own Explainer, so nothing
is shared with the server's caches) and compared pixel by pixel with the bytes the browser received
(st.image sends them as JPEG, so with a small tolerance). Sessions with different photos must never receive the same
map; the two on the shared example get the same one (computed once on the server).

The session (scripts/dashboard_driver.py's `student`) is the one that bench/classroom.py runs 8 or 16 of."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scripts.dashboard_driver import (
    ARGS,
    CHROMIUM,
    UPLOADER,
    default_grid,
    main_images,
    no_errors,
    run_students,
    settle,
)
from tests.browser.conftest import SHOTS, expected

playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)

pytestmark = pytest.mark.browser

UPLOADS = ("coffee", "astronaut")
SESSIONS = (None, None, *UPLOADS)  # None: the default example (chelsea)


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)


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


def test_four_sessions_on_the_default_grid_each_see_their_own_maps(server, tmp_path, mobilenet):
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
    truths = {photo: expected(image, mobilenet) for photo, image in images.items()}
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
