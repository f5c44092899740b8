"""Benchmark: the dashboard server's resident memory over 100 different uploads in a row from a real browser.

    python bench/server_memory.py [--images 100] [--cache-bytes N] [--compare-every 10]

Starts `streamlit run app.py`, uploads distinct ~800×600 photos (scripts/measure.py's) one after another on the Home
page in headless Chromium, opens the Compare grid every --compare-every uploads (so the analyses also hold
gradients, layer stacks and masked-input scores), and reads the server process's VmRSS after each upload.
A report, never a test: it prints the RSS after uploads 1, 10, 50 and 100 and the peak.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.dashboard_driver import ARGS, CHROMIUM, UPLOADER, playwright_api, settle, streamlit_server  # noqa: E402
from scripts.measure import MIB, distinct_images  # noqa: E402


def server_rss(port: int) -> int:
    """VmRSS of the process listening on port (the streamlit server), in bytes."""
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            command = (status.parent / "cmdline").read_bytes().replace(b"\0", b" ")
            if b"streamlit" in command and f"--server.port {port}".encode() in command:
                for line in status.read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
    raise RuntimeError(f"no streamlit process on port {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--cache-bytes", type=int, default=None, help="CAM_CACHE_BYTES for the server (default 1 GiB)")
    parser.add_argument("--compare-every", type=int, default=10, help="open Compare after every N uploads (0: never)")
    args = parser.parse_args()
    if args.cache_bytes is not None:
        os.environ["CAM_CACHE_BYTES"] = str(args.cache_bytes)
    folder = Path(tempfile.mkdtemp(prefix="uploads-"))
    paths = []
    for i, array in enumerate(distinct_images(args.images)):
        paths.append(folder / f"upload_{i:03d}.png")
        Image.fromarray(array).save(paths[-1])
    curve = []
    started = time.perf_counter()
    with streamlit_server("server_memory.log") as url, \
            playwright_api.sync_playwright() as driver:
        port = int(url.rsplit(":", 1)[1])
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        tab = browser.new_page(viewport={"width": 1500, "height": 1100})
        tab.goto(url)
        settle(tab, "CAM Explorer", timeout=120)
        print(f"server up: RSS {server_rss(port) / MIB:.1f} MiB", flush=True)
        for i, path in enumerate(paths, 1):
            tab.locator(UPLOADER).set_input_files(str(path))
            tab.get_by_text(f"{path.name} ·").first.wait_for(timeout=120_000)
            settle(tab, timeout=120)
            if args.compare_every and i % args.compare_every == 0:
                tab.get_by_role("link", name="Compare methods").click()
                settle(tab, "Compare methods", timeout=300)
                tab.get_by_role("link", name="Home").click()
                settle(tab, "CAM Explorer", timeout=120)
            curve.append(server_rss(port))
            if i in (1, 10, 50, 100) or i % 25 == 0:
                print(f"  upload {i:3d}: server RSS {curve[-1] / MIB:7.1f} MiB", flush=True)
        browser.close()
    seconds = time.perf_counter() - started
    peak = max(curve)
    print(f"{len(paths)} uploads in {seconds:.0f} s; peak server RSS {peak / MIB:.1f} MiB "
          f"(upload {curve.index(peak) + 1}); growth from upload 10 to the last "
          f"{(curve[-1] - curve[min(9, len(curve) - 1)]) / MIB:+.1f} MiB")


if __name__ == "__main__":
    main()
