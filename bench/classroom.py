"""Benchmark: a class on one server. N browser sessions at once, half on the shared example photo and half
uploading a photo of their own, all opening Compare with its default grid at the same moment.

    python bench/classroom.py --sessions 8 [--replicas 1] [--timeout 300] [--cache-bytes N]

Starts the dashboard (one `streamlit run app.py`, or --replicas of them behind nginx, as scripts/serve_class.py
does), opens it once as the teacher would (so the model is loaded), then runs the students of
scripts/dashboard_driver.py (the sessions of tests/browser/test_browser_sessions.py), each in its own headless
Chromium. Meanwhile a newcomer opens the home page every
10 s while the students' grids compute, and times its answer (the prediction shown). Prints, per session, the
time to the first map and to the full grid after clicking Compare, then the server's CPU seconds and peak
resident memory over the run. A report, never a test: the README quotes its table.

In a class, every student's browser runs on the student's own machine. Here all of them share the server's two
cores, so by default the students' browsers run under Linux's idle scheduling class (`chrt --idle 0`): they get
every cycle that the server and the newcomer leave, and never delay those, as on their own machines. (Chromium
renices its own processes, so `nice` alone does not hold.) --browsers normal runs them at the server's priority.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.dashboard_driver import (  # noqa: E402
    ARGS,
    CHROMIUM,
    default_grid,
    idle_chromium,
    playwright_api,
    run_students,
    settle,
)
from scripts.measure import MIB, rss_bytes  # noqa: E402
from scripts.serve_class import serve  # noqa: E402

DARKNET = Path("/usr/share/darknet/data")


def own_photos(count: int, folder: Path) -> list[Path]:
    """count different real photos as files (none of them the default example, chelsea)."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    images = [Image.fromarray(getattr(data, name)()) for name in ("coffee", "astronaut", "rocket")]
    images += [Image.fromarray(array) for array in load_sample_images().images]
    images += [Image.open(path).convert("RGB") for path in sorted(DARKNET.glob("*.jpg"))]
    if count > len(images):
        raise SystemExit(f"only {len(images)} distinct photos here; use at most {2 * len(images)} sessions")
    paths = []
    for i, image in enumerate(images[:count]):
        paths.append(folder / f"student_{i}.png")
        image.save(paths[-1])
    return paths


def process_tree(pid: int) -> list[int]:
    """pid and its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(child) for child in children)
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of pid and its descendants."""
    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class Monitor(threading.Thread):
    """Samples the replicas' resident memory every 0.2 s until stopped; keeps each replica's peak."""

    def __init__(self, pids: list[int]):
        super().__init__(daemon=True)
        self.pids = pids
        self.peaks = dict.fromkeys(pids, 0)
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.2):
            for pid in self.pids:
                with contextlib.suppress(OSError, RuntimeError):  # RuntimeError: no VmRSS (the process is exiting)
                    self.peaks[pid] = max(self.peaks[pid], rss_bytes(pid))


class Newcomer(threading.Thread):
    """Once the students compute, opens the home page in a fresh browser context every 10 s until stopped; keeps
    the seconds each visit took to show the prediction."""

    def __init__(self, url: str, timeout: float, shots: Path):
        super().__init__(daemon=True)
        self.url, self.timeout, self.shots = url, timeout, shots
        self.computing = threading.Event()
        self.times: list[float] = []
        self.stages: list[tuple[float, float, float]] = []  # page loaded, title shown, prediction shown
        self.errors: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        with playwright_api.sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            while not self.computing.wait(1):
                if self.halt.is_set():
                    return
            while not self.halt.is_set():
                context = browser.new_context(viewport={"width": 1500, "height": 1100})
                tab = context.new_page()
                started = time.perf_counter()
                try:
                    tab.goto(self.url, timeout=self.timeout * 1000, wait_until="domcontentloaded")
                    loaded = time.perf_counter() - started
                    tab.locator("[data-testid=stMain] h1").first.wait_for(timeout=self.timeout * 1000)
                    titled = time.perf_counter() - started
                    tab.get_by_text("Explaining:").first.wait_for(timeout=self.timeout * 1000)
                    self.times.append(time.perf_counter() - started)
                    self.stages.append((loaded, titled, self.times[-1]))
                except playwright_api.Error as exc:
                    self.errors.append(str(exc).splitlines()[0])
                    tab.screenshot(path=str(self.shots / f"newcomer_{len(self.errors)}.png"), full_page=True)
                context.close()
                self.halt.wait(10)
            browser.close()


