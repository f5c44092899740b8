"""The "Your model" panel through AppTest: the picker opens it, a user's state_dict becomes the session's model on
every page, bad files and label mismatches are messages, two sessions never share a model, and the server's bound
on users' models refuses a load beyond it and gets the bytes back when a model goes."""

from __future__ import annotations

import gc

import pytest
import torch
import torchvision
from safetensors.torch import save
from streamlit.testing.v1 import AppTest

from cam_core.sharing.model_budget import OWN_MODELS
from pages.ui.frame import YOUR_MODEL_CHOICE
from pages.ui.own_model import LABELS_FILE, parse_triple, split_architecture
from tests.conftest import APP_TIMEOUT, ROOT, texts

CLASSES = ["melanoma", "nevus", "keratosis", "dermatofibroma", "vascular lesion"]


def resnet18_weights(seed: int) -> bytes:
    """A random 5-class torchvision resnet18 state_dict, as safetensors bytes."""
    torch.manual_seed(seed)
    return save(torchvision.models.resnet18(num_classes=len(CLASSES)).state_dict())


@pytest.fixture(scope="module")
def weights() -> bytes:
    return resnet18_weights(0)


@pytest.fixture(scope="module")
def other_weights() -> bytes:
    return resnet18_weights(1)


def panel(**params: str) -> AppTest:
    """A fresh session on the Your model page (Compare's methods: Grad-CAM only, to keep its grid short)."""
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APP_TIMEOUT)
    app.query_params.update({"methods": "gradcam", **params})
    app.switch_page("pages/your_model.py")
    app.run()
    assert not app.exception, app.exception
    return app


def load(app: AppTest, weights: bytes, labels: bytes | None = None, name: str = "skin.safetensors") -> AppTest:
    """Upload weights (and a labels file), press Load."""
    app.file_uploader(key="own_weights_file").upload(name, weights, "application/octet-stream")
    app.run()
    if labels is not None:
        app.radio(key="own_labels_kind").set_value(LABELS_FILE)
        app.run()
        app.file_uploader(key="own_labels_file").upload("classes.txt", labels, "text/plain")
        app.run()
    next(button for button in app.button if button.label == "Load").click()
    app.run()
    assert not app.exception, app.exception
    return app


def model_options(app: AppTest) -> list[str]:
    return list(app.selectbox(key="model_choice").options)


@pytest.fixture(scope="module")
def loaded(weights) -> AppTest:
    """A session that loaded the 5-class resnet18 with its class names."""
    return load(panel(), weights, "\n".join(CLASSES).encode())


def test_the_model_pickers_entry_opens_the_panel():
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APP_TIMEOUT)
    app.run()
    app.selectbox(key="model_choice").set_value(YOUR_MODEL_CHOICE)
    app.run()
    assert not app.exception, app.exception
    assert app.title[0].value == "Your model"
    assert app.session_state["model_name"] == "mobilenet_v2"  # nothing changes until a model is loaded
    assert app.selectbox(key="own_architecture").value == "torchvision:resnet18"
    assert app.number_input(key="own_input_size").value == 224
    assert app.text_input(key="own_mean").value == "0.485, 0.456, 0.406"


def test_a_loaded_state_dict_is_the_sessions_model_with_its_class_names(loaded):
    assert not loaded.error, [e.value for e in loaded.error]
    name = loaded.session_state["model_name"]
    assert name.startswith("own-resnet18-")
    own = loaded.session_state["own_model"]
    assert own.explainer.labels == CLASSES
    assert own.spec.target_layer == "layer4"
    assert "resnet18 · your weights (5 classes)" in model_options(loaded)
    assert list(loaded.selectbox(key="target_choice").options)[0].startswith("melanoma (0)")
    assert len(loaded.selectbox(key="target_choice").options) == 5
    assert "layer4" in texts(loaded)
    assert any(button.proto.label.startswith("Save it for next time") for button in loaded.get("download_button"))


