"""The Clusters page at k = 16 through AppTest: the scatter's legend lists every cluster (it wraps below the chart
instead of being cut), and "Shared scale by gain" redraws the clusters' maps on one scale."""

from __future__ import annotations

import json

from tests.conftest import CHEAP_LAYER, open_app


def test_all_sixteen_clusters_in_the_legend_and_a_shared_scale_by_gain():
    app = open_app()
    app.switch_page("pages/clusters.py")
    app.session_state["clusters_layer"] = CHEAP_LAYER
    app.session_state["clusters_k"] = 16
    app.run()
    assert not app.exception, app.exception
    scatter = next(json.loads(c.proto.spec) for c in app.get("plotly_chart") if "principal" in c.proto.spec)
    assert [trace["name"] for trace in scatter["data"]] == [f"cluster {i}" for i in range(16)]
    legend = scatter["layout"]["legend"]
    assert legend["orientation"] == "h" and scatter["layout"]["height"] >= 320 + 22 * 3, legend
    own = [im.proto.imgs[0].url for im in app.get("image") if "gain" in im.proto.imgs[0].caption]
    app.checkbox(key="clusters_shared").check()
    app.run()
    assert not app.exception, app.exception
    shared = [im.proto.imgs[0].url for im in app.get("image") if "gain" in im.proto.imgs[0].caption]
    assert len(own) == len(shared) == 16 and own != shared
    assert any("Shared scale: each map × its gain" in c.value for c in app.caption)
