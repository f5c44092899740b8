"""The browser tests' shared set-up: one `streamlit run app.py` per test module (its log in artifacts/), the folder
of screenshots, and the oracle of what a session must see (expected: cam_core's own pictures of a photo). Driving
the page (settle, pick, run_students, ...) is scripts/dashboard_driver.py's, which the benchmarks share."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from scripts.dashboard_driver import ROOT, streamlit_server

SHOTS = ROOT / "artifacts" / "screenshots"
CHECKED = ("gradcam", "eigencam", "layercam", "groupcam", "guidedbackprop")  # recomputed here, picture by picture
LOGS = {"test_browser": "streamlit.log", "test_browser_sessions": "streamlit_sessions.log"}


@pytest.fixture(scope="module")
def server(request):
    """A Streamlit server of the dashboard for this test module alone (its own models and caches); its URL."""
    module = request.module.__name__.rsplit(".", 1)[-1]
    with streamlit_server(LOGS.get(module, f"streamlit_{module}.log")) as url:
        yield url


def expected(image: Image.Image, explainer) -> dict:
    """What cam_core alone says about image, read the way the dashboard reads it: its top-1 class, its label and the
    default Compare pictures (overlay, opacity 0.6, first colour map, evidence for, with their colour bars, at the
    grid's shown width) of the CHECKED methods. explainer is this process's own (the server's caches are in the
    server's process)."""
    from cam_core import methods
    from cam_core.render.colourbar import map_view
    from cam_core.render.display import shown_image
    from cam_core.render.pictures import COLORMAPS

    analysis = explainer.analyze(image)
    index, label, _ = analysis.top_k(1)[0]
    names = {card.id: card.name for card in methods()}
    pictures = {}
    for method in CHECKED:
        result = analysis.cam(method, target=index)
        shown = shown_image(analysis.image)
        picture = map_view(shown, result.saliency_at((shown.height, shown.width)), result.raw, "overlay", 0.6,
                           COLORMAPS[0], result.rgb)
        pictures[names[method]] = np.asarray(picture.convert("RGB"), dtype=np.float32)
    return {"index": index, "label": label, "pictures": pictures}
