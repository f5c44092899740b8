"""The layer finder: on the hand-written models.yaml entries it finds their layers, and on every torchvision
classification architecture and a spread of timm families (random weights) it gives a working Grad-CAM and
Score-CAM, or a clear message."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from unittest import mock

import numpy as np
import pytest
import torch
import torchvision.models as tvm
from PIL import Image

from cam_core import CamError, Explainer, read_specs
from cam_core.engine.own_models import build_own_model
from cam_core.models.finder import FoundLayers, find_layers
from cam_core.models.specs import (
    ModelSpec,
    Preprocessing,
    _build_architecture,
    load_model,
    loaded_model,
    resolve_head,
)
from cam_core.sharing.model_budget import ModelBudget, model_cost, own_models_limit

SPECS = read_specs()
TIMM = ["resnet18", "efficientnet_b0", "convnext_atto", "regnetx_002", "mobilenetv3_small_050",
        "vit_tiny_patch16_224", "deit_tiny_patch16_224", "swin_tiny_patch4_window7_224"]
SWEEP = [f"torchvision:{name}" for name in tvm.list_models(module=tvm)] + [f"timm:{name}" for name in TIMM]
FIXED_SIZE = ("vit_", "maxvit", "deit_", "swin_tiny")  # built for 224×224 inputs only
SMALL = 64  # the other architectures run on a 64×64 input: every layer's resolution shrinks, the split does not
AUX = ("googlenet", "inception_v3")
INITS = ("uniform_", "normal_", "trunc_normal_", "constant_", "zeros_", "ones_", "kaiming_uniform_",
         "kaiming_normal_", "xavier_uniform_")
# Larger ones are checked on the meta device (shapes only), to keep the suite short; CAM_FULL_SWEEP=1 runs them for
# real too (about 5 minutes more here: vit_l_16 alone takes a minute).
REAL_PARAMETERS = 10**12 if os.environ.get("CAM_FULL_SWEEP") == "1" else 30_000_000


def _spec(source: str, architecture: str, **kwargs) -> ModelSpec:
    return ModelSpec(name=architecture, title=architecture, source=source, architecture=architecture, weights={},
                     preprocessing=Preprocessing(224, (0.5,) * 3, (0.5,) * 3), labels=(), target_layer="",
                     head=(), kwargs=kwargs)


def _input_size(architecture: str) -> int:
    if architecture == "inception_v3":
        return 96  # its stem needs at least 75×75
    return 224 if architecture.startswith(FIXED_SIZE) else SMALL


def _meta_module(source: str, architecture: str) -> torch.nn.Module:
    """The architecture on the meta device (no tensors allocated); a builder that computes its widths with tensors
    (RegNet) is built on the CPU without initialising its weights, then moved there."""
    spec = _spec(source, architecture, **({"init_weights": False} if architecture in AUX else {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.device("meta"):
                return _build_architecture(spec)
        except (NotImplementedError, RuntimeError):
            with contextlib.ExitStack() as stack:
                for init in INITS:
                    stack.enter_context(mock.patch(f"torch.nn.init.{init}", lambda tensor, *a, **k: tensor))
                return _build_architecture(spec).to("meta")


@pytest.fixture(scope="module")
def picture() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8))


@pytest.mark.parametrize("name", [n for n, s in SPECS.items() if s.source in ("torchvision", "timm")])
def test_on_the_hand_written_entries_it_finds_a_head_that_gives_the_logits_at_the_same_resolution(name):
    spec = SPECS[name]
    torch.manual_seed(0)
    module = load_model(spec, weights="random").module
    size = spec.preprocessing.input_size
    found = find_layers(module, size)
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        logits = module(x)
    shapes = {}
    hooks = [module.get_submodule(layer).register_forward_hook(
        lambda _m, _i, out, layer=layer: shapes.setdefault(layer, out)) for layer in (found.target_layer,
                                                                                       spec.target_layer)]
    with torch.no_grad():
        module(x)
    for hook in hooks:
        hook.remove()
    ours, theirs = (_grid(shapes[layer], layout) for layer, layout in ((found.target_layer, found.layout),
                                                                        (spec.target_layer, spec.layout)))
    assert ours == theirs, f"{name}: finder's {found.target_layer} is {ours}, models.yaml's {spec.target_layer} " \
                           f"{theirs}"
    if spec.head:
        assert found.head, found.notes
    if found.head:
        head = resolve_head(_with(spec, found), module)
        with torch.no_grad():
            np.testing.assert_allclose(head(shapes[found.target_layer]).numpy(), logits.numpy(), atol=1e-5)
    assert found.layers[-1] == found.target_layer and found.pyramid[-1:] in ((), (found.target_layer,))


def _with(spec: ModelSpec, found) -> ModelSpec:
    return dataclasses.replace(spec, target_layer=found.target_layer, head=found.head, layers=found.layers,
                               pyramid=found.pyramid, layout=found.layout)


def _grid(output: torch.Tensor, layout: str) -> tuple[int, ...]:
    if output.dim() == 3:
        return (round((output.shape[1] - 1) ** 0.5),) * 2
    return tuple(output.shape[2:]) if layout == "nchw" else tuple(output.shape[1:3])


@pytest.mark.parametrize("architecture", SWEEP)
def test_every_architecture_gives_a_grad_cam_and_a_score_cam_or_a_clear_message(architecture, picture):
    source, name = architecture.split(":")
    size = _input_size(name)
    meta = _meta_module(source, name)
    parameters = sum(p.numel() for p in meta.parameters())
    found = find_layers(meta, size)
    assert found.target_layer and found.layers[-1] == found.target_layer and found.classes == 1000, found
    if model_cost(4 * parameters) > own_models_limit():
        with pytest.raises(CamError, match="GiB"):  # vit_h_14, regnet_y_128gf: over the bound on users' models
            ModelBudget().check(model_cost(4 * parameters), f"Your {name}")
        return
    if parameters > REAL_PARAMETERS:
        pytest.skip(f"{name}: {parameters:,} parameters; the real run keeps to models under {REAL_PARAMETERS:,} "
                    "(its layers were found on meta; CAM_FULL_SWEEP=1 runs it)")
    torch.manual_seed(0)
    prep = Preprocessing(size, (0.5,) * 3, (0.5,) * 3)
    try:
        own = build_own_model(source, name, None, "", None, preprocessing=prep)
    except CamError as exc:
        pytest.fail(f"{name}: {exc}")
    analysis = own.explainer.analyze(picture)
    for method, params in (("gradcam", {}), ("scorecam", {"top_channels": 0.02})):
        result = analysis.cam(method, **params)
        saliency, raw = np.asarray(result.saliency), np.asarray(result.raw)
        assert saliency.shape == (picture.height, picture.width), (method, saliency.shape)
        assert np.all(np.isfinite(saliency)) and np.all(np.isfinite(raw)), method
        assert np.ptp(raw) > 0, f"{name} {method}: a constant map ({own.notes})"  # random weights: ReLU may zero it


class _ScaledLogits(torch.nn.Module):
    """A small CNN whose forward scales the logits outside any module: no chain of modules gives them."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                            torch.nn.Conv2d(8, 16, 3, stride=2, padding=1), torch.nn.ReLU())
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(16, 4)

    def forward(self, x):
        return 2.0 * self.fc(torch.flatten(self.pool(self.features(x)), 1))


