"""How class-specific a map is: its Pearson r with the same method's map for another class, why a method at a
layer cannot separate classes when r is near 1, and the candidate layer where it separates them best."""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import numpy as np

from cam_core.engine.analysis import Analysis
from cam_core.errors import CamError
from cam_core.registry import MethodCard, get_method, settings_key

THRESHOLD = 0.9  # r ≥ 0.9: the other class's map explains over 80 % (r²) of this map's variance
SEPARATED = 0.5  # a layer separates the classes where r < 0.5: they share under a quarter of their variance
SWEEPABLE = frozenset({"gradients", "class_weights", "layer_stack", "guided_gradients"})  # no passes beyond a layer's
REASONS = (
    ("guided_gradients", "guided backpropagation lets only positive gradients back through every ReLU, so what "
                         "reaches the input traces the image's edges for almost any class"),
    ("mask_scores", "its masked inputs raise or lower both classes' scores nearly alike at this layer"),
    ("ablation_scores", "removing a channel moves both classes' logits nearly alike at this layer"),
    ("class_weights", "the classifier's weights of the two classes favour nearly the same channels"),
    ("gradients", "at this layer the two classes' gradients favour nearly the same channels"),
    ("path", "at this layer the two classes' gradients favour nearly the same channels"),
    ("input_scores", "the perturbed inputs raise or lower both classes' scores nearly alike"),
)

_cache: weakref.WeakKeyDictionary[Analysis, dict] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Specificity:
    """A map's Pearson r with the same method's map of another class; when r ≥ THRESHOLD, why, and the candidate
    layer with the lowest r (best_layer, best_r; None when no other layer can be tried cheaply or none is below
    SEPARATED: then the classes may simply be in the same place, and the note says so)."""

    method: str
    target: int
    other: int
    r: float
    note: str = ""
    best_layer: str | None = None
    best_r: float | None = None

    @property
    def barely_specific(self) -> bool:
        """Whether the two classes' maps are nearly the same map (r ≥ THRESHOLD)."""
        return not math.isnan(self.r) and self.r >= THRESHOLD

    def caption(self, other_label: str) -> str:
        """The finding in a line or two (Markdown): r with the other class's map; near 1, why, and the better layer
        (other_label: the other class's name)."""
        against = f"with the map of “{other_label}”"
        if math.isnan(self.r):
            return f"r {against}: undefined (a blank map)"
        if not self.barely_specific:
            return f"r = {self.r:.2f} {against}: class-specific"
        where = (f" At {self.best_layer} the two maps correlate at r = {self.best_r:.2f}: choose that layer."
                 if self.best_layer else "")
        return (f":orange[:material/warning: r = {self.r:.2f} {against}: nearly the same map (r ≥ {THRESHOLD}).] "
                f"{self.note[0].upper()}{self.note[1:]}.{where}")


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equally shaped maps (NaN when either is constant)."""
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise CamError(f"maps of {np.shape(a)} and {np.shape(b)} cannot be correlated")
    x, y = x - x.mean(), y - y.mean()  # sums of products, not BLAS dot products: no BLAS threads to wait for
    norm = math.sqrt(float((x * x).sum()) * float((y * y).sum()))
    return float((x * y).sum()) / norm if norm > 0 else math.nan


def map_correlation(analysis: Analysis, method: str, target: int, other: int, sign: str = "positive",
                    **settings: object) -> float:
    """r between method's saliency maps of target and of other (same sign, layer and parameters)."""
    first = analysis.cam(method, target=target, sign=sign, **settings)
    second = analysis.cam(method, target=other, sign=sign, **settings)
    return pearson(first.saliency, second.saliency)


def reason(card: MethodCard) -> str:
    """Why method's maps of two classes can be nearly the same map, from what it reads."""
    if not card.class_specific and not card.needs:
        return f"{card.name} does not read the class: its map is the same for every class"
    if card.alike:
        return card.alike
    for need, why in REASONS:
        if need in card.needs:
            return why
    return "the two classes' evidence is nearly the same at this layer"


def layer_correlations(analysis: Analysis, method: str, target: int, other: int, sign: str = "positive",
                       **params: object) -> dict[str, float]:
    """r at each candidate layer (the model's layer choices; multi-layer methods on each layer alone), for methods
    whose map at another layer costs no pass beyond that layer's forward and backward; empty for the others."""
    card = get_method(method).card
    if not card.needs or not card.needs <= SWEEPABLE or card.needs == {"guided_gradients"}:
        return {}
    layers = analysis.explainer.model.layer_choices()
    if "gradients" in card.needs:  # every candidate layer's gradients from one backward per pass and class
        for cls in (target, other):
            analysis.stack_gradients(cls, layers)
    found = {}
    for layer in layers:
        where = {"layers": [layer]} if card.multi_layer else {"layer": layer}
        try:
            found[layer] = map_correlation(analysis, method, target, other, sign, **params, **where)
        except CamError:
            continue
    return {layer: r for layer, r in found.items() if not math.isnan(r)}


def known_specificity(analysis: Analysis, method: str, target: int, other: int, sign: str = "positive",
                      **settings: object) -> Specificity | None:
    """specificity's finding when it was computed before for this analysis and settings, else None (nothing run)."""
    return _cache.get(analysis, {}).get((method, int(target), int(other), sign, settings_key(settings)))


def specificity(analysis: Analysis, method: str, target: int, other: int, sign: str = "positive",
                **settings: object) -> Specificity:
    """How class-specific method's map of target is, against other's map; computed once per analysis and settings.
    When r ≥ THRESHOLD, note says why and the candidate layer with the lowest r is named (if below SEPARATED)."""
    key = (method, int(target), int(other), sign, settings_key(settings))
    known = _cache.setdefault(analysis, {})
    if key in known:
        return known[key]
    card = get_method(method).card
    r = map_correlation(analysis, method, target, other, sign, **settings)
    found = Specificity(method, int(target), int(other), r)
    if found.barely_specific:
        params = {k: v for k, v in settings.items() if k not in ("layer", "layers")}
        by_layer = layer_correlations(analysis, method, target, other, sign, **params)
        best = min(by_layer, key=by_layer.get) if by_layer else None
        better = best is not None and by_layer[best] < SEPARATED
        if best is None or better:
            note = reason(card)
        else:
            note = (f"the two classes' evidence may lie in the same place: no candidate layer separates them either "
                    f"(the lowest r, {by_layer[best]:.2f}, is at {best})")
        found = Specificity(method, int(target), int(other), r, note,
                            best if better else None, by_layer[best] if better else None)
    known[key] = found
    return found
