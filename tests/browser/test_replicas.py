"""A lecture hall: two dashboard replicas behind Debian's nginx on loopback (scripts/serve_class.py), with sticky
sessions. Two browser sessions, one per replica, one on the shared example and one uploading its own photo, both
open Compare with its default grid through nginx; each must see its own photo's maps, and every request of a
session must reach the same replica (its page, websocket, upload and pictures live in that process)."""

from __future__ import annotations

import shutil
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from scripts.dashboard_driver import CHROMIUM, default_grid, free_port, run_students
from scripts.serve_class import serve
from tests.browser.conftest import SHOTS, expected

pytestmark = pytest.mark.browser
pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
if not Path(NGINX).exists():
    pytest.skip("Debian's nginx is not installed", allow_module_level=True)


def cookies_per_replica(url: str, deployment, wanted: int) -> dict[str, list[str]]:
    """Values of the cam_replica cookie that nginx routes to each replica, wanted of each, found by asking."""
    found: dict[str, list[str]] = {}
    for index in range(200):
        value = f"student-{index}"
        request = urllib.request.Request(f"{url}/_stcore/health", headers={"Cookie": f"cam_replica={value}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        time.sleep(0.05)  # nginx writes the access log line after the response
        upstream = (deployment.folder / "access.log").read_text().splitlines()[-1].split("upstream=")[1].split()[0]
        if len(found.setdefault(upstream, [])) < wanted:
            found[upstream].append(value)
        if len(found) == len(deployment.ports) and all(len(v) == wanted for v in found.values()):
            return found
    raise AssertionError(f"could not find {wanted} cookies per replica: {found}")


def test_two_replicas_behind_nginx_keep_each_session_on_its_replica(tmp_path, mobilenet):
    from skimage import data

    photos = [None, tmp_path / "coffee.png"]
    Image.fromarray(data.coffee()).save(photos[1])
    truths = [expected(Image.fromarray(data.chelsea()) if p is None else Image.open(p).convert("RGB"), mobilenet)
              for p in photos]
    with serve(2, free_port(), free_port(), tmp_path / "class") as deployment:
        routes = cookies_per_replica(deployment.url, deployment, 1)
        assigned = [value for pair in zip(*routes.values(), strict=True) for value in pair]
        records = run_students(deployment.url, photos, default_grid(), timeout=240, shots=SHOTS,
                               cookies=[{"cam_replica": value} for value in assigned])
        log = (deployment.folder / "access.log").read_text().splitlines()
    for photo, truth, record in zip(photos, truths, records, strict=True):
        assert f"{truth['label']} ({truth['index']})" in record["explaining"], (photo, record["explaining"])
        assert record["heading"].startswith(f"{truth['label']} ({truth['index']})"), record["heading"]
        assert not record["alerts"], record["alerts"]
        assert len(record["grid"]) == len(default_grid())
    upstreams: dict[str, set[str]] = {}
    for line in log:
        replica, upstream = line.split("replica=")[1].split()[0], line.split("upstream=")[1].split()[0]
        if upstream != "-":  # "-": a front-end file nginx served itself
            upstreams.setdefault(replica, set()).add(upstream)
    for value in assigned:
        assert len(upstreams[value]) == 1, f"session {value} reached {upstreams[value]}"
    assert {next(iter(upstreams[v])) for v in assigned} == set(routes), "both replicas must have served sessions"
