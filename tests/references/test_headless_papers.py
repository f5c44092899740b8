"""Recipro-CAM, FEM, KPCA-CAM and Deep Feature Factorization against their papers and the authors' code, written
in plain torch on the reference copy of the network (never cam_core's method functions): the three two-object photos,
three classes each for the class-specific methods, one map per photo for the class-agnostic ones; Pearson r ≥ 0.99
between the raw maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.decomposition import NMF

from tests.conftest import TWO_OBJECT_PHOTOS, fresh_analysis, two_object_photo
from tests.references.conftest import CLASS_KINDS, MEASURED, R_MIN, check, forward, ours, pearson

FULL_PASS_LAYER = "features.16"  # 160 channels at 7×7: not followed by the head, so Recipro-CAM runs full passes


def head(ref, features: torch.Tensor) -> torch.Tensor:
    """mobilenet_v2's head after features.18: global average pooling, then the classifier."""
    return ref.model.classifier(F.adaptive_avg_pool2d(features, 1).flatten(1))


def activations(ref, layer: str) -> torch.Tensor:
    def compute():
        with torch.no_grad():
            _, caught = forward(ref.model, ref.input, (layer,))
        return caught[layer][0].detach()

    return ref.remember(("acts", layer), compute)


def recipro_features(acts: torch.Tensor, gaussian: bool) -> torch.Tensor:
    """Byun & Lee's mosaic features, as their code builds them one position at a time: copy b keeps position
    b = i·w + j only, its feature vector times the 3×3 Gaussian kernel around (i, j), cut at the border."""
    kernel = torch.tensor([[1 / 16, 1 / 8, 1 / 16], [1 / 8, 1 / 4, 1 / 8], [1 / 16, 1 / 8, 1 / 16]])
    channels, height, width = acts.shape
    copies = torch.zeros(height * width, channels, height, width)
    for i in range(height):
        for j in range(width):
            b = i * width + j
            if not gaussian:
                copies[b, :, i, j] = acts[:, i, j]
                continue
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    if 0 <= i + di < height and 0 <= j + dj < width:
                        copies[b, :, i + di, j + dj] = acts[:, i, j] * kernel[di + 1, dj + 1]
    return copies


def ref_reciprocam(ref, target: int, layer: str, gaussian: bool = True) -> torch.Tensor:
    """The target's softmax probability for each position's mosaic feature, through the head (features.18) or, at
    another layer, through the rest of the network with the layer's output replaced by a forward hook."""
    acts = activations(ref, layer)

    def compute():
        copies = recipro_features(acts, gaussian)
        with torch.no_grad():
            if layer == "features.18":
                return torch.softmax(head(ref, copies), dim=1)
            hook = dict(ref.model.named_modules())[layer].register_forward_hook(lambda m, i, o: copies)
            try:
                return torch.softmax(ref.model(ref.input.repeat(len(copies), 1, 1, 1)), dim=1)
            finally:
                hook.remove()

    probabilities = ref.remember(("recipro", layer, gaussian), compute)
    return probabilities[:, target].reshape(acts.shape[1:])


def ref_fem(ref, layer: str, k: float = 2.0) -> torch.Tensor:
    """Fuad et al. 2020, as the authors' code: A > mean + k·std per channel (numpy's std, over the positions), each
    binary map weighted by its channel's mean activation, summed over the channels."""
    acts = activations(ref, layer).double()
    means = acts.mean(dim=(1, 2))
    stds = ((acts - means[:, None, None]) ** 2).mean(dim=(1, 2)).sqrt()
    binary = (acts > (means + k * stds)[:, None, None]).double()
    return (means[:, None, None] * binary).sum(0)


def ref_kpcacam(ref, layer: str) -> torch.Tensor:
    """Karmani et al. 2024 (the authors' implementation): kernel PCA of the channel-centred positions × channels
    matrix with the sigmoid kernel tanh(⟨x, y⟩ / C + 1), the kernel matrix centred in feature space, the positions'
    coordinates on its first eigenvector × √λ₁."""
    acts = activations(ref, layer).double()
    matrix = acts.reshape(acts.shape[0], -1).T
    matrix = matrix - matrix.mean(dim=0)
    kernel = torch.tanh(matrix @ matrix.T / matrix.shape[1] + 1.0)
    n = kernel.shape[0]
    centring = torch.eye(n, dtype=kernel.dtype) - 1.0 / n
    values, vectors = torch.linalg.eigh(centring @ kernel @ centring)
    return (vectors[:, -1] * values[-1].sqrt()).reshape(acts.shape[1:])


