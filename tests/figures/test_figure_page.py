"""The Figure page through AppTest (no browser): rows added from the examples and from the current image with a
second class, a row's class picked and a row removed, the preview following them."""

from __future__ import annotations

from tests.conftest import open_app


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
