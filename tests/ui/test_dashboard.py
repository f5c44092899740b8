"""The Streamlit dashboard, page by page, through streamlit.testing.v1.AppTest (no browser)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.conftest import CHEAP_LAYER, ROOT, open_app, texts


def go(app: AppTest, page: str) -> AppTest:
    app.switch_page(f"pages/{page}.py")
    app.run()
    assert not app.exception, app.exception
    return app


def image_sources(app: AppTest) -> list[bytes]:
    """Every image element's content on the page (what the browser would fetch)."""
    return [im.proto.imgs[0].url.encode() + b"|" + str(len(im.proto.imgs)).encode() for im in app.get("image")]


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_home_shows_the_default_example_and_its_predictions():
    app = open_app()
    assert app.title[0].value == "CAM Explorer"
    assert "Explaining:** Egyptian cat (285)" in texts(app)
    assert app.get("plotly_chart"), "the top-5 chart is missing"
    assert app.session_state["target"] == 285
    assert [b.label.split(" · ")[0] for b in app.button][:3] == ["Egyptian cat", "tiger cat", "tabby"]


def test_upload_changes_the_image_and_the_predictions(coffee):
    app = open_app()
    app.file_uploader(key="upload").upload("coffee.png", png(coffee), "image/png")
    app.run()
    assert not app.exception and not app.error
    assert "Explaining:** espresso (967)" in texts(app)
    assert app.session_state["image_name"] == "coffee.png"
    assert "400" in app.session_state["image_note"] and "600" in app.session_state["image_note"]


def test_a_bad_upload_is_a_message_and_the_old_image_stays():
    app = open_app()
    app.file_uploader(key="upload").upload("notes.png", b"this is not a picture", "image/png")
    app.run()
    assert not app.exception
    assert app.error and "notes.png" in app.error[0].value and "not an image" in app.error[0].value
    assert "Explaining:** Egyptian cat" in texts(app)


def test_example_picker_and_top_k_buttons_set_the_class_for_every_page():
    app = open_app()
    app.selectbox(key="example").select("dog")
    app.run()
    top = app.session_state["target"]
    assert 151 <= top <= 268, "dog.jpg's top class should be a dog breed"
    second = [b for b in app.button if not b.disabled][0]
    second.click()
    app.run()
    assert app.session_state["target"] != top
    chosen = app.session_state["target"]
    go(app, "compare")
    assert any(str(chosen) in h.value for h in app.subheader), "the compare page explains the chosen class"


def test_compare_shows_one_image_per_method_and_changes_with_the_class():
    app = go(open_app(), "compare")
    app.multiselect(key="compare_methods").set_value(["gradcam", "eigencam", "layercam"])
    app.run()
    assert not app.exception
    captions = [c for im in app.get("image") for c in [im.proto.imgs[0].caption] if " ms" in c]
    assert [c.split(" · ")[0] for c in captions] == ["Grad-CAM", "Eigen-CAM", "Layer-CAM"]
    before = image_sources(app)
    app.selectbox(key="target_choice").set_value(282)
    app.run()
    after = image_sources(app)
    assert len(after) == len(before)
    assert after != before, "switching the class must repaint the maps"
    assert app.subheader[0].value.startswith("tiger cat (282)")


def test_compare_second_class_signed_view_and_an_unavailable_method():
    app = go(open_app(), "compare")
    app.multiselect(key="compare_methods").set_value(["gradcam", "hirescam"])
    app.selectbox(key="compare_second").set_value(1)
    app.radio(key="compare_view").set_value("signed")
    app.run()
    assert not app.exception
    assert [h.value.split(" (")[0] for h in app.subheader] == ["Egyptian cat", "goldfish"]
    assert sum(" ms" in im.proto.imgs[0].caption for im in app.get("image")) == 4
    app.selectbox(key="target_choice").set_value(1)
    app.selectbox(key="compare_second").set_value(None)
    app.multiselect(key="compare_methods").set_value(["cam"])
    app.run()
    assert not app.exception


def test_channels_page_ranks_and_picks_channels():
    app = go(open_app(), "channels")
    assert "1280 channels × 7 × 7" in texts(app)
    first_pick = app.selectbox(key="channels_pick").value
    options = app.selectbox(key="channels_pick").options
    app.selectbox(key="channels_pick").select_index(5)
    app.run()
    assert not app.exception
    assert app.selectbox(key="channels_pick").value != first_pick
    assert any(f"Channel {app.selectbox(key='channels_pick').value}," in im.proto.imgs[0].caption
               for im in app.get("image"))
    app.selectbox(key="channels_rank").set_value("mean")
    app.selectbox(key="channels_layer").set_value("features.13")
    app.run()
    assert not app.exception
    assert "96 channels × 14 × 14" in texts(app)
    assert len(options) == 1280


