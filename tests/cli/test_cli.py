"""python -m cam_core: listings, explain outputs, and exit code 2 with one line for bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cam_core import methods, read_specs
from cam_core.cli import main
from tests.conftest import DARKNET, run_cli


def test_models_and_methods_one_entry_a_line_id_first(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == list(read_specs())
    assert lines[0].split("\t")[1] == "offline" and "download" in lines[2]
    assert main(["methods"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [card.id for card in methods()]


@pytest.fixture(scope="module")
def chelsea_file(tmp_path_factory, chelsea) -> str:
    path = tmp_path_factory.mktemp("images") / "chelsea.jpg"
    chelsea.save(path, quality=95)
    return str(path)


def test_explain_writes_the_maps_and_an_overlay(chelsea_file, tmp_path, capsys):
    out, png = tmp_path / "cat.npz", tmp_path / "cat.png"
    code = main(["explain", chelsea_file, "--method", "gradcampp", "--target", "tiger cat", "--out", str(out),
                 "--png", str(png)])
    assert code == 0, capsys.readouterr().err
    saved = np.load(out)
    assert saved["saliency"].shape == (300, 451) and saved["saliency"].dtype == np.float32
    assert 0.0 <= saved["saliency"].min() and saved["saliency"].max() == pytest.approx(1.0)
    assert saved["raw"].shape == (7, 7)
    assert int(saved["target"]) == 282
    assert saved["probs"].shape == (1000,) and saved["probs"].sum() == pytest.approx(1.0, abs=1e-4)
    with Image.open(png) as overlay:
        assert overlay.size == (451, 300)
    assert "282 tiger cat" in capsys.readouterr().out


def test_explain_defaults_to_the_top_class_and_takes_layer_and_model(chelsea_file, tmp_path):
    out = tmp_path / "lite.npz"
    assert main(["explain", chelsea_file, "--model", "efficientnet_lite0", "--method", "layercam",
                 "--layer", "blocks.5", "--out", str(out)]) == 0
    saved = np.load(out)
    assert int(saved["target"]) == 285 and saved["raw"].shape == (7, 7)


def test_own_weights_on_the_cli(chelsea_file, tmp_path):
    import torch

    from cam_core.models.specs import load_model

    torch.manual_seed(0)
    weights = tmp_path / "w.pth"
    torch.save(load_model(read_specs()["mobilenet_v2"], weights="random").module.state_dict(), weights)
    assert main(["explain", chelsea_file, "--weights", str(weights), "--out", str(tmp_path / "w.npz")]) == 0
    assert main(["explain", chelsea_file, "--model", "efficientnet_lite0", "--weights", str(weights),
                 "--out", str(tmp_path / "x.npz")]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "/nonexistent.jpg"], "not found"),
        (["explain", "{text}"], "not an image"),
        (["explain", "{image}", "--model", "nope"], "unknown model 'nope'"),
        (["explain", "{image}", "--method", "nope"], "unknown method 'nope'"),
        (["explain", "{image}", "--layer", "features.99"], "has no layer 'features.99'"),
        (["explain", "{image}", "--target", "1000"], "out of range"),
        (["explain", "{image}", "--target", "no such animal"], "no class is called"),
        (["explain", "{image}", "--method", "cam", "--layer", "features.14"], "vanilla CAM is not defined"),
        (["explain", "{image}", "--sign", "both"], "invalid choice"),
        (["explain"], "required"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message, chelsea_file, tmp_path, capsys):
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture")
    argv = [a.format(image=chelsea_file, text=text) for a in args]
    if argv != ["explain"]:
        argv += ["--out", str(tmp_path / "o.npz")]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


def cli_process(*args: str) -> subprocess.Popen:
    """`python -m cam_core args`, started (not waited for)."""
    return subprocess.Popen([sys.executable, "-m", "cam_core", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen, timeout: float = 120) -> subprocess.CompletedProcess:
    """The process's exit code and output once it ends (killed after timeout seconds)."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.skipif(not (DARKNET / "dog.jpg").exists(), reason="darknet's dog.jpg is not installed")
def test_the_real_process_exit_codes(tmp_path):
    """The two processes run side by side (each spends most of its time importing torch)."""
    started = (cli_process("explain", str(DARKNET / "dog.jpg"), "--target", "717", "--out", str(tmp_path / "d.npz")),
               cli_process("explain", str(tmp_path / "none.png"), "--out", str(tmp_path / "e.npz")))
    try:
        ok, bad = (finished(process) for process in started)
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
    assert ok.returncode == 0, ok.stderr
    assert int(np.load(tmp_path / "d.npz")["target"]) == 717
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "Traceback" not in bad.stderr