def teacher(url: str, timeout: float) -> float:
    """Open the home page once (the model loads); the seconds it took."""
    started = time.perf_counter()
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        tab = browser.new_page(viewport={"width": 1500, "height": 1100})
        tab.goto(url)
        settle(tab, "CAM Explorer", timeout=timeout)
        browser.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--replicas", type=int, default=1, help="Streamlit processes behind nginx (1: no nginx)")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds a session may take for its grid")
    parser.add_argument("--cache-bytes", type=int, default=None, help="CAM_CACHE_BYTES for the server")
    parser.add_argument("--shots", type=Path, default=None, help="keep each session's screenshot in this folder")
    parser.add_argument("--browsers", choices=("idle", "normal"), default="idle",
                        help="scheduling class of the students' browsers (idle: after the server, as on own machines)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="classroom-"))
    uploads = own_photos(args.sessions // 2, folder)
    photos = [None] * (args.sessions - len(uploads)) + uploads
    photos = [photos[i] for i in sorted(range(len(photos)), key=lambda i: (i % 2, i))]  # alternate the two kinds
    env = {} if args.cache_bytes is None else {"CAM_CACHE_BYTES": str(args.cache_bytes)}
    names = default_grid()
    chromium = idle_chromium(folder) if args.browsers == "idle" else CHROMIUM
    if args.shots:
        args.shots.mkdir(parents=True, exist_ok=True)
    with serve(args.replicas, args.port, args.port + 1, folder / "server", env) as deployment:
        pids = [process.pid for process in deployment.replicas]
        loaded = teacher(deployment.url, args.timeout)
        monitor, newcomer = Monitor(pids), Newcomer(deployment.url, args.timeout, args.shots or folder)
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        monitor.start()
        newcomer.start()
        began = time.perf_counter()
        try:
            records = run_students(deployment.url, photos, names, args.timeout, args.shots, chromium,
                                   newcomer.computing)
        finally:
            newcomer.halt.set()
            monitor.halt.set()
        wall = time.perf_counter() - began
        cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        newcomer.join(args.timeout)
        monitor.join(5)
        routed = deployment.routed() if args.replicas > 1 else {}
    grids = [r["end"] - r["start"] for r in records]
    print(f"\n{args.sessions} sessions ({len(uploads)} own uploads, {args.sessions - len(uploads)} on the example), "
          f"{len(names)} maps each, {args.replicas} replica(s), students' browsers at {args.browsers} priority; the "
          f"teacher's first visit took {loaded:.1f} s\n")
    print("| session | photo | first map | full grid |")
    print("|---|---|---|---|")
    for i, (photo, record) in enumerate(zip(photos, records, strict=True)):
        name = "example (chelsea)" if photo is None else photo.name
        first, full = record["first_map"] - record["start"], record["end"] - record["start"]
        print(f"| {i} | {name} | {first:.1f} s | {full:.1f} s |")
    peak = sum(monitor.peaks.values())
    waits = newcomer.times
    print(f"\nall {args.sessions} grids within {max(grids):.1f} s (median {sorted(grids)[len(grids) // 2]:.1f} s); "
          f"students' run {wall:.1f} s wall")
    print(f"server CPU {cpu:.1f} s over the run ({cpu / wall:.2f} cores busy on average); peak resident memory "
          + " + ".join(f"{v / MIB:.0f}" for v in monitor.peaks.values()) + f" = {peak / MIB:.0f} MiB")
    stages = "; ".join(f"{a:.1f}/{b:.1f}/{c:.1f}" for a, b, c in newcomer.stages)
    print(f"newcomer's home page (page loaded / title / prediction shown, s): {stages}")
    print(f"newcomer's home page: {len(waits)} visits, slowest {max(waits, default=float('nan')):.1f} s"
          + (f"; {len(newcomer.errors)} failed: {newcomer.errors[0]}" if newcomer.errors else ""))
    errors = [r.get("alerts") for r in records if r.get("alerts")]
    print(f"errors shown: {len(errors)}" + (f" ({errors[0]})" if errors else ""))
    if routed:
        print("requests per replica: " + ", ".join(f"{k}: {v}" for k, v in sorted(routed.items())))


if __name__ == "__main__":
    main()
