"""Vision transformers (ViT, DeiT, Swin) built offline with random weights: token layouts as patch-grid maps, every
method that is cheap on them, the class-token pitfall at the last block, and the Layout arithmetic by hand.

Score-CAM, Ablation-CAM, Group-CAM and Recipro-CAM are left out: on a ViT they take 5–80 s each (Recipro-CAM runs
196 full passes there; its token path is Deep Feature Factorization's, which stays in)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cam_core import CamError, Explainer, methods, read_specs
from cam_core.models.layouts import Layout
from tests.conftest import skip_unless_runs_on

SPECS = read_specs()
TRANSFORMERS = [name for name, spec in SPECS.items() if spec.layout == "tokens"]
SLOW = {card.id for card in methods() if card.cost == "slow"} | {"ablationcam", "groupcam", "reciprocam"}
SMALL = {"smoothgradcampp": {"samples": 2}, "intgradcam": {"steps": 2}, "clustercam": {"groups": 2},
         "cosinecam": {"groups": 2}}
METHODS = [card.id for card in methods() if card.id not in SLOW | {"cam"}]

# channels and patch grid at the default layer, and the finest grid of the multi-layer methods' default layers
SHAPES = {
    "vit_small_patch16_224": (384, (14, 14), (14, 14)),
    "deit_small_patch16_224": (384, (14, 14), (14, 14)),
    "swin_tiny_patch4_window7_224": (768, (7, 7), (28, 28)),
}


def test_the_table_has_the_three_transformers():
    assert set(TRANSFORMERS) == set(SHAPES)
    for name in TRANSFORMERS:
        assert SPECS[name].head == () and SPECS[name].source == "timm"


@pytest.fixture(scope="module", params=TRANSFORMERS)
def transformer(request, chelsea):
    """A randomly initialised transformer and its Analysis of chelsea (one model alive at a time)."""
    torch.manual_seed(0)
    explainer = Explainer(request.param, weights="random")
    return explainer, explainer.analyze(chelsea)


def test_random_weights_build_offline_and_let_gradients_through(transformer):
    explainer, analysis = transformer
    assert explainer.model.weights_source == "random initialisation"
    assert explainer.layout.name == "tokens" and not explainer.head_splits
    assert explainer.layout.prefix == (0 if explainer.name.startswith("swin") else 1)
    assert torch.isfinite(analysis.logits).all() and float(analysis.logits.std()) > 0
    # No weight matrix is left at zero (timm zero-initialises the heads), so the class score reaches the layers.
    for name, parameter in explainer.model.module.named_parameters():
        if parameter.dim() >= 2:
            assert torch.any(parameter), name
    assert torch.any(analysis.gradients())


def test_activations_are_read_as_a_patch_grid(transformer):
    explainer, analysis = transformer
    channels, grid, _ = SHAPES[explainer.name]
    assert tuple(analysis.activations().shape) == (channels, *grid)
    assert tuple(analysis.gradients(281).shape) == (channels, *grid)


@pytest.mark.parametrize("method", METHODS)
def test_every_cheap_method_gives_a_finite_map_of_the_right_shape(transformer, method, chelsea):
    explainer, analysis = transformer
    _, grid, finest = SHAPES[explainer.name]
    card = next(card for card in methods() if card.id == method)
    skip_unless_runs_on(explainer, card)  # the attention methods on ViT and DeiT only
    result = analysis.cam(method, **SMALL.get(method, {}))
    expected = {"layer": grid, "finest layer": finest, "input": (224, 224)}[card.resolution]
    assert result.raw.shape == expected, (method, result.raw.shape)
    assert np.isfinite(result.raw).all()
    assert result.saliency.shape == (chelsea.height, chelsea.width) and np.isfinite(result.saliency).all()
    assert 0.0 <= result.saliency.min() and result.saliency.max() <= 1.0
    if "guided_gradients" in card.needs:  # the guided methods draw an RGB gradient picture
        assert result.rgb.shape == (3, 224, 224) and np.abs(result.rgb).max() > 0
        assert result.note == "", "the transformer's GELUs must be guided"


def test_vanilla_cam_is_refused_clearly(transformer):
    _, analysis = transformer
    with pytest.raises(CamError, match="vanilla CAM is not defined .*use Grad-CAM"):
        analysis.cam("cam")


def has_class_token(explainer: Explainer) -> bool:
    return explainer.layout.prefix == 1


def test_after_the_last_attention_only_the_class_token_reaches_the_head(transformer):
    explainer, analysis = transformer
    default = analysis.cam("gradcam")
    assert torch.any(analysis.gradients()) and default.note == "" and default.saliency.max() == pytest.approx(1.0)
    if not has_class_token(explainer):
        return  # Swin pools all its tokens: every layer reaches the head
    assert explainer.default_layer == "blocks.11.norm1"
    late = analysis.gradients(layer="blocks.11.norm2")
    assert tuple(late.shape) == (384, 14, 14)
    assert not torch.any(late), "patch tokens after the last attention cannot reach the class token"
    result = analysis.cam("gradcam", layer="blocks.11.norm2")
    assert "zero everywhere" in result.note and "class token" in result.note and "blocks.11.norm1" in result.note
    assert not result.saliency.any()


def test_multi_layer_methods_on_the_pyramid(transformer):
    """ViT/DeiT layers all share one 14×14 grid, so Gradient Poly-CAM has nothing to refine; Swin's stages have
    their own."""
    explainer, analysis = transformer
    pyramid = explainer.model.pyramid()
    grids = [tuple(analysis.activations(layer).shape[1:]) for layer in pyramid]
    polycam, zoomcam = analysis.cam("gradpolycam"), analysis.cam("zoomcam")
    assert polycam.layers == zoomcam.layers == tuple(pyramid)
    if has_class_token(explainer):
        assert set(grids) == {(14, 14)}
        assert "nothing to refine" in polycam.note and polycam.raw.shape == (14, 14)
    else:
        assert grids == [(28, 28), (14, 14), (7, 7)]
        assert polycam.raw.shape == zoomcam.raw.shape == (28, 28) and polycam.note == ""


def test_a_patch_lands_on_its_own_cell_of_the_map(transformer):
    """Before the first attention every token is on its own: changing one patch of the input changes the map at the
    first block's norm1 only at that patch's cell (row-major grid, class token dropped; Swin's channels-last map
    permuted)."""
    explainer, _ = transformer
    if has_class_token(explainer):
        layer, patch, grid = "blocks.0.norm1", 16, (14, 14)
    else:
        layer, patch, grid = "layers.0.blocks.0.norm1", 4, (56, 56)
    plain = torch.zeros(1, 3, 224, 224)
    marked = plain.clone()
    marked[..., patch * 3 : patch * 4, patch * 5 : patch * 6] = 1.0  # patch row 3, column 5
    found = explainer.run(torch.cat([plain, marked]), [layer])
    maps = explainer.layout.to_map(found.activations[layer].detach())
    changed = (maps[1] - maps[0]).abs().amax(dim=0)
    assert changed.shape == grid
    assert float(changed[3, 5]) > 0.1
    changed[3, 5] = 0.0
    assert not torch.any(changed)


def test_block_and_stage_outputs_read_as_channel_maps(transformer):
    explainer, analysis = transformer
    layer, shape = ("blocks.11", (384, 14, 14)) if has_class_token(explainer) else ("layers.3", (768, 7, 7))
    assert tuple(analysis.activations(layer).shape) == shape


# ----------------------------------------------------------------------------------------- Layout by hand


def test_tokens_to_map_drops_the_class_token_and_fills_the_grid_row_by_row():
    channels = 3
    tokens = torch.arange(5 * channels, dtype=torch.float32).reshape(1, 5, channels)  # token t, channel c = 3t + c
    grid = Layout("tokens", prefix=1).to_map(tokens)
    assert grid.shape == (1, channels, 2, 2)
    for i in range(4):
        for c in range(channels):
            assert float(grid[0, c, i // 2, i % 2]) == 3 * (i + 1) + c
    assert not torch.any(grid == tokens[0, 0, 0])  # the class token's values (0, 1, 2) are gone
    assert torch.equal(Layout("tokens", prefix=1, grid=(2, 2)).to_map(tokens), grid)
    # A grid that does not fit the token count falls back to the square one (Swin's stages).
    assert torch.equal(Layout("tokens", prefix=1, grid=(14, 14)).to_map(tokens), grid)
    wide = Layout("tokens", prefix=1, grid=(1, 4)).to_map(tokens)
    assert wide.shape == (1, channels, 1, 4) and float(wide[0, 0, 0, 3]) == 12.0


def test_a_token_count_that_is_no_grid_is_refused():
    with pytest.raises(CamError, match="6 tokens; with 1 class token"):
        Layout("tokens", prefix=1).to_map(torch.zeros(1, 6, 2))


def test_tokens_to_map_keeps_gradients_in_place():
    tokens = torch.randn(1, 5, 3, requires_grad=True)
    grid = Layout("tokens", prefix=1).to_map(tokens)
    (grad,) = torch.autograd.grad(grid[0, 2, 1, 0], tokens)
    expected = torch.zeros(1, 5, 3)
    expected[0, 1 + 2, 2] = 1.0  # row 1, column 0 = patch token 2, after the class token
    assert torch.equal(grad, expected)


def test_zero_channels_zeroes_only_patch_tokens():
    tokens = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3) + 1.0
    out = Layout("tokens", prefix=1).zero_channels(tokens, torch.tensor([0, 1]), torch.tensor([2, 0]))
    assert torch.equal(tokens, torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3) + 1.0), "a copy"
    expected = tokens.clone()
    expected[0, 1:, 2] = 0.0
    expected[1, 1:, 0] = 0.0
    assert torch.equal(out, expected)
    assert float(out[0, 0, 2]) == float(tokens[0, 0, 2]) != 0.0  # the class token keeps its value
    swin_like = Layout("tokens", prefix=0).zero_channels(tokens, torch.tensor([1]), torch.tensor([1]))
    assert not torch.any(swin_like[1, :, 1]) and torch.equal(swin_like[0], tokens[0])


def test_nhwc_maps_are_permuted():
    values = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(1, 2, 3, 4)  # (B, H, W, C)
    grid = Layout("nhwc").to_map(values)
    assert grid.shape == (1, 4, 2, 3) and float(grid[0, 3, 1, 2]) == float(values[0, 1, 2, 3])
    zeroed = Layout("nhwc").zero_channels(values, torch.tensor([0]), torch.tensor([1]))
    assert not torch.any(zeroed[0, :, :, 1]) and torch.equal(zeroed[..., 0], values[..., 0])
