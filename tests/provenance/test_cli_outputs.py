"""Every CLI output has its manifest next to it: `explain` (the .npz and the PNG) and `evaluate` (the CSV)."""

from __future__ import annotations

import hashlib
import json

from tests.conftest import run_cli


def test_explain_writes_the_manifest_of_its_npz_and_png(tmp_path, chelsea):
    out, png = tmp_path / "cat", tmp_path / "cat.png"
    assert run_cli(["explain", "example:chelsea", "--method", "layercam", "--layers", "features.10,features.16",
                    "--param", "gamma=1.5", "--out", str(out), "--png", str(png), "--colormap", "jet"]) == 0
    record = json.loads((tmp_path / "cat.manifest.json").read_text())
    assert record["files"] == {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
                               for name in ("cat.npz", "cat.png")}
    assert record["extra"]["outputs"] == {"npz": "cat.npz", "png": "cat.png", "alpha": 0.5, "colormap": "jet"}
    (only,) = record["maps"]
    assert only["method"] == "layercam" and only["layers"] == ["features.10", "features.16"]
    assert only["params"] == {"fusion": "max", "gamma": 1.5}
    assert record["images"][0]["name"] == "example:chelsea" and record["images"][0]["width"] == chelsea.width


def test_evaluate_writes_the_manifest_of_its_csv(tmp_path, chelsea):
    folder = tmp_path / "photos"
    folder.mkdir()
    small = chelsea.resize((160, 106))
    small.save(folder / "cat.png")
    (folder / "notes.png").write_bytes(b"not a picture")
    out = tmp_path / "scores.csv"
    assert run_cli(["evaluate", str(folder), "--methods", "gradcam,eigencam", "--steps", "5", "--out", str(out)]) == 0
    record = json.loads((tmp_path / "scores.manifest.json").read_text())
    assert record["kind"] == "cli-evaluate" and record["maps"] == []
    assert record["files"] == {"scores.csv": hashlib.sha256(out.read_bytes()).hexdigest()}
    assert [(i["name"], i["sha256"]) for i in record["images"]] == [
        ("cat.png", hashlib.sha256(small.tobytes()).hexdigest())], "the unreadable file has no record"
    extra = record["extra"]
    assert extra["steps"] == 5 and extra["baseline"] == "rise" and extra["road"] is False
    assert extra["methods"] == {"gradcam": {"name": "Grad-CAM", "params": {}, "seed": None},
                                "eigencam": {"name": "Eigen-CAM", "params": {"centre": False}, "seed": None}}
