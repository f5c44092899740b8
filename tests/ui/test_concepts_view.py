"""The Clusters page's Concepts tab through AppTest on the example image (chelsea): k concepts, each over the image
with the classes its channel vector scores highest for, as the Analysis' own factorisation has them; a new k
redraws them."""

from __future__ import annotations

from cam_core.inputs.concepts import ConceptSpec
from cam_core.inputs.examples import load_example
from tests.conftest import open_app


def concept_captions(app) -> list[str]:
    """The captions of the concepts' own maps, in concept order (the page lays them out in columns)."""
    found = [im.proto.imgs[0].caption for im in app.get("image") if im.proto.imgs[0].caption.startswith("concept ")]
    return sorted(found, key=lambda caption: int(caption.split(":")[0].split()[1]))


def test_the_concepts_tab_shows_k_concepts_with_their_top_classes(dashboard_explainer):
    app = open_app()
    app.switch_page("pages/clusters.py")
    app.run()
    assert not app.exception, app.exception
    assert [tab.label for tab in app.tabs] == ["Clusters", "Concepts"]
    analysis = dashboard_explainer.analyze(load_example("chelsea"))
    found = analysis.concepts(ConceptSpec(dashboard_explainer.default_layer))
    labels = dashboard_explainer.labels
    captions = concept_captions(app)
    assert len(captions) == 5, captions
    for index, caption in enumerate(captions):
        top = found.top_classes(index, 3)
        assert caption.startswith(f"concept {index}: {labels[top[0][0]]} {top[0][1]:.2f}"), caption
        assert all(labels[c] in caption for c, _ in top), caption
    listed = [m.value for m in app.markdown if m.value.startswith("- ")]
    assert len(listed) == 5 and all(value.count("\n- ") == 2 for value in listed), listed
    together = [im.proto.imgs[0].caption for im in app.get("image") if "strongest concept" in im.proto.imgs[0].caption]
    assert len(together) == 1 and "NMF seed 0" in together[0], together

    app.session_state["concepts_k"] = 3
    app.run()
    assert not app.exception, app.exception
    assert [caption.split(":")[0] for caption in concept_captions(app)] == ["concept 0", "concept 1", "concept 2"]
