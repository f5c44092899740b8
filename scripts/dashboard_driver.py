"""Driving the dashboard in headless Chromium, shared by the browser tests (tests/browser/) and the benchmarks that
open the dashboard (bench/classroom.py, bench/server_memory.py, bench/browser_timing.py):

- starting `streamlit run app.py` on a free loopback port (streamlit_server) and Chromium's arguments (CHROMIUM,
  ARGS, playwright_api);
- reading a page: settle (wait until the app has finished running and every image has loaded), main_images,
  no_errors;
- working its widgets: type_into, pick (a multiselect option), choose (a select box option);
- a class of students: default_grid (the methods Compare shows by default), student (one browser session that
  uploads a photo and reads its Compare grid) and run_students (many at once, one thread each).

Neither a test nor a benchmark itself: both sides import from here, so that tests and bench never import each other.
Playwright is imported if it is installed (playwright_api is None otherwise: the browser tests skip themselves).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

try:
    from playwright import sync_api as playwright_api
except ImportError:  # the browser tests skip themselves; the benchmarks need it
    playwright_api = None

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
UPLOADER = "[data-testid=stFileUploader] input[type=file]"
POLL = 0.5  # how often a student's driver looks at its page (its queries cost the browsers' shared CPU)


def idle_chromium(folder: Path) -> str:
    """A chromium that runs under Linux's idle scheduling class (`chrt --idle 0`), written into folder: it gets the
    cycles the server leaves and never delays it, as a browser on the user's own machine. (Chromium renices its own
    processes, so `nice` alone does not hold.)"""
    wrapper = folder / "chromium"
    wrapper.write_text(f'#!/bin/sh\nexec chrt --idle 0 {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(log_name: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `streamlit run app.py` on a free port (with env added to this process's environment), logging to
    artifacts/log_name when that folder exists, and yield its URL; the server stops on leaving."""
    port = free_port()
    log = open(ROOT / "artifacts" / log_name, "w") if (ROOT / "artifacts").is_dir() else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true",
         "--server.address", "127.0.0.1"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.3)
        else:
            raise RuntimeError("streamlit did not start within 60 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        if log is not subprocess.DEVNULL:
            log.close()


def settle(tab, title: str | None = None, timeout: float = 90.0, poll: float = 0.05) -> float:
    """Wait until the app has finished running (on the page titled title) and every image has loaded: idle on two
    looks 0.3 s apart, so that a rerun queued behind the last one (which would clear a half-typed widget) is over.
    It looks every poll seconds (each look queries the page: many sessions at once look less often)."""
    started = time.perf_counter()
    if title:
        tab.locator("[data-testid=stMain] h1", has_text=title).first.wait_for(timeout=timeout * 1000)
    time.sleep(0.15)
    idle_since = None
    while time.perf_counter() - started < timeout:
        busy = (tab.locator("[data-stale=true]").count() or tab.locator("[data-testid=stSpinner]").count()
                or tab.locator("[data-testid=stProgress]").count()
                or tab.locator("[data-testid=stStatusWidgetRunningIcon]").count())
        loaded = tab.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        if busy or not loaded or not tab.locator("[data-testid=stMain] h1").count():
            idle_since = None
        elif idle_since is None:
            idle_since = time.perf_counter()
        elif time.perf_counter() - idle_since >= 0.3:
            return idle_since - started
        time.sleep(poll)
    raise AssertionError("the app did not settle")


def main_images(tab) -> list[str]:
    return tab.locator("[data-testid=stMain] [data-testid=stImage] img").evaluate_all("els => els.map(e => e.src)")


def no_errors(tab) -> None:
    assert tab.locator("[data-testid=stException]").count() == 0, tab.locator("[data-testid=stException]").inner_text()


def type_into(tab, box, text: str, option: str | None = None) -> None:
    """Open the select box box and type text key by key until the option named option (default: text) is listed.
    Typed too early, the opening list clears the text, and a click while an expander above is still opening may
    not open the list: then it tries again."""
    wanted = tab.get_by_role("option", name=option or text).first
    for attempt in range(3):
        box.click()
        try:
            tab.get_by_role("option").first.wait_for(timeout=5000)
            box.press_sequentially(text, delay=10)
            wanted.wait_for(timeout=5000)
            return
        except playwright_api.TimeoutError:
            if attempt == 2:
                raise
            box.fill("")
            tab.keyboard.press("Escape")


def pick(tab, multiselect, name: str) -> None:
    """Add the option called exactly name to multiselect."""
    type_into(tab, multiselect.locator("input"), name)
    tab.get_by_role("option", name=name, exact=True).click()


def choose(tab, label: str, text: str, option: str) -> float:
    """Type text into the select box labelled label and click the option whose name contains option; returns the
    perf_counter time of the click."""
    box = tab.get_by_role("combobox", name=label, exact=True)
    type_into(tab, box, text, option)
    target = tab.get_by_role("option", name=option).first
    target.wait_for()
    clicked = time.perf_counter()
    target.click()
    return clicked


def clear_methods(tab):
    """Empty Compare's methods multiselect (the first on the page); returns it."""
    methods = tab.locator("[data-testid=stMultiSelect]").first
    methods.locator("svg[title='Clear all']").click() if methods.locator("svg[title='Clear all']").count() else \
        methods.get_by_role("button", name="Clear all").click()
    return methods


def choose_methods(tab, names: list[str]) -> None:
    """On Compare (or Evaluate): empty the methods multiselect, add the methods called names one by one, close the
    list and wait for the page to settle."""
    methods = clear_methods(tab)
    settle(tab)
    for name in names:
        pick(tab, methods, name)
        settle(tab)
    tab.keyboard.press("Escape")
    settle(tab)


def add_score_cam(tab, first_timeout: float, complete_timeout: float) -> tuple[float, float, str]:
    """On Compare: empty the methods, add Score-CAM and wait for its map; the seconds from the click to its first
    (partial) picture and to the complete one, and the first picture's caption."""
    methods = clear_methods(tab)
    settle(tab)
    type_into(tab, methods.locator("input"), "Score-CAM")
    option = tab.get_by_role("option", name="Score-CAM", exact=True)
    option.wait_for()
    started = time.perf_counter()
    option.click()
    captions = tab.locator("[data-testid=stMain] [data-testid=stImageCaption]")
    first = captions.filter(has_text="Score-CAM").first
    first.wait_for(timeout=first_timeout * 1000)
    first_seconds, first_text = time.perf_counter() - started, first.inner_text()
    captions.filter(has_text="Score-CAM ·").filter(has_not_text="so far").first.wait_for(
        timeout=complete_timeout * 1000)
    settle(tab, timeout=complete_timeout)
    return first_seconds, time.perf_counter() - started, first_text


def default_grid() -> list[str]:
    """The names of the methods Compare shows by default, in order."""
    from cam_core import registry

    return [card.name for card in registry.default_grid()]


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
        complete = sorted(shown) == sorted(names) and len(sources) == len(names)  # in any order
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
