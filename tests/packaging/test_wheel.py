"""The package installs as a package: a wheel built from the repository holds every module, the model table and
the console command, and installed (not editable) into a fresh virtual environment it runs from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 300


def run(command: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(out),
         str(ROOT)], ROOT)
    (found,) = out.glob("cam_explorer-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel) -> Path:
    """A fresh virtual environment that sees this machine's packages (torch, the weights) but not the repository,
    with the wheel installed in it."""
    home = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--system-site-packages", str(home)], home)
    run([str(home / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)], home)
    return home


def test_the_wheel_holds_every_module_the_model_table_and_the_command(wheel):
    tracked = run(["git", "ls-files", "cam_core"], ROOT).stdout.split()
    sources = {name for name in tracked if name.endswith(".py")}
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        packaged = {name for name in names if name.startswith("cam_core/") and name.endswith(".py")}
        table = archive.read("cam_core/models/models.yaml")
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert packaged == sources, f"missing: {sorted(sources - packaged)}, extra: {sorted(packaged - sources)}"
    assert any(name.startswith("cam_core/lessons/") for name in packaged)
    assert table == (ROOT / "cam_core" / "models" / "models.yaml").read_bytes()
    assert (ROOT / "models.yaml").resolve() == (ROOT / "cam_core" / "models" / "models.yaml").resolve(), (
        "the top-level models.yaml is the packaged one")
    assert "cam-explorer = cam_core.cli:main" in entry_points


def test_the_installed_library_and_command_run_from_any_directory(venv, tmp_path):
    python, command = str(venv / "bin" / "python"), str(venv / "bin" / "cam-explorer")
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "CAM_MODELS_FILE")}
    script = (
        "import cam_core, sys\n"
        "from cam_core import Explainer\n"
        "from cam_core.inputs.examples import load_example\n"
        "from cam_core.lessons import lesson\n"
        "analysis = Explainer('mobilenet_v2').analyze(load_example('chelsea'))\n"
        "story = lesson(analysis, 'gradcam')\n"
        "print(cam_core.__file__, analysis.top_k(1)[0][1], story.steps[-1].stage)\n"
    )
    printed = run([python, "-c", script], tmp_path, env).stdout.split()
    assert printed[0].startswith(str(venv)), f"cam_core came from {printed[0]}, not the installed wheel"
    assert printed[1:] == ["Egyptian", "cat", "overlay"]
    run([command, "explain", "example:chelsea", "--method", "gradcam", "--out", "chelsea.npz"], tmp_path, env)
    with np.load(tmp_path / "chelsea.npz") as saved:
        assert int(saved["target"]) == 285 and saved["saliency"].shape == (300, 451)
    listed = run([command, "models"], tmp_path, env).stdout
    assert listed.splitlines()[0].startswith("mobilenet_v2\toffline")


def test_cam_models_file_overrides_the_packaged_table(venv, tmp_path):
    table = tmp_path / "models.yaml"
    entry = (ROOT / "cam_core" / "models" / "models.yaml").read_text()
    table.write_text(entry.replace("mobilenet_v2:", "my_mobilenet:", 1))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"} | {"CAM_MODELS_FILE": str(table)}
    listed = run([str(venv / "bin" / "cam-explorer"), "models"], tmp_path, env).stdout
    assert listed.splitlines()[0].startswith("my_mobilenet\toffline")
