"""Every download of Compare (each map as PNG and as NPY, the whole grid) and of Evaluate (the per-image rows) is a
zip of its file(s) and manifest.json, built only when clicked; the map downloads' manifests reproduce their maps."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable

import numpy as np
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager

from cam_core.inputs.examples import load_example
from cam_core.provenance.manifest import reproduce
from tests.conftest import open_app

METHODS = ["gradcam", "layercam"]


@pytest.fixture(scope="module")
def deferred() -> dict[str, Callable[[], bytes]]:
    """The downloads' lazy data by file name, as the pages register them (AppTest has no browser to click)."""
    found: dict[str, Callable[[], bytes]] = {}
    original = MediaFileManager.add_deferred

    def keep(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        found[file_name] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name=file_name, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MediaFileManager, "add_deferred", keep)
        app = open_app()
        app.switch_page("pages/compare.py")
        app.session_state["compare_methods"] = METHODS
        for method in METHODS:  # a map's popover draws its downloads only when it is open
            app.session_state[f"about_{method}_285_positive"] = True
        app.run()
        assert not app.exception, app.exception
        app.session_state["evaluate_steps"] = 5
        app.session_state["evaluate_methods"] = ["gradcam"]
        app.switch_page("pages/evaluate.py")
        app.run()
        assert not app.exception, app.exception
    return found


def opened(data: bytes) -> tuple[dict[str, bytes], dict]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    return files, json.loads(files.pop("manifest.json"))


def test_each_map_downloads_as_png_and_npy_zips_whose_manifest_reproduces_it(deferred):
    stems = [f"{method}_285_positive" for method in METHODS]
    assert {f"{stem}_{kind}.zip" for stem in stems for kind in ("png", "npy")} <= set(deferred)
    image = load_example("chelsea")
    for method, stem in zip(METHODS, stems, strict=True):
        files, record = opened(deferred[f"{stem}_npy.zip"]())
        assert list(files) == [f"{stem}.npy"] and record["kind"] == "map"
        assert record["images"][0]["name"] == "example: chelsea"
        assert record["extra"]["drawn"]["colormap"] == "viridis"
        raw = np.load(io.BytesIO(files[f"{stem}.npy"]))
        assert np.array_equal(reproduce(record, image).raw, raw)
        (only,) = record["maps"]
        assert only["method"] == method and only["target"] == 285
        pictures, png_record = opened(deferred[f"{stem}_png.zip"]())
        assert list(pictures) == [f"{stem}.png"] and pictures[f"{stem}.png"].startswith(b"\x89PNG")
        assert png_record["maps"] == record["maps"]


def test_the_whole_grid_downloads_with_every_map_in_its_manifest(deferred):
    files, record = opened(deferred["cam_grid.zip"]())
    assert list(files) == ["cam_grid.png"] and record["kind"] == "grid"
    assert [m["method"] for m in record["maps"]] == METHODS
    assert record["extra"]["pictures"] == ["Grad-CAM · Egyptian cat", "Layer-CAM · Egyptian cat"]


def test_evaluate_rows_download_with_the_manifest_and_its_settings(deferred):
    (name,) = [name for name in deferred if name.startswith("evaluation_")]
    files, record = opened(deferred[name]())
    (csv,) = files
    assert csv.endswith(".csv") and files[csv].decode().startswith("image,class,label")
    assert record["kind"] == "evaluation" and record["images"][0]["name"] == "example: chelsea"
    assert [m["method"] for m in record["maps"]] == ["gradcam"]
    settings = record["extra"]["settings"]
    assert settings["steps"] == 5 and settings["methods"] == {"gradcam": {"name": "Grad-CAM", "parameters": {}}}
    assert settings["model"] == "mobilenet_v2" and settings["layer"] == "features.18"