def test_clusters_page_follows_k():
    app = go(open_app(), "clusters")
    assert sum("cluster " in im.proto.imgs[0].caption for im in app.get("image")) == 8
    app.slider(key="clusters_k").set_value(5)
    app.radio(key="clusters_rows").set_value("l2")
    app.run()
    assert not app.exception
    captions = [im.proto.imgs[0].caption for im in app.get("image") if "cluster " in im.proto.imgs[0].caption]
    assert len(captions) == 5
    assert sum(int(c.split(" · ")[1].split()[0]) for c in captions) == 1280


def test_a_model_that_cannot_load_is_a_message_on_every_page(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    app = open_app()
    app.selectbox(key="model_choice").set_value("resnet18")
    app.run()
    assert not app.exception
    assert app.error and "mobilenet_v2" in app.error[0].value and "resnet18" in app.error[0].value
    for page in ("compare", "evaluate"):
        go(app, page)
        assert not app.exception
        assert app.error and "needs its pretrained weights" in app.error[0].value
    app.session_state["evaluate_steps"] = 5  # the Evaluate page (shown last) draws its curves in few steps
    app.selectbox(key="model_choice").set_value("efficientnet_lite0")
    app.run()
    assert not app.error
    assert np.isin(app.session_state["target"], [285])


def test_compare_runs_score_cam_with_progress_and_switches_class_for_free():
    app = go(open_app(), "compare")
    for method in ("scorecam", "groupcam"):  # Method settings' layer picker, set before the methods are chosen
        app.session_state[f"layer_{method}_mobilenet_v2"] = CHEAP_LAYER
    app.session_state["method_settings"] = True  # the expander open: its widgets are drawn
    app.multiselect(key="compare_methods").set_value(["scorecam", "groupcam"])
    app.run()
    assert app.selectbox(key="layer_scorecam_mobilenet_v2").value == CHEAP_LAYER
    assert not app.exception and not app.warning
    captions = [im.proto.imgs[0].caption for im in app.get("image") if " · " in im.proto.imgs[0].caption]
    assert [c.split(" · ")[0] for c in captions] == ["Score-CAM", "Group-CAM"], captions
    before = image_sources(app)
    app.selectbox(key="target_choice").set_value(282)
    app.run()
    captions = [im.proto.imgs[0].caption for im in app.get("image") if "Score-CAM" in im.proto.imgs[0].caption]
    assert captions and captions[0].endswith(" ms"), "after the first run a class switch is only the weighting"
    assert image_sources(app) != before


def test_channels_can_rank_by_score_cam_after_computing_it_and_show_masked_inputs():
    app = go(open_app(), "channels")
    assert sum(im.proto.imgs[0].caption.startswith("#") and " · " not in im.proto.imgs[0].caption
               for im in app.get("image")) >= 1, "the masked-inputs montage is missing"
    # features.14: 160 channels, as cheap as CHEAP_LAYER, whose scores the lessons' tests compute on the same shared
    # model (the button shows only while the scores are not yet computed)
    app.selectbox(key="channels_layer").set_value("features.14")
    app.selectbox(key="channels_rank").set_value("scorecam")
    app.run()
    assert not app.exception
    assert app.button(key="channels_run_scorecam") and "one forward pass per channel" in app.info[0].value
    app.button(key="channels_run_scorecam").click()
    app.run()
    assert not app.exception
    assert "Score-CAM contribution (for the class), sorted" in str(app.get("plotly_chart")[0].proto.spec)
    app.run()
    assert not app.info, "once computed, ranking by Score-CAM needs no button"


def test_clusters_show_each_clusters_score_gain():
    app = go(open_app(), "clusters")
    captions = [im.proto.imgs[0].caption for im in app.get("image")]
    gains = [float(c.split("gain ")[1].split(" ")[0]) for c in captions if "gain " in c]
    assert len(gains) == 8 and max(gains) > 0
    assert any(c.startswith("Cluster-CAM with these 8 clusters") for c in captions)
    app.radio(key="clusters_rows").set_value("l2")
    app.run()
    assert any(im.proto.imgs[0].caption.startswith("Cosine-CAM") for im in app.get("image"))


def test_the_server_config_suits_a_shared_server():
    """Image uploads stop at 25 MB (weights files at 512 MB), tracebacks stay on the server, and no file change
    reloads cam_core under running sessions (Streamlit's watcher drops the project's modules from sys.modules, which
    breaks concurrent imports)."""
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == 512
    for page in ("app.py", "pages/ui/evaluation_scores.py", "pages/figure.py"):
        assert "max_upload_size=IMAGE_UPLOAD_MB" in (ROOT / page).read_text(), page
    assert config["server"]["fileWatcherType"] == "none"
    assert config["client"]["showErrorDetails"] == "none"
