"""What every class-specific method must do, on real photos with two objects: the two objects get different maps, a
class with a negative logit does not get an inverted map, and shifting every logit by a constant leaves the map as
it is wherever the method's definition reads only gradients or probabilities (the card says which)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cam_core import Explainer, methods
from tests.conftest import cheap_settings as cheap
from tests.conftest import pearson, photo_classes, skip_unless_runs_on, two_object_photo

SAME_MAP = 0.995  # two maps correlating at least this much are the same map (Score-CAM's flattening gave 1.000)
CLASS_SPECIFIC = tuple(card for card in methods() if card.class_specific)
# Methods whose card says a second object may get no map of its own (class-agnostic clusters): a blank map is not
# the same map, but it is only allowed where the card warns of it.
BLANK_SECOND = {"person.jpg": ("clustercam", "cosinecam")}
SHIFT = 40.0  # added to every logit: more than the lowest logit of the photos is below zero


@pytest.fixture(scope="module")
def shifted(mobilenet) -> Explainer:
    """The same network with SHIFT added to every logit (the classifier's bias)."""
    module = mobilenet.module_copy()
    with torch.no_grad():
        module.classifier[-1].bias += SHIFT
    return mobilenet.with_module(module, "mobilenet_v2 with every logit shifted")


@pytest.mark.parametrize("name", ("dog.jpg", "person.jpg"))
@pytest.mark.parametrize("card", CLASS_SPECIFIC, ids=lambda card: card.id)
def test_two_objects_in_one_photo_get_different_maps(mobilenet, card, name):
    skip_unless_runs_on(mobilenet, card)
    analysis = mobilenet.analyze(two_object_photo(name))
    classes = photo_classes(analysis, name)
    first, second = (analysis.cam(card.id, target=classes[kind], **cheap(card)).saliency for kind in ("top", "second"))
    assert first.any(), f"{card.id} on {name}: the top class's map is blank"
    if not second.any():
        assert card.id in BLANK_SECOND.get(name, ()), f"{card.id} on {name}: the second object's map is blank"
        return
    r = pearson(first, second, f"{card.id} {name}")
    assert r < SAME_MAP, f"{card.id} on {name}: the maps of {classes} correlate at {r:.4f}: the same map"


def test_score_cam_tells_the_dog_from_the_pickup_and_the_literal_softmax_does_not(mobilenet):
    """At the default layer of dog.jpg (1280 masked passes, shared by both classes and both weightings): the
    authors' weights give the dog and the pickup maps as different as Grad-CAM's; the paper's softmax over
    probability gains, taken literally, gives them one map, which the property above catches."""
    analysis = mobilenet.analyze(two_object_photo("dog.jpg"))
    classes = photo_classes(analysis, "dog.jpg")

    def r(method: str, **params) -> float:
        first, second = (analysis.cam(method, target=classes[kind], **params).saliency for kind in ("top", "second"))
        return pearson(first, second, f"{method} {params}")

    gradcam, scorecam, literal = r("gradcam"), r("scorecam"), r("scorecam", weights="gain softmax")
    print(f"dog vs pickup on dog.jpg: Grad-CAM r = {gradcam:.3f}, Score-CAM r = {scorecam:.3f}, literal softmax "
          f"r = {literal:.4f}")
    assert gradcam < 0.5 and scorecam < 0.5, (gradcam, scorecam)
    assert literal >= SAME_MAP


@pytest.mark.parametrize("card", CLASS_SPECIFIC, ids=lambda card: card.id)
def test_a_negative_logit_does_not_invert_the_map(mobilenet, shifted, card):
    skip_unless_runs_on(mobilenet, card)
    """The class with the lowest logit, negative here and positive once every logit is shifted up: its map must
    not turn upside down with the sign of its logit (Ablation-CAM's division by the logit did)."""
    analysis = mobilenet.analyze(two_object_photo("dog.jpg"))
    target = photo_classes(analysis, "dog.jpg")["negative"]
    moved = shifted.analyze(two_object_photo("dog.jpg"))
    assert analysis.logits[target] < 0 < moved.logits[target]
    below, above = (a.cam(card.id, target=target, sign="positive", **cheap(card)) for a in (analysis, moved))
    if not np.any(above.raw) and not np.any(below.raw):
        return
    r = pearson(below.raw, above.raw, f"{card.id} class {target}")
    assert r > 0.99, f"{card.id}: the map of class {target} with a negative logit correlates at {r:.4f} with its map " \
                     "when the logit is positive"


@pytest.mark.parametrize("card", CLASS_SPECIFIC, ids=lambda card: card.id)
def test_shifting_every_logit_changes_the_map_only_where_the_definition_reads_the_logit(mobilenet, shifted, card):
    skip_unless_runs_on(mobilenet, card)
    analysis = mobilenet.analyze(two_object_photo("dog.jpg"))
    moved = shifted.analyze(two_object_photo("dog.jpg"))
    for kind, target in photo_classes(analysis, "dog.jpg").items():
        before, after = (a.cam(card.id, target=target, **cheap(card)).raw for a in (analysis, moved))
        scale = max(float(np.abs(before).max()), 1e-30)
        same = np.allclose(before, after, rtol=1e-3, atol=1e-4 * scale)
        if card.logit_shift_invariant:
            assert same, f"{card.id} {kind}: shifting every logit by {SHIFT} moved the map by up to " \
                         f"{float(np.abs(before - after).max()) / scale:.2%} of its peak"
        else:
            assert not same, f"{card.id} reads the logit itself (its card says so), yet the shift left its map alone"
