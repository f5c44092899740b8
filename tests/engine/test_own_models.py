"""A user's own model: a torchvision resnet18 and a timm convnext_tiny with a 5-class head and random weights, saved
as safetensors and as torch.save files, built with build_own_model; labels, the Compare grid, clear mismatch messages,
private names and logits per weights file, and the models.yaml fragment."""

from __future__ import annotations

import io
import pickle
import re

import numpy as np
import pytest
import timm
import torch
import torchvision
from PIL import Image
from safetensors.torch import save
from skimage import data

from cam_core import CamError, Explainer, ModelUnavailableError
from cam_core.engine.own_models import (
    architectures,
    build_own_model,
    default_preprocessing,
    parse_labels,
    spec_fragment,
)
from cam_core.inputs.images import to_input
from cam_core.models.specs import Preprocessing
from cam_core.registry import default_grid

NAMES = ["benign", "melanoma", "nevus", "keratosis", "other"]
SMALL = Preprocessing(96, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "bilinear")  # keeps the grid short
BUILDERS = {
    ("torchvision", "resnet18"): lambda: torchvision.models.resnet18(num_classes=5),
    ("timm", "convnext_tiny"): lambda: timm.create_model("convnext_tiny", num_classes=5),
}


def _state(seed: int, key: tuple[str, str]) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {name: tensor.contiguous() for name, tensor in BUILDERS[key]().state_dict().items()}


