"""The Figure page through AppTest (no browser): rows added from the examples and from the current image with a
second class, a row's class picked and a row removed, the preview following them; a column's parameter and layer
set in Method settings."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager

from cam_core import figures
from tests.conftest import CHEAP_LAYER, open_app


def rows(app) -> list[tuple[str, int | None]]:
    return [(row["name"], row["target"]) for row in app.session_state["figure_rows"]]


def test_rows_are_added_given_a_class_and_removed():
    app = open_app()
    app.switch_page("pages/figure.py").run()
    assert [i.value for i in app.info] == ["Add at least one image and choose at least one method."]
    app.multiselect(key="figure_methods").set_value(["gradcam", "eigencam"])
    app.number_input(key="figure_dpi").set_value(60)
    app.multiselect(key="figure_examples").set_value(["coffee", "chelsea"]).run()
    app.button(key="figure_add_examples").click().run()
    assert rows(app) == [("coffee", None), ("chelsea", None)]
    assert app.multiselect(key="figure_examples").value == []
    app.selectbox(key="figure_current_class").set_value(281)
    app.button(key="figure_add_current").click().run()  # the current image (chelsea) for tabby
    assert rows(app)[2] == ("example: chelsea", 281)
    assert not app.exception and not app.error
    assert app.session_state["figure_preview"][0][1] == ((0, None), (1, None), (2, 281))
    app.selectbox(key="figure_class_0").set_value(968).run()  # coffee explained for cup
    app.button(key="figure_remove_1").click().run()
    assert rows(app) == [("coffee", 968), ("example: chelsea", 281)]
    assert app.session_state["figure_preview"][0][1] == ((0, 968), (2, 281))
    assert not app.exception and not app.error


@pytest.fixture
def computed(monkeypatch) -> tuple[list, dict]:
    """The FigureMaps the page computed (every run's, in order) and the downloads' lazy data by file name."""
    maps, deferred = [], {}
    original_compute, original_deferred = figures.compute_maps, MediaFileManager.add_deferred

    def compute(*args, **kwargs):
        maps.append(original_compute(*args, **kwargs))
        return maps[-1]

    def keep(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        deferred[file_name] = data_callable
        return original_deferred(self, data_callable, mimetype, coordinates, file_name=file_name, **kwargs)

    monkeypatch.setattr(figures, "compute_maps", compute)
    monkeypatch.setattr(MediaFileManager, "add_deferred", keep)
    return maps, deferred


def test_a_columns_parameter_and_layer_change_its_map_and_show_in_the_manifest(computed):
    maps, deferred = computed
    app = open_app()
    app.switch_page("pages/figure.py").run()
    app.multiselect(key="figure_methods").set_value(["gradcam", "eigencam", "xgradcam"])
    app.number_input(key="figure_dpi").set_value(60)
    app.session_state["figure_method_settings"] = True  # the expander open: its widgets are drawn
    app.button(key="figure_add_current").click().run()
    assert not app.exception and not app.error
    assert "Method settings" in [expander.label for expander in app.expander]
    default_layer = app.selectbox(key="figure_layer_gradcam_mobilenet_v2").value
    assert default_layer != CHEAP_LAYER
    before, preview = maps[-1], app.session_state["figure_preview"][1]
    app.selectbox(key="figure_layer_gradcam_mobilenet_v2").set_value(CHEAP_LAYER)
    app.checkbox(key="figure_param_eigencam_centre").check().run()
    assert not app.exception and not app.error
    after = maps[-1]
    assert [result.layer for result in after.results[0]] == [CHEAP_LAYER, default_layer, default_layer]
    assert after.results[0][1].params["centre"] is True and before.results[0][1].params["centre"] is False
    changed = [not np.array_equal(b.raw, a.raw) for b, a in zip(before.results[0], after.results[0], strict=True)]
    assert changed == [True, True, False], "only the two columns whose settings changed get new maps"
    assert app.session_state["figure_preview"][1] != preview, "the preview is drawn again"
    assert "layer_gradcam_mobilenet_v2" not in app.session_state, "Compare's settings are its own"
    with zipfile.ZipFile(io.BytesIO(deferred["cam_figure_png.zip"]())) as archive:
        record = json.loads(archive.read("manifest.json"))
    assert [(m["method"], m["layer"]) for m in record["maps"]] == [
        ("gradcam", CHEAP_LAYER), ("eigencam", default_layer), ("xgradcam", default_layer)]
    assert record["maps"][1]["params"]["centre"] is True
    assert [m["params"] for m in record["extra"]["figure"]["methods"]] == [
        {"layer": CHEAP_LAYER}, {"centre": True, "layer": default_layer}, {"layer": default_layer}]