def test_every_page_explains_it_and_a_link_carries_neither_model_nor_class(loaded):
    loaded.switch_page("pages/compare.py")
    loaded.run()
    assert not loaded.exception and not loaded.error, (loaded.exception, [e.value for e in loaded.error])
    captions = [image.proto.imgs[0].caption for image in loaded.get("image")]
    assert any(caption.startswith("Grad-CAM") for caption in captions), captions
    assert len(loaded.selectbox(key="target_choice").options) == 5  # the grid explains one of the file's classes
    link = next(code.value for code in loaded.sidebar.code)
    assert "model=" not in link and "class=" not in link and "methods=gradcam" in link
    assert any("This model is your own: a link cannot carry it" in c.value for c in loaded.sidebar.caption)


def test_a_file_that_is_not_a_state_dict_is_a_message_and_no_model():
    app = load(panel(), b"these bytes are no tensors", name="notes.pt")
    assert app.error, "no message"
    assert "own_model" not in app.session_state
    assert app.session_state["model_name"] == "mobilenet_v2"


def test_a_labels_file_of_the_wrong_length_is_a_message_naming_both_counts(weights):
    app = load(panel(), weights, b"cat\ndog\nbird\n")
    message = " ".join(e.value for e in app.error)
    assert "3" in message and "5" in message, message
    assert "own_model" not in app.session_state


def test_two_sessions_that_upload_different_weights_never_see_each_others_model(loaded, other_weights):
    other = load(panel(), other_weights)
    mine, theirs = loaded.session_state["own_model"], other.session_state["own_model"]
    assert mine.spec.name != theirs.spec.name and mine.explainer is not theirs.explainer
    assert theirs.spec.name not in model_options(loaded) and mine.spec.name not in model_options(other)
    assert not torch.equal(mine.explainer.model.module.fc.weight, theirs.explainer.model.module.fc.weight)
    assert other.session_state["own_model"].explainer.labels == [f"class {i}" for i in range(5)]


def test_forgetting_or_ending_the_session_gives_the_bytes_back(weights):
    gc.collect()  # the models of earlier tests' ended sessions go first
    before = OWN_MODELS.used
    app = load(panel(), weights)
    held = OWN_MODELS.used - before
    assert held > 3 * 40 * (1 << 20), held  # three working copies of 45 MB and the cache's bound
    load(app, weights)  # a second load replaces the first
    assert OWN_MODELS.used - before == held
    next(button for button in app.button if button.label == "Forget my model").click()
    app.run()
    assert OWN_MODELS.used == before and app.session_state["model_name"] == "mobilenet_v2"
    again = load(panel(), weights)
    assert OWN_MODELS.used - before == held
    del again
    gc.collect()
    assert OWN_MODELS.used == before


def test_a_load_beyond_the_servers_bound_is_refused(weights, monkeypatch):
    monkeypatch.setenv("CAM_OWN_MODELS_BYTES", str(OWN_MODELS.used + (100 << 20)))
    app = load(panel(), weights)
    assert any("needs about" in e.value and "CAM_OWN_MODELS_BYTES" in e.value for e in app.error)
    assert "own_model" not in app.session_state


def test_a_link_naming_someones_own_model_opens_the_default_model():
    app = panel(model="own-resnet18-0123456789ab", **{"class": "3"})
    assert any("someone's own model" in w.value for w in app.warning)
    assert app.session_state["model_name"] == "mobilenet_v2" and app.session_state["target"] == 3


def test_the_panels_text_inputs_are_read_or_refused_with_a_reason():
    assert parse_triple("0.5, 0.25 0.125", "mean") == (0.5, 0.25, 0.125)
    with pytest.raises(Exception, match="three numbers"):
        parse_triple("0.5, 0.5", "mean")
    with pytest.raises(Exception, match="above 0"):
        parse_triple("0.5, 0, 0.5", "std")
    assert split_architecture("timm:convnext_tiny") == ("timm", "convnext_tiny")


def test_the_architecture_list_holds_both_libraries():
    options = list(panel().selectbox(key="own_architecture").options)
    assert "resnet18 · torchvision" in options and "convnext_tiny · timm" in options
    assert len(options) > 1000
