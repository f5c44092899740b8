"""The Concepts view: Deep Feature Factorization's concepts of a layer as one picture (a colour per concept) and
each concept's map with the classes its channel vector scores highest for."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.colors as pc
from PIL import Image

from cam_core.engine.analysis import Analysis
from cam_core.inputs.concepts import Concepts, ConceptSpec
from cam_core.render.saliency import saliency_map

PALETTE = (*pc.qualitative.Plotly, *pc.qualitative.Dark24)  # ten distinct colours first, then 24 more


@dataclass(frozen=True)
class ConceptView:
    """One concept at the image's size: its [0, 1] map, its colour, a note where the map is blank, and the classes
    it scores highest for as (class, label, probability)."""

    index: int
    saliency: np.ndarray
    colour: str
    classes: tuple[tuple[int, str, float], ...]
    note: str = ""

    @property
    def caption(self) -> str:
        names = ", ".join(f"{label} {probability:.2f}" for _, label, probability in self.classes)
        return f"concept {self.index}: {names}" + (f" · {self.note}" if self.note else "")


def concept_views(analysis: Analysis, spec: ConceptSpec, count: int = 3) -> tuple[Concepts, list[ConceptView]]:
    """The factorisation of spec (cached by the Analysis) and each concept's view with its count top classes."""
    found = analysis.concepts(spec)
    labels = analysis.explainer.labels
    views = []
    for index in range(spec.k):
        saliency, note = saliency_map(found.maps[index], analysis.size)
        classes = tuple((c, labels[c], p) for c, p in found.top_classes(index, count))
        views.append(ConceptView(index, saliency, PALETTE[index % len(PALETTE)], classes, note))
    return found, views


def concepts_picture(image: Image.Image, views: list[ConceptView], alpha: float = 0.6) -> Image.Image:
    """The image with each pixel tinted by the concept strongest there, as strongly as that concept's map is."""
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    maps = np.stack([view.saliency for view in views])
    strongest = maps.argmax(axis=0)
    strength = maps.max(axis=0)[..., None] * alpha
    colours = np.array([pc.hex_to_rgb(view.colour) for view in views], dtype=np.float32)[strongest]
    return Image.fromarray(np.clip((1 - strength) * base + strength * colours, 0, 255).astype(np.uint8))
