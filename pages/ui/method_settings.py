"""The chosen methods' parameters and layer(s) in one expander, shared by the pages that run several methods."""

from __future__ import annotations

import streamlit as st

from cam_core import Explainer, MethodCard
from pages.ui.widgets import param_widget, stack_choices


def method_settings(explainer: Explainer, chosen: list[str], cards: dict[str, MethodCard],
                    key_prefix: str = "") -> dict[str, dict]:
    """An expander with the chosen methods' parameters and their layer (multi-layer methods: their layers), as
    {method id: keyword arguments of Analysis.cam}. Vanilla CAM has no layer to choose: it exists only at the layer
    the classifier follows; nor have the attention methods, which read every block. key_prefix starts every widget's
    key, so that each page keeps its own settings."""
    settings: dict[str, dict] = {}
    tunable = [cards[i] for i in chosen
               if cards[i].params or not ("class_weights" in cards[i].needs or cards[i].reads_every_block)]
    if not tunable:
        return settings
    order = stack_choices(explainer)
    deepest_first = explainer.model.layer_choices()[::-1]
    with st.expander("Method settings", icon=":material/tune:"):
        columns = st.columns(min(3, len(tunable)))
        for position, card in enumerate(tunable):
            with columns[position % len(columns)]:
                st.markdown(f"**{card.name}**")
                values = {param.name: param_widget(card, param, f"{key_prefix}param") for param in card.params}
                if card.multi_layer:
                    default = explainer.model.pyramid() if card.pyramid_by_default else [explainer.default_layer]
                    picked = st.multiselect("layers", order, default=default,
                                            key=f"{key_prefix}layers_{card.id}_{explainer.name}",
                                            help="Shallow layers add detail, deep layers class evidence; "
                                            "maps are fused at the finest layer's resolution.")
                    values["layers"] = sorted(picked, key=order.index) or None
                elif "class_weights" not in card.needs and not card.reads_every_block:
                    values["layer"] = st.selectbox("layer", deepest_first,
                                                   key=f"{key_prefix}layer_{card.id}_{explainer.name}",
                                                   help="Deeper layers: coarser maps, more class-specific channels; "
                                                   "for methods of one pass per channel, fewer channels are faster.")
                settings[card.id] = values
    return settings
