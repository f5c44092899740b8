"""A manifest reproduces its map exactly (the same bits of saliency and raw map), through reproduce and through
`python -m cam_core explain --manifest`, for a one-layer, a multi-layer, a parametrised and a random method and for a
user's own model with --weights; another image or other weights are refused, naming both sha256."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from cam_core import CamError, Explainer
from cam_core.models.specs import spec_from_entry
from cam_core.provenance.manifest import manifest, reproduce
from tests.conftest import CHEAP_LAYER, CHEAP_PYRAMID, ROOT, SAMPLED_CHEAPLY, run_cli

CASES = {
    "gradcam": {"target": 285},
    "layercam": {"target": 281, "layers": list(CHEAP_PYRAMID), "gamma": 1.5},
    "scorecam": {"target": 285, "layer": CHEAP_LAYER, "top_channels": 0.25, "baseline": "blur"},
    "rise": {"target": 282, "layer": CHEAP_LAYER, "seed": 11, **SAMPLED_CHEAPLY["rise"]},
}


@pytest.fixture(scope="module")
def made(mobilenet, chelsea):
    """Each case's map and its manifest (through JSON, as a file gives it back)."""
    analysis = mobilenet.analyze(chelsea)
    found = {}
    for method, settings in CASES.items():
        result = analysis.cam(method, **settings)
        found[method] = result, json.loads(json.dumps(manifest(mobilenet, "map", [chelsea], [result])))
    return found


def same_map(first, second) -> None:
    assert np.array_equal(first.saliency, second.saliency) and np.array_equal(first.raw, second.raw)
    assert (first.method, first.target, first.layers, first.sign) == (second.method, second.target, second.layers,
                                                                        second.sign)


@pytest.mark.parametrize("method", list(CASES))
def test_reproduce_gives_the_same_bits(made, chelsea, method):
    result, record = made[method]
    same_map(reproduce(record, chelsea), result)


@pytest.mark.parametrize("method", list(CASES))
def test_the_cli_reproduces_from_the_manifest(made, chelsea, tmp_path, method):
    result, record = made[method]
    picture = tmp_path / "chelsea.png"
    chelsea.save(picture)
    (tmp_path / "manifest.json").write_text(json.dumps(record))
    out = tmp_path / "again.npz"
    assert run_cli(["explain", str(picture), "--manifest", str(tmp_path / "manifest.json"), "--out", str(out)]) == 0
    saved = np.load(out)
    assert np.array_equal(saved["saliency"], result.saliency) and np.array_equal(saved["raw"], result.raw)
    again = json.loads((tmp_path / "again.manifest.json").read_text())
    assert again["maps"][0] | {"probability": 0} == record["maps"][0] | {"probability": 0}
    assert again["kind"] == "cli-explain" and again["images"][0]["sha256"] == record["images"][0]["sha256"]


def test_another_image_is_refused_naming_both_sha256(made, coffee):
    _, record = made["gradcam"]
    with pytest.raises(CamError, match="the image is not the manifest's") as error:
        reproduce(record, coffee)
    assert record["images"][0]["sha256"] in str(error.value) and "600×400" in str(error.value)


def test_the_cli_refuses_map_options_next_to_a_manifest(made, tmp_path, capsys):
    (tmp_path / "m.json").write_text(json.dumps(made["gradcam"][1]))
    code = run_cli(["explain", "example:chelsea", "--manifest", str(tmp_path / "m.json"), "--method", "eigencam",
                    "--out", str(tmp_path / "x.npz")])
    assert code == 2 and "drop --method" in capsys.readouterr().err


TINY_ENTRY = {
    "source": "file", "architecture": "build_tiny_net", "kwargs": {"file": "tiny_net.py"},
    "preprocessing": {"input_size": 64, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
    "labels": "imagenet1k", "target_layer": "3", "head": ["4", "5", "6"], "layers": ["1", "3"],
}


@pytest.fixture(scope="module")
def own_model(tmp_path_factory):
    """A user's tiny CNN (tests/data/tiny_net.py) with weights of their own in a safetensors file, and another
    file of other weights."""
    folder = tmp_path_factory.mktemp("own")
    spec = spec_from_entry("tiny", TINY_ENTRY, ROOT / "tests" / "data")
    files = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        path = folder / f"tiny{seed}.safetensors"
        save_file(Explainer.from_spec(spec, weights="random").model.module.state_dict(), str(path))
        files.append(path)
    return spec, files


def test_a_users_own_model_reproduces_with_its_weights(own_model, chelsea, tmp_path):
    spec, (weights, other) = own_model
    explainer = Explainer.from_spec(spec, weights=weights)
    result = explainer.analyze(chelsea).cam("gradcampp", target=3)
    record = json.loads(json.dumps(manifest(explainer, "map", [chelsea], [result])))
    assert record["model"]["sha256_of"] == "file" and record["model"]["weights_given"] is True
    same_map(reproduce(record, chelsea, weights=weights), result)
    picture, saved = tmp_path / "cat.png", tmp_path / "m.json"
    chelsea.save(picture)
    saved.write_text(json.dumps(record))
    assert run_cli(["explain", str(picture), "--manifest", str(saved), "--weights", str(weights),
                    "--out", str(tmp_path / "out.npz")]) == 0
    assert np.array_equal(np.load(tmp_path / "out.npz")["raw"], result.raw)
    with pytest.raises(CamError, match="the weights are not the manifest's") as error:
        reproduce(record, chelsea, weights=other)
    assert record["model"]["weights_sha256"] in str(error.value) and other.name in str(error.value)


def test_weights_from_outside_the_entry_that_are_gone_are_asked_for(own_model, chelsea, tmp_path):
    spec, (weights, _) = own_model
    moved = tmp_path / "moved.safetensors"
    moved.write_bytes(weights.read_bytes())
    explainer = Explainer.from_spec(spec, weights=moved)
    record = manifest(explainer, "map", [chelsea], [explainer.analyze(chelsea).cam("gradcam")])
    moved.unlink()
    with pytest.raises(CamError, match="give that file"):
        reproduce(record, chelsea)
    same_map(reproduce(record, chelsea, weights=weights), explainer.analyze(chelsea).cam("gradcam"))


def test_a_changed_image_file_is_refused(made, chelsea, tmp_path):
    _, record = made["gradcam"]
    pixels = np.asarray(chelsea).copy()
    pixels[0, 0] ^= 1
    with pytest.raises(CamError, match="the image is not the manifest's"):
        reproduce(record, Image.fromarray(pixels))
