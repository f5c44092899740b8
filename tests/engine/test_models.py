"""models.yaml: every entry's layer and head split, offline failures, and users' own weights."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from cam_core import CamError, Explainer, ModelUnavailableError, embedded_model_names, read_specs
from cam_core.inputs.images import to_input
from cam_core.models.specs import load_model

SPECS = read_specs()
ONLINE = [name for name, spec in SPECS.items() if not spec.embedded]
LINEAR_HEADS = {"mobilenet_v2", "efficientnet_lite0", "resnet18", "resnet50", "googlenet"}


def test_the_table_has_the_promised_entries():
    assert embedded_model_names() == ["mobilenet_v2", "efficientnet_lite0"]
    wanted = {"resnet18", "resnet50", "vgg16", "alexnet", "squeezenet1_1", "googlenet", "densenet121", "convnext_tiny"}
    assert wanted <= set(SPECS)
    for spec in SPECS.values():
        assert spec.target_layer in spec.layers


@pytest.mark.parametrize("name", [name for name, spec in SPECS.items() if spec.head])
def test_every_entry_splits_into_features_and_a_head_that_reproduces_the_logits(name, chelsea):
    """Built with random weights (offline): the target layer exists, and head(activation) equals the logits.
    (Transformers, which give no head, are checked in test_transformers.py.)"""
    torch.manual_seed(0)
    explainer = Explainer(name, weights="random")
    analysis = explainer.analyze(chelsea)
    activation = analysis.activations()
    with torch.no_grad():
        logits = explainer.model.head(activation[None])[0]
    np.testing.assert_allclose(logits.numpy(), analysis.logits.numpy(), rtol=1e-4, atol=1e-4)
    assert analysis.cam("gradcam").raw.shape == tuple(activation.shape[1:])
    has_linear = explainer.model.head.linear_classifier() is not None
    assert has_linear == (name in LINEAR_HEADS)
    if not has_linear:
        with pytest.raises(CamError, match="vanilla CAM is not defined"):
            analysis.cam("cam")
    for layer in explainer.model.layer_choices():
        explainer.model.layer(layer)


@pytest.mark.parametrize("name", ONLINE)
def test_online_models_fail_offline_with_a_message_naming_the_embedded_ones(name, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as caught:
        Explainer(name)
    message = str(caught.value)
    assert name in message and "mobilenet_v2" in message and "efficientnet_lite0" in message
    assert "\n" not in message


@pytest.fixture(scope="module")
def random_mobilenet():
    torch.manual_seed(1)
    return load_model(SPECS["mobilenet_v2"], weights="random")


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_own_weights_load_from_safetensors_or_state_dict(random_mobilenet, tmp_path, suffix, chelsea):
    path = tmp_path / f"mine{suffix}"
    state = {k: v.contiguous() for k, v in random_mobilenet.module.state_dict().items()}
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save(state, path)
    explainer = Explainer("mobilenet_v2", weights=path)
    assert explainer.model.weights_source == str(path)
    expected = random_mobilenet.module(to_input(chelsea, SPECS["mobilenet_v2"].preprocessing))[0]
    np.testing.assert_allclose(explainer.analyze(chelsea).logits.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_weights_for_another_architecture_are_reported_clearly(tmp_path):
    torch.manual_seed(2)
    other = load_model(SPECS["efficientnet_lite0"], weights="random").module.state_dict()
    path = tmp_path / "lite0.pth"
    torch.save(other, path)
    with pytest.raises(CamError, match=r"does not fit the architecture: \d+ missing .*\d+ unexpected"):
        Explainer("mobilenet_v2", weights=path)
    truncated = dict(load_model(SPECS["mobilenet_v2"], weights="random").module.state_dict())
    truncated["classifier.1.weight"] = torch.zeros(10, 1280)
    torch.save(truncated, tmp_path / "ten_classes.pth")
    with pytest.raises(CamError, match=r"1 of another shape \(e\.g\. classifier\.1\.weight \(10, 1280\)"):
        Explainer("mobilenet_v2", weights=tmp_path / "ten_classes.pth")
    with pytest.raises(CamError, match="not found"):
        Explainer("mobilenet_v2", weights=tmp_path / "missing.pth")


class _Payload:
    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"features.0.0.weight": _Payload(marker)}, handle)
    with pytest.raises(CamError, match="could run code"):
        Explainer("mobilenet_v2", weights=path)
    assert not marker.exists()


def test_a_model_from_your_own_python_file(tmp_path, chelsea):
    torch.manual_seed(3)
    here = Path(__file__).resolve().parents[1] / "data"
    table = tmp_path / "models.yaml"
    table.write_text(
        f"""models:
  tiny:
    source: file
    architecture: build_tiny_net
    kwargs: {{file: {here / 'tiny_net.py'}}}
    weights: {{path: tiny.safetensors}}
    preprocessing: {{input_size: 64, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]}}
    labels: imagenet1k
    target_layer: "3"
    head: ["4", "5", "6"]
    layers: ["1", "3"]
"""
    )
    import importlib.util

    spec = importlib.util.spec_from_file_location("tiny_net", here / "tiny_net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    save_file(module.build_tiny_net().state_dict(), str(tmp_path / "tiny.safetensors"))
    explainer = Explainer("tiny", models_file=table)
    analysis = explainer.analyze(chelsea)
    assert analysis.cam("cam").raw.shape == (32, 32)
    np.testing.assert_allclose(analysis.cam("gradcam").raw * 32 * 32, analysis.cam("cam").raw, rtol=1e-3, atol=1e-5)
