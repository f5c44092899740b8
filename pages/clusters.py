"""Clusters page: channels grouped by k-means on their maps, the groundwork of Group-, Cluster- and Cosine-CAM; and
the layer's concepts by Deep Feature Factorization (NMF), each named by the classes it scores highest for."""

from __future__ import annotations

import numpy as np
import plotly.express as px
import streamlit as st

from cam_core import Analysis, Explainer
from cam_core.inputs.channel_clusters import ChannelClusters
from cam_core.inputs.concepts import MAX_CONCEPTS, ConceptSpec
from cam_core.render.colourbar import map_view, with_colour_bar
from cam_core.render.pictures import COLORMAPS, overlay
from cam_core.render.saliency import saliency_map
from cam_core.views.channels import cluster_gains
from cam_core.views.concepts import concept_views, concepts_picture
from pages.ui.errors import friendly_errors
from pages.ui.frame import page
from pages.ui.widgets import layer_picker

ROW_LABELS = {"raw": "Raw maps (Euclidean)", "l2": "L2-normalised maps (cosine, as Cosine-CAM)"}
COLUMNS = 4
CHART = {"displayModeBar": False}


def overview(clusters: ChannelClusters, names: list[str], channels: int) -> None:
    """The clusters' sizes, and the channels on their first two principal components coloured by cluster."""
    left, right = st.columns([1, 2])
    sizes = px.bar(x=names, y=clusters.sizes, labels={"x": "", "y": "channels"}, title="Cluster sizes",
                   color=names, color_discrete_sequence=px.colors.qualitative.Dark24)
    sizes.update_layout(height=320, showlegend=False, margin=dict(l=0, r=0, t=40, b=0))
    left.plotly_chart(sizes, width="stretch", config=CHART)
    explained = ", ".join(f"{v:.0%}" for v in clusters.explained)
    scatter = px.scatter(x=clusters.projection[:, 0], y=clusters.projection[:, 1],
                         color=[names[i] for i in clusters.labels],
                         hover_name=[f"channel {c}" for c in range(channels)],
                         labels={"x": "PC 1", "y": "PC 2", "color": ""},
                         title=f"Channels on their first two principal components (variance explained: {explained})",
                         color_discrete_sequence=px.colors.qualitative.Dark24,
                         category_orders={"color": names})
    rows = -(-len(names) // 4)  # the legend wraps below the chart (at least four clusters a row): all are listed
    scatter.update_layout(height=340 + 22 * rows, margin=dict(l=0, r=0, t=40, b=0),
                          legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0,
                                      entrywidth=90, font_size=11))
    scatter.update_traces(marker=dict(size=6, opacity=0.8))
    right.plotly_chart(scatter, width="stretch", config=CHART)


def worth(analysis: Analysis, class_name: str, target: int, layer: str, k: int, rows: str,
          names: list[str]) -> np.ndarray:
    """Each cluster's score gain for the class, next to the CAM that weights the clusters by them; the gains."""
    method = "cosinecam" if rows == "l2" else "clustercam"
    with st.spinner(f"Scoring the {k} clusters as masks (one pass each)…"):
        result = analysis.cam(method, target=target, layer=layer, groups=k)
    gains = cluster_gains(analysis, layer, k, rows, target)
    st.subheader(f"What each cluster is worth to “{class_name}”", divider="gray")
    st.caption("Each cluster's summed map, scaled to [0, 1], keeps the image where it is high and a blurred copy "
               "elsewhere; the network's probability for the class on that image, minus its probability on the "
               "blurred image, is the cluster's score gain. Group-CAM, Cluster-CAM and Cosine-CAM weight the "
               "clusters' maps by these gains.")
    left, right = st.columns([1, 1])
    bars = px.bar(x=names, y=gains, labels={"x": "", "y": "score gain"}, color=names,
                  color_discrete_sequence=px.colors.qualitative.Dark24)
    bars.update_layout(height=300, showlegend=False, margin=dict(l=0, r=0, t=10, b=0))
    left.plotly_chart(bars, width="stretch", config=CHART)
    right.image(map_view(analysis.image, result.saliency, result.raw, "overlay", 0.55), width="stretch",
                caption=f"{'Cosine-CAM' if rows == 'l2' else 'Cluster-CAM'} with these {k} clusters"
                + (f" · {result.note}" if result.note else ""))
    return gains