def ref_dff(ref, target: int, layer: str, k: int = 5, seed: int = 0) -> torch.Tensor:
    """Collins et al. 2018: NMF of the non-negative channels × positions activations, A ≈ W H (scikit-learn's solver,
    random start from seed); each concept's map scaled to a peak of 1 and its vector by the same factor, the
    vector's class probabilities through the head (global average pooling of the vector at every position is the
    vector), the concepts' maps weighted by their probability for the target and summed."""
    acts = activations(ref, layer)

    def compute():
        matrix = acts.reshape(acts.shape[0], -1).clamp(min=0).numpy().astype(np.float32)
        model = NMF(n_components=k, init="random", random_state=seed, max_iter=200)
        vectors = torch.from_numpy(model.fit_transform(matrix))
        maps = torch.from_numpy(model.components_)
        peaks = maps.amax(dim=1)
        maps, vectors = maps / peaks[:, None], vectors * peaks[None, :]
        with torch.no_grad():
            probabilities = torch.softmax(ref.model.classifier(vectors.T), dim=1)
        return maps, probabilities

    maps, probabilities = ref.remember(("dff", layer, k, seed), compute)
    return (probabilities[:, target, None] * maps).sum(0).reshape(acts.shape[1:])


@pytest.mark.parametrize("kind", CLASS_KINDS)
@pytest.mark.parametrize("name", TWO_OBJECT_PHOTOS)
@pytest.mark.parametrize("mask", ("gaussian", "one-hot"))
def test_reciprocam_follows_the_authors_code(mobilenet, references, name, kind, mask):
    ref = references[name]
    target = ref.classes[kind]
    result = ours(mobilenet, name, "reciprocam", target, mask=mask)
    check(result.raw, ref_reciprocam(ref, target, mobilenet.default_layer, mask == "gaussian"),
          f"reciprocam {name} {kind}")


def test_reciprocam_through_the_whole_network_where_the_head_does_not_split(mobilenet, references):
    """49 full passes in batches of 8 on a fresh Analysis: the map so far arrives after each batch but the last."""
    ref = references["dog.jpg"]
    target = ref.classes["second"]
    shown = []
    result = fresh_analysis(mobilenet, two_object_photo("dog.jpg")).cam(
        "reciprocam", target=target, layer=FULL_PASS_LAYER, partial=shown.append)
    assert len(shown) == 6 and all(np.isfinite(item.raw).all() for item in shown)
    assert not np.array_equal(shown[0].raw, result.raw)
    check(result.raw, ref_reciprocam(ref, target, FULL_PASS_LAYER), f"reciprocam {FULL_PASS_LAYER}:dog.jpg second")


@pytest.mark.parametrize("name", TWO_OBJECT_PHOTOS)
def test_fem_follows_the_authors_code(mobilenet, references, name):
    ref = references[name]
    result = ours(mobilenet, name, "fem", ref.classes["top"])
    check(result.raw, ref_fem(ref, mobilenet.default_layer), f"fem {name} top")


@pytest.mark.parametrize("name", TWO_OBJECT_PHOTOS)
def test_kpcacam_follows_the_authors_implementation(mobilenet, references, name):
    """Class-agnostic: one map per photo; an eigenvector's sign is arbitrary, so |r| is compared, and ours must rise
    with the channels' mean activation."""
    ref = references[name]
    result = ours(mobilenet, name, "kpcacam", ref.classes["top"])
    r = pearson(result.raw, ref_kpcacam(ref, mobilenet.default_layer).numpy(), name)
    MEASURED.setdefault("kpcacam", []).append(abs(r))
    assert abs(r) >= R_MIN, f"kpcacam {name}: |r| with the kernel PCA re-implementation is {abs(r):.4f}"
    mean_map = activations(ref, mobilenet.default_layer).mean(dim=0).numpy()
    assert pearson(result.raw, mean_map, f"kpcacam {name} sign") > 0


@pytest.mark.parametrize("kind", CLASS_KINDS)
@pytest.mark.parametrize("name", TWO_OBJECT_PHOTOS)
def test_dff_follows_its_paper(mobilenet, references, name, kind):
    ref = references[name]
    target = ref.classes[kind]
    result = ours(mobilenet, name, "dff", target)
    check(result.raw, ref_dff(ref, target, mobilenet.default_layer), f"dff {name} {kind}")


REFERENCED = {"reciprocam", "fem", "kpcacam", "dff"}
