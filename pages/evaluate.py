"""Evaluate page: how faithful each method's map is (deletion and insertion curves, Average Drop, Increase in
Confidence, ROAD), whether it points at the object (pointing games against boxes), how sparse it is, over one image
or many with 95 % intervals, and whether it depends on what the model learned (the randomisation check, over seeds).
"""

from __future__ import annotations

import streamlit as st

from cam_core import methods
from cam_core.evaluation.metrics import BASELINES
from cam_core.evaluation.scoring import DEFAULT_STEPS
from pages.ui.errors import friendly_errors
from pages.ui.evaluation_views import faithfulness, remembered
from pages.ui.frame import page
from pages.ui.sanity_view import EDGE, sanity_check
from pages.ui.state import class_label

DEFAULT_METHODS = ["gradcam", "gradcampp", "layercam", "eigencam", "gradpolycam"]
DEFAULT_CHECKPOINTS = 5
DEFAULT_SEEDS = 3


def evaluate() -> None:
    """The chosen methods' faithfulness, pointing and sparsity over one image or many, and the model-randomisation
    check of one method over seeds."""
    subject = page("Evaluate", "How faithful is each map to the model? Deletion: remove the most salient pixels first, "
                   "the class probability should fall fast (lower AUC is better); insertion: add them first, it should "
                   "rise fast (higher is better); Average Drop lower is better; Increase in Confidence higher is "
                   "better; pointing: does the map point at the object?")
    if subject is None:
        return
    explainer, analysis, target = subject
    with friendly_errors():
        cards = {card.id: card for card in methods() if not explainer.unmet(card)}
        remembered("evaluate_methods", [i for i in DEFAULT_METHODS if i in cards])
        st.session_state.evaluate_methods = [i for i in st.session_state.evaluate_methods if i in cards]
        remembered("evaluate_steps", DEFAULT_STEPS)
        remembered("evaluate_baseline", BASELINES[0])
        remembered("evaluate_road", False)
        remembered("evaluate_scope", "image")
        remembered("evaluate_sanity_method", "gradcam")
        if st.session_state.evaluate_sanity_method not in (*cards, EDGE):
            st.session_state.evaluate_sanity_method = "gradcam"
        remembered("evaluate_checkpoints", DEFAULT_CHECKPOINTS)
        remembered("evaluate_seeds", DEFAULT_SEEDS)
        st.markdown(f"**Explaining:** {class_label(explainer, analysis, target)}")
        with friendly_errors():
            faithfulness(explainer, analysis, target, cards)
        with friendly_errors():
            sanity_check(explainer, analysis, target, cards)


evaluate()