def concepts(explainer: Explainer, analysis: Analysis) -> None:
    """Deep Feature Factorization of the chosen layer: every concept in its own colour over the image, then each
    concept's map with the classes its channel vector scores highest for."""
    st.caption("Non-negative matrix factorisation splits the layer's activations (channels × positions) into k "
               "concepts, each a channel vector and a map of where it is. Each concept's vector, put at every "
               "position of the layer and sent through the rest of the network, is named by the classes it scores "
               "highest for. Deep Feature Factorization's Compare map adds the concepts' maps weighted by their "
               "probability for the class.")
    c1, c2, c3 = st.columns([1.2, 1.2, 1.6])
    with c1:
        layer = layer_picker(explainer, "concepts_layer")
    k = c2.slider("k (number of concepts)", 2, MAX_CONCEPTS, 5, key="concepts_k")
    seed = int(c3.number_input("NMF seed (its random start)", 0, 2**31 - 1, 0, key="concepts_seed"))
    with st.spinner(f"Factorising {layer} into {k} concepts…"):
        found, views = concept_views(analysis, ConceptSpec(layer, k, seed))
    left, right = st.columns([3, 2])
    left.image(concepts_picture(analysis.image, views), width="stretch",
               caption=f"{k} concepts of {layer}: each pixel in the colour of its strongest concept · NMF seed {seed} "
               f"· relative error {found.error:.0%}" + (f" · {found.note}" if found.note else ""))
    right.markdown("  \n".join(
        f"<span style='color:{view.colour}'>■</span> **concept {view.index}**: "
        + ", ".join(f"{label} ({probability:.2f})" for _, label, probability in view.classes)
        for view in views), unsafe_allow_html=True)
    st.subheader("Each concept", divider="gray")
    columns = st.columns(COLUMNS)
    for view in views:
        with columns[view.index % COLUMNS]:
            st.image(map_view(analysis.image, view.saliency, found.maps[view.index].numpy(), "overlay", 0.55,
                              label="concept map"), width="stretch", caption=view.caption)
            st.markdown("\n".join(f"- {label}: {probability:.2f}" for _, label, probability in view.classes))


def clusters() -> None:
    """k-means clusters of the chosen layer's channels: their sizes and spread, their worth, and their maps; and the
    layer's concepts."""
    subject = page("Clusters", "Channels that fire in the same places form groups. k-means finds them; each group's "
                   "summed map shows one part of what the layer sees. Concepts: the same idea by NMF.")
    if subject is None:
        return
    explainer, analysis, target = subject
    grouped, factorised = st.tabs(["Clusters", "Concepts"])
    with grouped, friendly_errors():
        c1, c2, c3 = st.columns([1.2, 1.2, 1.6])
        with c1:
            layer = layer_picker(explainer, "clusters_layer")
        channels = analysis.activations(layer).shape[0]
        k = c2.slider("k (number of clusters)", 2, min(32, channels), min(8, channels), key="clusters_k")
        rows = c3.radio("Cluster the channels by", list(ROW_LABELS), format_func=ROW_LABELS.get,
                        key="clusters_rows", horizontal=True)
        with st.spinner("Clustering the channels…"):
            found = analysis.clusters(k, rows=rows, layer=layer)
        names = [f"cluster {i}" for i in range(k)]
        overview(found, names, channels)
        gains = worth(analysis, explainer.labels[target], target, layer, k, rows, names)

        st.subheader("Each cluster's summed map", divider="gray")
        shared = st.checkbox("Shared scale by gain", key="clusters_shared",
                             help="Each cluster's map, scaled to [0, 1], times its score gain (a negative gain "
                             "counts as 0), all on one scale: a cluster worth nothing to the class looks blank.")
        top = float(np.clip(gains, 0, None).max())
        if shared:
            st.caption(f"Shared scale: each map × its gain, from 0 to the largest gain ({top:+.3g}).")
        columns = st.columns(COLUMNS)
        for index in range(k):
            saliency, note = saliency_map(found.maps[index], analysis.size)
            if shared:
                worth_here = saliency * max(float(gains[index]), 0.0) / top if top > 0 else np.zeros_like(saliency)
                picture = with_colour_bar(overlay(analysis.image, worth_here, alpha=0.55), 0.0, top, COLORMAPS[0],
                                          "map × score gain")
            else:
                picture = map_view(analysis.image, saliency, found.maps[index], "overlay", 0.55,
                                   label="summed activation")
            with columns[index % COLUMNS]:
                st.image(picture, width="stretch",
                         caption=f"cluster {index} · {found.sizes[index]} channels · gain {gains[index]:+.3g}"
                         + (f" · {note}" if note else ""))
    with factorised, friendly_errors():
        concepts(explainer, analysis)


clusters()
