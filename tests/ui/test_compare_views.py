"""Compare's honest views through AppTest on dog.jpg for "pickup": class-specificity captions (and the note with a
better layer where a method cannot separate the classes), the signed view explaining a map that is ≥ 0, a shared
scale and the difference rows."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import DARKNET, open_app

PICKUP = 717


def captions(app: AppTest) -> list[str]:
    return [c.value for c in app.caption]


@pytest.fixture(scope="module")
def dog_app() -> AppTest:
    if not (DARKNET / "dog.jpg").exists():
        pytest.skip("Debian package darknet (dog.jpg) is not installed")
    app = open_app()
    app.selectbox(key="example").select("dog")
    app.run()
    app.session_state["target"] = PICKUP
    app.switch_page("pages/compare.py")
    app.session_state["compare_methods"] = ["gradcam", "gradcampp", "guidedbackprop"]
    app.run()
    assert not app.exception, app.exception
    return app


def test_each_map_says_how_class_specific_it_is(dog_app):
    found = captions(dog_app)
    grad = [c for c in found if "class-specific" in c]
    assert len(grad) == 1 and "with the map of “Eskimo dog”" in grad[0], found
    warnings = [c for c in found if "nearly the same map" in c]
    assert len(warnings) == 2, found
    plus, guided = warnings
    assert "positive gradient" in plus and "choose that layer" in plus, plus
    assert "positive gradients back through every ReLU" in guided and "choose that layer" not in guided, guided


def test_signed_view_says_why_only_red_appears(dog_app):
    dog_app.radio(key="compare_view").set_value("signed")
    dog_app.run()
    assert not dog_app.exception
    only_red = [c for c in captions(dog_app) if "≥ 0 by construction" in c]
    assert [c.split("'s raw")[0].split("info: ")[-1] for c in only_red] == ["Grad-CAM++"], captions(dog_app)
    dog_app.radio(key="compare_view").set_value("overlay")
    dog_app.run()


def test_second_class_shared_scale_and_both_difference_rows(dog_app):
    dog_app.selectbox(key="compare_second").set_value(248)
    dog_app.run()
    dog_app.checkbox(key="compare_shared").check()
    dog_app.checkbox(key="compare_difference").check()
    dog_app.multiselect(key="compare_method_difference").set_value(["gradcam", "gradcampp"])
    dog_app.run()
    assert not dog_app.exception, dog_app.exception
    headings = [h.value for h in dog_app.subheader]
    assert headings[2:] == ["“pickup” − “Eskimo dog”", "Grad-CAM − Grad-CAM++"], headings
    shown = [im.proto.imgs[0].caption for im in dog_app.get("image")]
    assert sum(c.endswith("· difference") for c in shown) == 3, shown
    assert sum(c.startswith("Grad-CAM − Grad-CAM++") for c in shown) == 2, shown
    found = captions(dog_app)
    assert any("subtracted in raw values" in c for c in found), found
    assert any("divided by its own maximum" in c for c in found), found