def _explainer(module: torch.nn.Module, size: int) -> tuple[FoundLayers, Explainer]:
    """The finder's layers of module, and an Explainer of module with them."""
    found = find_layers(module, size)
    spec = dataclasses.replace(_spec("timm", "own"), target_layer=found.target_layer,
                               head=found.head, layers=found.layers, pyramid=found.pyramid, layout=found.layout,
                               labels=tuple(f"class {i}" for i in range(found.classes)),
                               preprocessing=Preprocessing(size, (0.5,) * 3, (0.5,) * 3))
    return found, Explainer.from_model(loaded_model(spec, module, "random initialisation"))


def test_where_no_head_gives_the_logits_the_model_runs_full_passes_and_says_so(picture):
    torch.manual_seed(0)
    found, explainer = _explainer(_ScaledLogits(), 32)
    assert (found.target_layer, found.head) == ("features.3", ())
    assert any("full passes" in note for note in found.notes)
    analysis = explainer.analyze(picture)
    assert np.ptp(analysis.cam("ablationcam").raw) > 0
    with pytest.raises(CamError, match="vanilla CAM"):
        analysis.cam("cam")


def test_torchvisions_vision_transformer_drops_its_class_token(picture):
    torch.manual_seed(0)
    vit = tvm.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32,
                                num_classes=3)
    torch.nn.init.normal_(vit.heads.head.weight, std=0.02)  # torchvision starts it at zero: no gradient would flow
    found, explainer = _explainer(vit, 32)
    assert (found.target_layer, found.layout, found.head) == ("encoder.layers.encoder_layer_1.ln_1", "tokens", ())
    assert explainer.layout.prefix == 1
    result = explainer.analyze(picture).cam("gradcam")
    assert result.raw.shape == (4, 4) and np.ptp(result.raw) > 0
