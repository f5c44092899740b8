"""python -m cam_core figure: 3 images × 6 methods written as PNG, PDF and SVG, each with its manifest next to it;
bad options are one line and exit code 2."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from cam_core.figures import DEFAULT_METHODS
from tests.conftest import run_cli

IMAGES = ["example:dog", "example:chelsea", "example:coffee"]
SMALL = ["--cell", "0.8", "--dpi", "60"]


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict:
    """Each format's figure and manifest (the dog explained for pickup, the others for their top-1 class)."""
    folder = tmp_path_factory.mktemp("figures")
    found = {}
    for fmt in ("png", "pdf", "svg"):
        out = folder / f"fig_{fmt}.{fmt}"
        code = run_cli(["figure", *IMAGES, "--out", str(out), "--targets", "pickup,,top", "--colorbar", "cell",
                        "--param", "layercam.layers=features.14,features.18", *SMALL])
        assert code == 0
        found[fmt] = (out, json.loads((folder / f"fig_{fmt}.manifest.json").read_text()))
    return found


def test_each_format_is_written_with_its_manifest(written):
    png, _ = written["png"]
    assert Image.open(png).format == "PNG"
    assert written["pdf"][0].read_bytes().startswith(b"%PDF")
    assert b"<svg" in written["svg"][0].read_bytes()[:2000]
    for fmt, (out, record) in written.items():
        assert record["kind"] == "figure"
        assert list(record["files"]) == [out.name]
        figure = record["extra"]["figure"]
        assert figure["format"] == fmt and figure["layout"]["cell"] == 0.8 and figure["layout"]["colorbar"] == "cell"


def test_the_manifest_names_the_six_methods_and_three_images(written):
    _, record = written["pdf"]
    figure = record["extra"]["figure"]
    assert [m["id"] for m in figure["methods"]] == list(DEFAULT_METHODS)
    assert figure["methods"][-1]["params"]["layers"] == ["features.14", "features.18"]
    assert [r["image"] for r in figure["rows"]] == ["dog", "chelsea", "coffee"]
    assert figure["rows"][0]["label"] == "pickup"
    assert [i["name"] for i in record["images"]] == ["dog", "chelsea", "coffee"]
    assert len(record["maps"]) == 18 and [m["image"] for m in record["maps"]] == [i // 6 for i in range(18)]
    assert {m["method"] for m in record["maps"]} == set(DEFAULT_METHODS)


@pytest.mark.parametrize("argv, message", [
    (["--out", "fig.jpg"], "suffix"),
    (["--out", "fig.png", "--targets", "1,2"], "one per image"),
    (["--out", "fig.png", "--param", "cutoff=1"], "METHOD.NAME=VALUE"),
    (["--out", "fig.png", "--methods", "gradcam", "--param", "gradcam.gamma=2"], "no parameter"),
    (["--out", "fig.png", "--methods", "rollout"], "cannot run on mobilenet_v2"),
    (["--out", "fig.png", "--cell", "50"], "cell size"),
    (["--out", "missing/fig.png"], "does not exist"),
])
def test_bad_options_are_one_line_and_exit_code_2(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli(["figure", "example:chelsea", *SMALL, *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not list(tmp_path.iterdir())  # nothing written
