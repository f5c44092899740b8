"""The frame every page shares: probabilities with the digits they need, links that restore a view, the
low-probability warning and clear messages for refused files and models that need internet."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from cam_core.inputs.images import READABLE
from cam_core.inputs.masking import baseline_input, masked_inputs
from cam_core.render.pictures import masked_input
from pages.ui.widgets import format_probability
from tests.conftest import APP_TIMEOUT, ROOT


@pytest.mark.parametrize(("p", "shown"), [
    (0.973, "97.3%"), (1.0, "100.0%"), (0.0123, "1.2%"), (0.00999, "1.0%"), (0.0099, "0.99%"),
    (0.001234, "0.12%"), (0.000001, "0.0001%"), (0.0000012345, "0.00012%"),
    (9.44e-7, "0.000094%"), (3.2e-12, "3.2e-10%"), (0.0, "0%"),
])
def test_probabilities_keep_two_significant_digits_below_one_percent(p, shown):
    assert format_probability(p) == shown


def open_link(page: str = "app.py", **params: str) -> AppTest:
    """A fresh session opening page with the link's query parameters, run once without exception."""
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APP_TIMEOUT)
    app.query_params.update(params)
    if page != "app.py":
        app.switch_page(page)
    app.run()
    assert not app.exception, app.exception
    return app


def url_params(app: AppTest) -> dict[str, str]:
    """The query parameters the page put in the browser's URL."""
    return {key: values[-1] if isinstance(values, list) else values for key, values in app.query_params.items()}


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def shared_link(app: AppTest) -> str:
    return next(code.value for code in app.sidebar.code)


def test_a_link_restores_model_example_class_and_methods_and_warns_of_a_class_the_model_barely_sees(dog_photo):
    app = open_link("pages/compare.py", model="mobilenet_v2", example="dog", **{"class": "717"},
                    methods="gradcam,eigencam")
    assert app.title[0].value == "Compare methods"
    assert app.session_state["image_name"] == "example: dog" and app.session_state["target"] == 717
    assert app.multiselect(key="compare_methods").value == ["gradcam", "eigencam"]
    assert app.selectbox(key="target_choice").value == 717
    assert [w.value for w in app.warning] == [
        "The model gives **pickup** 0.000094%: it barely sees this class here, so its maps explain evidence the model "
        "does not act on (its top class is Eskimo dog, 27.8%)."]
    expected = {"model": "mobilenet_v2", "example": "dog", "class": "717", "methods": "gradcam,eigencam"}
    assert url_params(app) == expected
    assert shared_link(app) == "/compare?model=mobilenet_v2&example=dog&class=717&methods=gradcam,eigencam"


def test_bad_link_values_are_messages_and_fall_back_to_the_defaults():
    app = open_link(model="resnet999", example="unicorn", **{"class": "1000"}, methods="gradcam,magic")
    messages = [w.value for w in app.warning]
    assert len(messages) == 4, messages
    assert "'resnet999'" in messages[0] and "mobilenet_v2" in messages[0]
    assert "'unicorn'" in messages[1] and "chelsea" in messages[1]
    assert "'1000'" in messages[2] and "0 to 999" in messages[2]
    assert "'magic'" in messages[3] and "gradcam" in messages[3]
    assert not app.error
    assert app.session_state["model_name"] == "mobilenet_v2" and app.session_state["image_name"] == "example: chelsea"
    assert app.session_state["target"] == 285 and app.session_state["shared_methods"] == ["gradcam"]
    assert url_params(app) == {"model": "mobilenet_v2", "example": "chelsea", "class": "285", "methods": "gradcam"}
    app.run()  # the link is read once: the messages go with the next run
    assert not app.warning


def test_a_class_named_in_the_link_and_methods_that_outlive_pages_without_their_picker():
    app = open_link(**{"class": "Tabby"}, methods="layercam")
    assert app.session_state["target"] == 281 and not app.warning
    app.switch_page("pages/compare.py")
    app.run()
    assert app.multiselect(key="compare_methods").value == ["layercam"]
    app.multiselect(key="compare_methods").set_value(["layercam", "gradcam"])
    app.run()
    app.switch_page("app.py")
    app.run()
    assert url_params(app)["methods"] == "layercam,gradcam"
    app.switch_page("pages/compare.py")
    app.run()
    assert app.multiselect(key="compare_methods").value == ["layercam", "gradcam"]


