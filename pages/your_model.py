"""Your model page: a classifier of your own (an architecture, your weights, labels and preprocessing), explained by
every page for this session alone."""

from __future__ import annotations

from pages.ui.frame import YOUR_MODEL, page
from pages.ui.own_model import panel


def your_model() -> None:
    """Bring a model: the panel's inputs, Load, and what was loaded."""
    page(YOUR_MODEL, "Bring your own classifier: any torchvision or timm architecture with your weights and class "
         "names. The target layer and the head are found for you; the model is yours alone, for this session.")
    panel()


your_model()