def _pt(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module", params=list(BUILDERS), ids=lambda key: key[1])
def files(request, tmp_path_factory) -> dict:
    """The architecture, its random 5-class state, and that state as a safetensors file and a .pt file."""
    state = _state(0, request.param)
    folder = tmp_path_factory.mktemp(request.param[1])
    (folder / "mine.safetensors").write_bytes(save(state))
    (folder / "mine.pt").write_bytes(_pt(state))
    return {"key": request.param, "state": state, "folder": folder}


@pytest.fixture(scope="module")
def own(files):
    source, name = files["key"]
    data = (files["folder"] / "mine.safetensors").read_bytes()
    return build_own_model(source, name, data, "mine.safetensors", "\n".join(NAMES), preprocessing=SMALL)


def test_the_pickers_list_both_libraries_and_the_known_preprocessing():
    ids = architectures()
    assert {"torchvision:resnet18", "timm:convnext_tiny", "torchvision:vit_b_16"} <= set(ids)
    assert default_preprocessing("timm", "convnext_tiny").interpolation == "bicubic"
    resnet = default_preprocessing("torchvision", "resnet18")
    assert (resnet.input_size, resnet.mean, resnet.interpolation) == (224, (0.485, 0.456, 0.406), "bilinear")
    with pytest.raises(CamError, match="no classification model 'resnet19'"):
        default_preprocessing("torchvision", "resnet19")


@pytest.mark.parametrize("labels, expected", [
    ("cat\ndog\n\nbird\n", ["cat", "dog", "bird"]),
    (b'["cat", "dog", "bird"]', ["cat", "dog", "bird"]),
    ('{"2": "bird", "0": "cat", "1": "dog"}', ["cat", "dog", "bird"]),
    (None, ["class 0", "class 1", "class 2"]),
])
def test_labels_come_from_a_text_file_json_or_numbers(labels, expected):
    assert parse_labels(labels, 3) == expected


@pytest.mark.parametrize("labels, message", [
    ("a\nb\n", "the head has 3 outputs, the labels file 2 names"),
    ('{"0": "a", "2": "c", "3": "d"}', "every class number from 0 to 2"),
    (b"\xff\xfe\x00", "not text"),
    ("[1, 2", "looks like JSON but is not"),
])
def test_labels_that_do_not_fit_are_a_clear_message(labels, message):
    with pytest.raises(CamError, match=message):
        parse_labels(labels, 3)


def test_the_model_has_the_heads_classes_its_labels_and_the_files_logits(own, files):
    assert own.explainer.labels == NAMES and own.spec.kwargs["num_classes"] == 5
    assert re.fullmatch(f"own-{files['key'][1]}-[0-9a-f]{{12}}", own.spec.name), own.spec.name
    assert own.nbytes == sum(t.numel() * t.element_size() for t in files["state"].values())
    assert own.spec.head, own.notes  # both split into target layer → head
    module = BUILDERS[files["key"]]().eval()
    module.load_state_dict(files["state"])
    image = _image()
    with torch.no_grad():
        expected = module(to_input(image, SMALL))[0]
    np.testing.assert_allclose(own.explainer.analyze(image).logits.numpy(), expected.numpy(), atol=1e-5)


def test_a_name_is_shared_only_by_identical_models(own, files):
    """Results kept by model name across sessions: other preprocessing or labels on the same weights, and every random
    load, get a name of their own; the same file with the same settings gets the same name."""
    source, name = files["key"]
    data = (files["folder"] / "mine.safetensors").read_bytes()
    again = build_own_model(source, name, data, "mine.safetensors", "\n".join(NAMES), preprocessing=SMALL)
    other_size = build_own_model(source, name, data, "mine.safetensors", "\n".join(NAMES),
                                 preprocessing=Preprocessing(112, SMALL.mean, SMALL.std, SMALL.interpolation))
    other_labels = build_own_model(source, name, data, "mine.safetensors", None, preprocessing=SMALL)
    assert again.spec.name == own.spec.name
    assert len({own.spec.name, other_size.spec.name, other_labels.spec.name}) == 3
    randoms = [build_own_model(source, name, None, "", "\n".join(NAMES), preprocessing=SMALL).spec.name
               for _ in range(2)]
    assert randoms[0] != randoms[1] and all(n.startswith(f"own-{name}-random-") for n in randoms)


def test_every_default_compare_method_gives_a_map(own):
    analysis = own.explainer.analyze(_image())
    cards = [card for card in default_grid() if not own.explainer.unmet(card)]
    assert len(cards) >= 15
    for card in cards:
        if card.id == "cam" and own.explainer.model.head.linear_classifier() is None:
            with pytest.raises(CamError, match="vanilla CAM"):
                analysis.cam(card.id)
            continue
        result = analysis.cam(card.id)
        assert np.all(np.isfinite(result.saliency)), card.id
        picture = result.rgb if result.rgb is not None else result.raw  # random weights: a ReLU may blank the map
        assert np.all(np.isfinite(picture)) and np.ptp(picture) > 0, card.id


def test_pt_file_json_labels_and_no_labels_give_the_same_model(own, files):
    source, name = files["key"]
    data = (files["folder"] / "mine.pt").read_bytes()
    from_pt = build_own_model(source, name, data, "mine.pt", '{"0": "benign", "1": "melanoma", "2": "nevus", '
                              '"3": "keratosis", "4": "other"}', preprocessing=SMALL)
    assert from_pt.explainer.labels == NAMES
    numbered = build_own_model(source, name, data, "mine.pt", None, preprocessing=SMALL)
    assert numbered.explainer.labels == [f"class {i}" for i in range(5)]
    image = _image()
    for other in (from_pt, numbered):
        np.testing.assert_array_equal(other.explainer.analyze(image).logits, own.explainer.analyze(image).logits)


@pytest.mark.parametrize("fmt", ["safetensors", "pt"])
def test_weights_saved_from_data_parallel_load_without_their_module_prefix(own, files, fmt):
    source, name = files["key"]
    wrapped = {f"module.{key}": tensor for key, tensor in files["state"].items()}
    if fmt == "pt":
        buffer = io.BytesIO()
        torch.save(wrapped, buffer)
        data = buffer.getvalue()
    else:
        data = save(wrapped)
    from_wrapped = build_own_model(source, name, data, f"wrapped.{fmt}", "\n".join(NAMES), preprocessing=SMALL)
    image = _image()
    np.testing.assert_array_equal(from_wrapped.explainer.analyze(image).logits, own.explainer.analyze(image).logits)


def test_two_weight_files_for_one_architecture_are_two_models(own, files):
    source, name = files["key"]
    other = build_own_model(source, name, save(_state(1, files["key"])), "theirs.safetensors", None,
                            preprocessing=SMALL)
    assert other.spec.name != own.spec.name and other.weights_sha256 != own.weights_sha256
    image = _image()
    assert not torch.allclose(other.explainer.analyze(image).logits, own.explainer.analyze(image).logits)


def test_the_fragment_reads_back_with_the_same_logits(own, files, tmp_path):
    fragment = tmp_path / "mine.yaml"
    fragment.write_text(spec_fragment(own.spec, str(files["folder"] / "mine.safetensors")))
    again = Explainer(own.spec.name, models_file=fragment)
    assert again.spec.target_layer == own.spec.target_layer and again.labels == NAMES
    image = _image()
    np.testing.assert_array_equal(again.analyze(image).logits, own.explainer.analyze(image).logits)


@pytest.mark.parametrize("key", list(BUILDERS), ids=lambda key: key[1])
def test_missing_and_unexpected_tensors_are_listed_with_their_shapes(key):
    state = _state(0, key)
    classifier = "fc" if key[1] == "resnet18" else "head.fc"
    shape = tuple(state[f"{classifier}.weight"].shape)
    state.pop(f"{classifier}.bias")
    state["extra.weight"] = torch.zeros(2, 3)
    with pytest.raises(CamError) as caught:
        build_own_model(*key, save(state), "broken.safetensors", None, preprocessing=SMALL)
    message = str(caught.value)
    assert f"1 missing tensors: {classifier}.bias ({shape[0]},)" in message, message
    assert "1 unexpected tensors: extra.weight (2, 3)" in message and "broken.safetensors" in message


def test_a_head_that_does_not_match_the_labels_says_both_counts():
    data = save(_state(0, ("torchvision", "resnet18")))
    with pytest.raises(CamError, match="the head has 5 outputs, the labels file 12 names"):
        build_own_model("torchvision", "resnet18", data, "mine.safetensors", "\n".join(f"l{i}" for i in range(12)),
                        preprocessing=SMALL)


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize("data, message", [
    (pickle.dumps(torchvision.models.resnet18(num_classes=5)), "a pickle that could run code"),
    (pickle.dumps({"fc.weight": _Payload()}), "a pickle that could run code"),
    (_pt(torch.zeros(5, 512)), r"one tensor \(5, 512\), not a state_dict"),
    (_pt([1, 2, 3]), "does not hold a state_dict"),
    (b"GIF89a not weights at all", "not a weights file torch can read"),
], ids=["pickled-module", "pickled-code", "plain-tensor", "a-list", "random-bytes"])
def test_a_file_that_is_not_a_state_dict_is_refused_clearly(data, message, capsys):
    with pytest.raises(CamError, match=message):
        build_own_model("torchvision", "resnet18", data, "upload.pt", None, preprocessing=SMALL)
    assert "must never run" not in capsys.readouterr().out


def test_pretrained_weights_offline_say_what_cannot_be_fetched(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match=r"torchvision resnet18, DEFAULT\) downloaded"):
        build_own_model("torchvision", "resnet18", None, "", None, pretrained=True)


def _image() -> Image.Image:
    return Image.fromarray(data.chelsea()).resize((120, 80))
