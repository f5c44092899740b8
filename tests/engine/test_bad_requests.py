"""Bad requests get one-line CamErrors naming the valid range or choices and leave no hooks; degenerate inputs
(a black image, zero activations, zero gradients) give finite maps with a note, never NaN or a crash."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cam_core import CamError, methods
from cam_core.inputs.mask_scores import MaskScores
from cam_core.registry import CamInputs, LayerInputs, PathInputs, get_method
from tests.conftest import cheap_settings, global_hooks, hook_counts, module_state, skip_unless_runs_on


def hooks_left(explainer) -> int:
    return sum(
        len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks)
        for m in explainer.model.module.modules()
    )


BAD = [
    (lambda e, a: a.cam("nope"), "unknown method 'nope'; valid: cam, gradcam"),
    (lambda e, a: a.cam("gradcam", layer="features.99"), "has no layer 'features.99'; did you mean features.9"),
    (lambda e, a: a.cam("gradcam", layer="zzz"), "has no layer 'zzz'; try one of features.7"),
    (lambda e, a: a.cam("layercam", layers=["features.4", "nope"]), "has no layer 'nope'"),
    (lambda e, a: a.cam("gradcam", layer=5), "a layer is given by its name, such as features.18, not 5"),
    (lambda e, a: a.cam("gradcam", target=1000), "target class 1000 is out of range 0..999"),
    (lambda e, a: a.cam("gradcam", target=-1), "target class -1 is out of range 0..999"),
    (lambda e, a: a.cam("gradcam", target="7"), "target class must be an integer, not '7'"),
    (lambda e, a: e.class_index(1000), "class 1000 is out of range 0..999"),
    (lambda e, a: e.class_index("no such animal"), "no class is called 'no such animal'"),
    (lambda e, a: a.cam("clustercam", groups=10_000, layer="features.18"),
     "clustercam: groups must be between 2 and 64, not 10000"),
    (lambda e, a: a.cam("clustercam", groups=64, layer="features.1"),
     "clustercam: groups must be between 2 and the 16 channels of features.1, not 64"),
    (lambda e, a: a.cam("groupcam", groups=256, layer="features.2"),
     "groupcam: groups must be between 2 and the 24 channels of features.2, not 256"),
    (lambda e, a: a.cam("intgradcam", steps=0), "intgradcam: steps must be between 1 and 64, not 0"),
    (lambda e, a: a.cam("intgradcam", steps=-4), "intgradcam: steps must be between 1 and 64, not -4"),
    (lambda e, a: a.cam("intgradcam", steps=2.5), "intgradcam: steps must be a whole number, not 2.5"),
    (lambda e, a: a.cam("smoothgradcampp", samples=0), "smoothgradcampp: samples must be between 1 and 64, not 0"),
    (lambda e, a: a.cam("smoothgradcampp", sigma=-0.1), "smoothgradcampp: sigma must be between 0.0 and 1.0, not -0.1"),
    (lambda e, a: a.cam("smoothgradcampp", sigma=float("nan")), "sigma must be between 0.0 and 1.0, not nan"),
    (lambda e, a: a.cam("smoothgradcampp", sigma="0.1"), "smoothgradcampp: sigma must be a number, not '0.1'"),
    (lambda e, a: a.cam("intgradcam", steps="8"), "intgradcam: steps must be a number, not '8'"),
    (lambda e, a: a.cam("layercam", gamma=True), "layercam: gamma must be a number, not True"),
    (lambda e, a: a.cam("scorecam", align_corners="yes"), "scorecam: align_corners must be true or false, not 'yes'"),
    (lambda e, a: a.cam("scorecam", baseline="noise"), "scorecam: baseline must be one of zero, blur, not 'noise'"),
    (lambda e, a: a.cam("gradcam", steps=3), "method gradcam has no parameter steps; its parameters: none"),
    (lambda e, a: a.cam("gradcam", sign="both"), "sign must be one of positive, negative, not 'both'"),
    (lambda e, a: a.cam("groupcam", batch_size=0), "batch_size must be a whole number of at least 1, not 0"),
    (lambda e, a: a.cam("groupcam", precision="float8"), "precision must be float32 or bfloat16"),
    (lambda e, a: a.top_k("x"), "k must be a whole number between 1 and 1000, not 'x'"),
]


@pytest.mark.parametrize(("call", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_bad_request_names_the_valid_values_and_leaves_no_hooks(mobilenet, chelsea, call, message):
    analysis = mobilenet.analyze(chelsea)
    with pytest.raises(CamError) as caught:
        call(mobilenet, analysis)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text, "one line"
    assert hooks_left(mobilenet) == 0
    assert mobilenet.analyze(chelsea).cam("gradcam", target=282).saliency.max() == pytest.approx(1.0)
    assert hooks_left(mobilenet) == 0


FAST = [card.id for card in methods() if card.cost in ("instant", "fast")]


@pytest.mark.parametrize("method", FAST)
def test_black_image_gives_a_finite_map_with_a_note_where_blank(mobilenet, method):
    skip_unless_runs_on(mobilenet, get_method(method).card)
    black = Image.new("RGB", (320, 240))
    result = mobilenet.analyze(black).cam(method, groups=4) if "groups" in _params(method) else (
        mobilenet.analyze(black).cam(method)
    )
    assert np.isfinite(result.raw).all() and np.isfinite(result.saliency).all()
    assert result.saliency.min() >= 0.0 and result.saliency.max() <= 1.0
    if result.saliency.max() == result.saliency.min():
        assert result.note, f"{method}: a blank map needs a note"
    assert hooks_left(mobilenet) == 0


def _params(method: str) -> set[str]:
    return {p.name for p in get_method(method).card.params}


ZERO = torch.zeros(4, 3, 3)
ONES = torch.ones(4, 3, 3)
# every masked input (4 channels, kept inside and cut out) scored as the baseline and the image: two classes, 0 logits
FLAT_SCORES = MaskScores(ZERO, None, torch.zeros(8, 2), torch.zeros(2), torch.ones(4, dtype=torch.bool), 0.0, "",
                         torch.zeros(2))
BY_HAND = {
    "cam": dict(class_weights=torch.zeros(2, 4)),
    "gradcam": dict(gradients=ZERO),
    "gradcampp": dict(gradients=ZERO),
    "xgradcam": dict(gradients=ZERO),
    "hirescam": dict(gradients=ZERO),
    "eigencam": dict(),
    "eigengradcam": dict(gradients=ZERO),
    "smoothgradcampp": dict(path=PathInputs(torch.zeros(8, 4, 3, 3), torch.zeros(8, 4, 3, 3))),
    "intgradcam": dict(path=PathInputs(torch.zeros(16, 4, 3, 3), torch.zeros(16, 4, 3, 3), torch.zeros(4, 3, 3))),
    "layercam": dict(gradients=ZERO, stack=(LayerInputs("a", torch.zeros(4, 6, 6), torch.zeros(4, 6, 6)),
                                            LayerInputs("b", ZERO, ZERO))),
    "zoomcam": dict(gradients=ZERO, stack=(LayerInputs("a", torch.zeros(4, 6, 6), torch.zeros(4, 6, 6)),
                                           LayerInputs("b", ZERO, ZERO))),
    "gradpolycam": dict(gradients=ZERO, stack=(LayerInputs("a", torch.zeros(4, 6, 6), torch.zeros(4, 6, 6)),
                                               LayerInputs("b", ZERO, ZERO))),
    "polycam": dict(stack=(LayerInputs("a", torch.zeros(4, 6, 6), mask_scores=FLAT_SCORES),
                           LayerInputs("b", ZERO, mask_scores=FLAT_SCORES))),
}


@pytest.mark.parametrize("activations", [ZERO, ONES], ids=["zero activations", "constant activations"])
@pytest.mark.parametrize("method", sorted(BY_HAND))
def test_zero_gradients_and_flat_activations_give_finite_maps(method, activations):
    chosen = get_method(method)
    defaults = {p.name: p.default for p in chosen.card.params}
    inputs = dict(BY_HAND[method])
    if "stack" in inputs:
        last = inputs["stack"][-1]
        inputs["stack"] = (*inputs["stack"][:-1], LayerInputs("b", activations, last.gradients, last.mask_scores))
    out = chosen.apply(CamInputs(activations=activations, target=1, **inputs), **defaults)
    assert torch.isfinite(out.raw).all(), f"{method}: {out.raw}"
    if out.weights is not None:
        assert torch.isfinite(out.weights).all(), f"{method}: weights {out.weights}"


@pytest.mark.parametrize("method", [card.id for card in methods()])
def test_every_method_leaves_the_shared_model_as_it_was(mobilenet, chelsea, method):
    """Ablation-CAM, the guided methods and the rest run beside other users on one shared module: after a map its
    tensors are bit-identical, its modules and in-place flags unchanged, and no hook is left."""
    shared = mobilenet.model.module
    before, globals_before = module_state(shared), global_hooks()
    card = next(card for card in methods() if card.id == method)
    skip_unless_runs_on(mobilenet, card)
    layer = "features.10" if "mask_scores" in card.needs else None
    few = cheap_settings(card)  # RISE's thousands of passes, SS-CAM's samples: a few
    mobilenet.analyze(chelsea).cam(method, target=281, **{**few, "layer": layer})
    after = module_state(shared)
    assert after["types"] == before["types"] and after["inplace"] == before["inplace"]
    assert after["requires_grad"] == before["requires_grad"]
    changed = [name for name, tensor in before["tensors"].items() if not torch.equal(tensor, after["tensors"][name])]
    assert not changed, f"{method} changed {changed[:5]}"
    assert hook_counts(shared) == {} and global_hooks() == globals_before
