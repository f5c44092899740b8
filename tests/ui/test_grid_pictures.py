"""Compare's grid is drawn at its shown size and once: each map's picture is at most DISPLAY_WIDTH wide (its download
at the image's full size), kept for every session per (model, image, method, class, settings, look), so a class
switch back computes and draws nothing; maps whose new class needs no model passes are filled in before those
that run passes for each class; a map's popover draws its card and downloads only when opened; closed Method
settings draw no widgets and keep their values."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from cam_core.engine.analysis import Analysis
from cam_core.render.display import DISPLAY_WIDTH
from pages.ui.pictures import shown_maps
from tests.conftest import DARKNET, open_app

DOG_WIDTH = 768
PICKUP = 717


@pytest.fixture(scope="module")
def calls():
    """(method, target) of every Analysis.cam call the pages make, in order, while the module's app runs."""
    made: list[tuple[str, int]] = []
    original = Analysis.cam

    def counted(self, method, target=None, *args, **kwargs):
        made.append((method, target))
        return original(self, method, target, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Analysis, "cam", counted)
        yield made


@pytest.fixture(scope="module")
def dog_app(calls):
    if not (DARKNET / "dog.jpg").exists():
        pytest.skip("Debian package darknet (dog.jpg) is not installed")
    app = open_app()
    app.selectbox(key="example").select("dog")
    app.run()
    app.switch_page("pages/compare.py")
    app.session_state["compare_methods"] = ["groupcam", "gradcam", "eigencam"]
    app.session_state["param_groupcam_groups"] = 4  # a cheap Group-CAM: 4 masked passes
    shown_maps().clear()  # the server's store outlives an app: other tests drew maps of this photo
    calls.clear()
    finished(app)
    return app


def finished(app) -> None:
    """Run app, without exception."""
    app.run()
    assert not app.exception, app.exception


def stored(method: str, target: int):
    """The shown map the server keeps for method and target (any look), or None."""
    found = [shown for key, shown in shown_maps()._items.items() if key[2] == method and key[3] == target]
    return found[0] if found else None


def test_pictures_are_drawn_at_their_shown_size_and_downloads_at_full_size(dog_app):
    shown = stored("gradcam", int(dog_app.session_state["target"]))
    assert shown is not None
    picture = Image.open(io.BytesIO(shown.picture))
    assert picture.format == "JPEG" and picture.width == DISPLAY_WIDTH < DOG_WIDTH
    assert shown.result.size == (576, DOG_WIDTH)
    assert "saliency" not in shown.result.__dict__  # the full-size map was never drawn for the grid


def test_maps_whose_new_class_runs_no_passes_are_filled_in_first(dog_app, calls):
    filled = [method for method, _ in calls]
    assert set(filled) >= {"groupcam", "gradcam", "eigencam"}
    assert filled.index("groupcam") > max(filled.index("gradcam"), filled.index("eigencam")), filled


def test_a_class_switch_back_computes_and_draws_nothing(dog_app, calls):
    top = int(dog_app.session_state["target"])
    dog_app.session_state["target"] = PICKUP
    finished(dog_app)
    assert ("gradcam", PICKUP) in calls and stored("gradcam", PICKUP) is not None
    calls.clear()
    dog_app.session_state["target"] = top
    finished(dog_app)
    assert calls == [], calls  # the pictures came from the store
    shown = [im.proto.imgs[0].caption.split(" · ")[0] for im in dog_app.get("image")]
    assert shown[:3] == ["Group-CAM", "Grad-CAM", "Eigen-CAM"], shown  # in the grid's order, filled in any order


def test_a_popover_draws_its_downloads_only_when_opened(dog_app):
    def buttons() -> list[str]:
        return [button.proto.label for button in dog_app.get("download_button")]

    closed = buttons()
    assert closed == ["Download the whole grid (PNG, zip with manifest)"], closed
    stem = f"gradcam_{int(dog_app.session_state['target'])}_positive"
    dog_app.session_state[f"about_{stem}"] = True
    dog_app.run()
    assert not dog_app.exception, dog_app.exception
    assert "Map as PNG (zip with manifest)" in buttons() and "Raw map as NPY (zip with manifest)" in buttons()


def test_closed_method_settings_draw_no_widgets_and_keep_their_values(dog_app):
    def layer_pickers() -> list[str]:
        return [box.key for box in dog_app.selectbox if box.key.startswith("layer_")]

    top = int(dog_app.session_state["target"])
    assert stored("groupcam", top).result.params["groups"] == 4  # set in the session, the expander closed
    assert layer_pickers() == []
    dog_app.session_state["method_settings"] = True
    finished(dog_app)
    assert layer_pickers() == [f"layer_{method}_mobilenet_v2" for method in ("groupcam", "gradcam", "eigencam")]
    assert dog_app.number_input(key="param_groupcam_groups").value == 4
    dog_app.number_input(key="param_groupcam_groups").set_value(5)
    finished(dog_app)
    dog_app.session_state["method_settings"] = False
    dog_app.session_state["target"] = 1  # a class never drawn: its map is computed with the kept setting
    finished(dog_app)
    assert layer_pickers() == [] and stored("groupcam", 1).result.params["groups"] == 5