def test_an_upload_is_not_in_the_link_and_the_page_says_so(coffee):
    app = open_link()
    app.file_uploader(key="upload").upload("coffee.png", encoded(coffee, "PNG"), "image/png")
    app.run()
    assert "example" not in url_params(app) and url_params(app)["class"] == "967"
    assert "?model=mobilenet_v2&class=967" in shared_link(app)
    assert any("This image is an upload: a link cannot carry it" in c.value for c in app.sidebar.caption)


def test_an_animated_gif_is_explained_by_its_first_frame_and_says_so():
    frames = [Image.new("RGB", (64, 48), colour) for colour in ((200, 30, 30), (30, 30, 200), (30, 200, 30))]
    gif = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    app = open_link()
    app.file_uploader(key="upload").upload("spinner.gif", gif, "image/gif")
    app.run()
    assert not app.error
    assert [i.value for i in app.info] == ["spinner.gif is an animation of 3 frames: the model sees one picture, so "
                                           "this explains its first frame."]
    red = np.asarray(app.session_state["image"]).reshape(-1, 3).mean(axis=0)
    assert red[0] > 150 and red[2] < 60, red


def test_a_refused_file_says_why_and_a_new_example_clears_the_message():
    app = open_link()
    app.file_uploader(key="upload").upload("slides.pdf", b"%PDF-1.4 not a picture", "application/pdf")
    app.run()
    assert len(app.error) == 1
    message = app.error[0].value
    assert message.startswith("slides.pdf was not used:") and f"it reads {READABLE}" in message
    assert app.session_state["image_name"] == "example: chelsea"
    app.selectbox(key="example").set_value("coffee")
    app.run()
    assert not app.error and app.session_state["image_name"] == "example: coffee"


def test_a_model_that_needs_internet_is_one_clear_message_and_the_model_picker_stays(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    app = open_link(model="resnet18")
    assert len(app.error) == 1, [e.value for e in app.error]
    message = app.error[0].value
    assert "'resnet18'" in message and "internet" in message and "mobilenet_v2, efficientnet_lite0" in message
    assert "urlopen" not in message and "Errno" not in message
    assert app.selectbox(key="model_choice").value == "resnet18"
    assert "target_choice" not in [box.key for box in app.selectbox]
    app.selectbox(key="model_choice").set_value("mobilenet_v2")
    app.run()
    assert not app.error and app.selectbox(key="target_choice").value == 285


def test_the_example_picker_describes_each_photo_and_why_giraffe_is_not_named(dog_photo):
    options = open_link().selectbox(key="example").options
    assert "chelsea: Chelsea the cat: Egyptian cat (285), tiger cat (282), tabby (281)" in options
    giraffe = next(option for option in options if option.startswith("giraffe:"))
    assert "no giraffe class" in giraffe and "bittern" in giraffe and "zebra is 340" in giraffe


def test_channels_masked_inputs_are_the_picture_of_what_score_cam_feeds_the_network(dashboard_explainer, chelsea):
    """The zero input of Score-CAM's default baseline is the mean colour: masked_input of the resized photo must be
    the model's masked input with its normalisation undone (to rounding)."""
    image = Image.new("RGB", (2, 1), (255, 0, 0))
    picture = np.asarray(masked_input(image, np.array([[1.0, 0.0]]), (0.5, 0.25, 0.0)))
    assert picture.tolist() == [[[255, 0, 0], [128, 64, 0]]]
    analysis = dashboard_explainer.analyze(chelsea)
    prep = dashboard_explainer.spec.preprocessing
    size = prep.input_size
    mask = np.linspace(0, 1, size * size, dtype=np.float32).reshape(size, size)
    resized = analysis.image.resize((size, size), Image.BILINEAR)
    fed = masked_inputs(analysis.input, baseline_input(analysis.input, "zero"), torch.from_numpy(mask)[None, None])
    std, mean = torch.tensor(prep.std).view(3, 1, 1), torch.tensor(prep.mean).view(3, 1, 1)
    expected = ((fed[0] * std + mean).clamp(0, 1) * 255).permute(1, 2, 0).numpy()
    shown = np.asarray(masked_input(resized, mask, prep.mean), dtype=np.float32)
    assert np.abs(shown - expected).max() <= 1.0
