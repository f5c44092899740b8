"""The manifest records what a map was made from: the model with its weights' sha256 (of the file, or of the
state_dict where there is none), the image's pixels' sha256 and size, each map's method, every parameter value, its
layers, class and seed, and the versions; a zip holds the files it describes with it."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from cam_core import CamError, Explainer
from cam_core.models.specs import spec_entry
from cam_core.provenance.digests import tensors_sha256, weights_digest
from cam_core.provenance.manifest import manifest, manifest_path, read_manifest, write_manifest, zip_with_manifest
from cam_core.registry import get_method
from tests.conftest import CHEAP_LAYER, SAMPLED_CHEAPLY


@pytest.fixture(scope="module")
def maps(mobilenet, chelsea):
    analysis = mobilenet.analyze(chelsea)
    return [analysis.cam("gradcam", target=285), analysis.cam("smoothgradcampp", target=281, samples=4),
            analysis.cam("rise", target=285, layer=CHEAP_LAYER, seed=7, **SAMPLED_CHEAPLY["rise"])]


@pytest.fixture(scope="module")
def record(mobilenet, chelsea, maps):
    return json.loads(json.dumps(manifest(mobilenet, "grid", [chelsea], maps, names=["chelsea.png"], columns=4)))


def test_the_model_and_its_weights_file_sha256(record, mobilenet):
    model = record["model"]
    embedded = mobilenet.spec.weights["embedded"]
    file = Path(importlib.util.find_spec(embedded["package"]).origin).parent / embedded["file"]
    assert model["weights_sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert model["sha256_of"] == "file" and model["weights_file"] == file.name
    assert model["tensors_sha256"] == tensors_sha256(mobilenet.model.module) != model["weights_sha256"]
    assert model["name"] == "mobilenet_v2" and model["source"] == "torchvision"
    assert model["architecture"] == "mobilenet_v2" and model["weights_source"].startswith("embedded (")
    assert model["entry"] == spec_entry(mobilenet.spec) and model["weights_given"] is False
    assert model["preprocessing"] == {"input_size": 224, "mean": [0.485, 0.456, 0.406],
                                      "std": [0.229, 0.224, 0.225], "interpolation": "bilinear"}
    assert model["labels"] == 1000


def test_the_image_is_its_rgb_pixels_sha256_and_size(record, chelsea):
    pixels = np.asarray(chelsea.convert("RGB"), dtype=np.uint8)
    assert record["images"] == [{"sha256": hashlib.sha256(pixels.tobytes()).hexdigest(), "width": chelsea.width,
                                 "height": chelsea.height, "name": "chelsea.png"}]


def test_each_map_with_every_parameter_its_layers_class_and_seed(record, maps):
    grad, smooth, rise = record["maps"]
    assert grad == {"method": "gradcam", "name": "Grad-CAM", "params": {}, "layer": "features.18",
                    "layers": ["features.18"], "target": 285, "label": "Egyptian cat",
                    "probability": maps[0].probability, "sign": "positive", "seed": None, "note": "", "image": 0}
    assert smooth["params"] == {"samples": 4, "sigma": 0.15, "seed": 0, "normalise_alpha": True}, "defaults filled"
    assert smooth["seed"] == 0 and smooth["target"] == 281 and smooth["label"] == "tabby"
    defaults = {p.name: p.default for p in get_method("rise").card.params}
    assert rise["params"] == defaults | {"seed": 7, **SAMPLED_CHEAPLY["rise"]}
    assert rise["seed"] == 7 and rise["layer"] == CHEAP_LAYER


def test_versions_precision_threads_kind_date_and_extra(record):
    assert record["kind"] == "grid" and record["format"] == 1 and record["extra"] == {"columns": 4}
    assert set(record["versions"]) == {"cam_core", "torch", "torchvision", "timm", "numpy", "pillow", "python"}
    assert record["versions"]["torch"] == torch.__version__.split("+")[0]
    assert record["versions"]["torchvision"] == torchvision.__version__.split("+")[0]
    assert record["precision"] == "float32" and record["torch_threads"] == torch.get_num_threads()
    created = datetime.fromisoformat(record["created"])
    assert created.tzinfo == timezone.utc and datetime.now(timezone.utc) - created < timedelta(minutes=10)


def test_maps_of_several_images_say_which_image(mobilenet, chelsea, coffee, maps):
    both = manifest(mobilenet, "figure", [chelsea, coffee], maps[:2], image_of=[0, 1])
    assert [m["image"] for m in both["maps"]] == [0, 1] and len(both["images"]) == 2
    with pytest.raises(CamError, match="say which image each map is of"):
        manifest(mobilenet, "figure", [chelsea, coffee], maps)


def test_random_weights_are_digested_as_a_state_dict_once_per_network():
    explainer = Explainer("mobilenet_v2", weights="random")
    first = weights_digest(explainer)
    assert first.of == "state_dict" and first.file is None and first.sha256 == first.tensors_sha256
    assert weights_digest(explainer) is first, "kept for the network"
    changed = explainer.module_copy()
    with torch.no_grad():
        next(changed.parameters()).view(-1)[0] += 1
    assert tensors_sha256(changed) != first.sha256
    assert manifest(explainer, "map", [], [])["model"]["weights_given"] is True


def test_a_zip_holds_the_files_and_a_manifest_listing_their_sha256(record):
    files = {"gradcam.png": b"picture bytes", "gradcam.npy": b"array bytes"}
    with zipfile.ZipFile(io.BytesIO(zip_with_manifest(files, record))) as archive:
        assert sorted(archive.namelist()) == ["gradcam.npy", "gradcam.png", "manifest.json"]
        assert archive.read("gradcam.png") == b"picture bytes"
        inside = json.loads(archive.read("manifest.json"))
    assert inside["files"] == {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    assert inside["maps"] == record["maps"] and inside["model"] == record["model"]
    with pytest.raises(CamError, match="may not be called manifest.json"):
        zip_with_manifest({"manifest.json": b"{}"}, record)


def test_a_cli_output_gets_its_manifest_next_to_it_named_after_it(tmp_path, record):
    out = tmp_path / "cat.npz"
    out.write_bytes(b"npz")
    (tmp_path / "cat.png").write_bytes(b"png")
    written = write_manifest(out, record, [tmp_path / "cat.png"])
    assert written == manifest_path(out) == tmp_path / "cat.manifest.json"
    back = read_manifest(written)
    assert back["files"] == {name: hashlib.sha256(data).hexdigest() for name, data in (("cat.npz", b"npz"),
                                                                                        ("cat.png", b"png"))}
    archive = tmp_path / "cat.zip"
    archive.write_bytes(zip_with_manifest({"cat.png": b"png"}, record))
    assert read_manifest(archive)["maps"] == record["maps"]
    (tmp_path / "notes.json").write_text('{"a": 1}')
    with pytest.raises(CamError, match="not a CAM Explorer manifest"):
        read_manifest(tmp_path / "notes.json")
