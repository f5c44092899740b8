"""The chosen methods' parameters and layer(s) in one expander, shared by the pages that run several methods."""

from __future__ import annotations

import streamlit as st

from cam_core import Explainer, MethodCard
from pages.ui.widgets import param_key, param_widget, stack_choices


def method_settings(explainer: Explainer, chosen: list[str], cards: dict[str, MethodCard],
                    key_prefix: str = "") -> dict[str, dict]:
    """An expander with the chosen methods' parameters and their layer (multi-layer methods: their layers), as
    {method id: keyword arguments of Analysis.cam}. Vanilla CAM has no layer to choose: it exists only at the layer
    the classifier follows; nor have the attention methods, which read every block. key_prefix starts every widget's
    key, so that each page keeps its own settings.

    The widgets are drawn only while the expander is open (a grid's rerun then sends none of them); what they were
    last set to is kept in the session and used while it is closed."""
    tunable = [cards[i] for i in chosen
               if cards[i].params or not ("class_weights" in cards[i].needs or cards[i].reads_every_block)]
    if not tunable:
        return {}
    kept: dict[str, object] = st.session_state.setdefault(f"{key_prefix}method_settings_kept", {})
    box = st.expander("Method settings", icon=":material/tune:", key=f"{key_prefix}method_settings",
                      on_change="rerun")
    if not box.open:
        return {card.id: settings_of(explainer, card, key_prefix, kept, drawn=False) for card in tunable}
    settings: dict[str, dict] = {}
    with box:
        columns = st.columns(min(3, len(tunable)))
        for position, card in enumerate(tunable):
            with columns[position % len(columns)]:
                st.markdown(f"**{card.name}**")
                settings[card.id] = settings_of(explainer, card, key_prefix, kept, drawn=True)
    return settings


def settings_of(explainer: Explainer, card: MethodCard, key_prefix: str, kept: dict[str, object],
                drawn: bool) -> dict:
    """card's keyword arguments of Analysis.cam: from its widgets when drawn (each starts at the value kept for it,
    which it then updates), else from the session's values, the kept ones or the defaults."""
    def value(key: str, default: object, draw) -> object:
        start = st.session_state.get(key, kept.get(key, default))
        if drawn:
            start = draw(start)
        kept[key] = start
        return start

    values = {param.name: value(param_key(card, param, f"{key_prefix}param"), param.default,
                                lambda start, param=param: param_widget(card, param, f"{key_prefix}param", start))
              for param in card.params}
    if card.multi_layer:
        order = stack_choices(explainer)
        default = explainer.model.pyramid() if card.pyramid_by_default else [explainer.default_layer]
        picked = value(f"{key_prefix}layers_{card.id}_{explainer.name}", default, lambda start: st.multiselect(
            "layers", order, default=start, key=f"{key_prefix}layers_{card.id}_{explainer.name}",
            help="Shallow layers add detail, deep layers class evidence; maps are fused at the finest layer's "
            "resolution."))
        values["layers"] = sorted(picked, key=order.index) or None
    elif "class_weights" not in card.needs and not card.reads_every_block:
        deepest_first = explainer.model.layer_choices()[::-1]
        values["layer"] = value(f"{key_prefix}layer_{card.id}_{explainer.name}", deepest_first[0], lambda start:
                                st.selectbox("layer", deepest_first, index=deepest_first.index(start),
                                             key=f"{key_prefix}layer_{card.id}_{explainer.name}",
                                             help="Deeper layers: coarser maps, more class-specific channels; for "
                                             "methods of one pass per channel, fewer channels are faster."))
    return values
