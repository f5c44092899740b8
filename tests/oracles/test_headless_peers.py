"""FEM, KPCA-CAM and Deep Feature Factorization against pytorch-grad-cam 1.5.7 (FEM, KPCA_CAM,
DeepFeatureFactorization) on both embedded models and three real photos, with our parameters set to the peer's
definition (the cards' Peer entries). Recipro-CAM has no peer: neither pytorch-grad-cam nor torchcam implement it.

- FEM: the peer weights the activations by the share of each channel's positions above mean + 2σ (its
  get_cam_image); ours with aggregate="activations" is that; the signed maps are compared.
- KPCA-CAM: the peer's get_2d_projection_kernel (sigmoid kernel, γ = 1/C, channel-centred); ours with
  sign_rule="as returned" keeps scikit-learn's sign, so the signed maps are compared as they are.
- DFF: the peer subtracts each channel's minimum before NMF (random start, seed 0) and adds it back to the concepts'
  vectors, which it feeds to the classifier as they come out; ours with shift="channel minimum", scale="as
  factorised" is that. Compared: each concept's map (the peer's, at the input's size), each concept's class
  probabilities, and our map of three classes against the peer's concept maps weighted by the peer's probabilities.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pytorch_grad_cam
import torch
from PIL import Image
from pytorch_grad_cam.feature_factorization.deep_feature_factorization import DeepFeatureFactorization
from pytorch_grad_cam.feature_factorization.deep_feature_factorization import dff as peer_dff
from skimage import data

from cam_core import methods
from cam_core.inputs.concepts import ConceptSpec
from tests.conftest import pearson

R_MIN = 0.99
DOG = Path("/usr/share/darknet/data/dog.jpg")
PHOTOS = ("chelsea", "coffee", "dog")
PEERS = {card.id: dict(peer.params) for card in methods() for peer in card.peers
         if card.id in ("fem", "kpcacam", "dff")}
OTHER = 717  # pickup: a class absent from chelsea and coffee, the second object of dog.jpg


def photo(name: str) -> np.ndarray:
    if name == "dog":
        if not DOG.exists():
            pytest.skip("Debian package darknet (dog.jpg) is not installed")
        return np.asarray(Image.open(DOG).convert("RGB"))
    return getattr(data, name)()


def peer_projection(peer_class, model, layer: str, model_input: torch.Tensor, **options) -> np.ndarray:
    """The signed map the peer's get_cam_image returns at the layer's resolution (before its ReLU and scaling)."""
    cam = peer_class(model=model, target_layers=[model.get_submodule(layer)], **options)
    caught = {}
    original = cam.get_cam_image

    def spy(*args, **kwargs):
        caught["signed"] = np.array(original(*args, **kwargs)[0], dtype=np.float64)
        return original(*args, **kwargs)

    cam.get_cam_image = spy
    try:
        cam(input_tensor=model_input.clone(), targets=None)
    finally:
        cam.activations_and_grads.release()
    return caught["signed"]


@pytest.mark.parametrize("image", PHOTOS)
@pytest.mark.parametrize(("method", "peer"), (("fem", "FEM"), ("kpcacam", "KPCA_CAM")))
def test_class_agnostic_maps_match_pytorch_grad_cam(explainer, peer_model, image, method, peer):
    analysis = explainer.analyze(photo(image))
    ours = analysis.cam(method, **PEERS[method]).raw
    theirs = peer_projection(getattr(pytorch_grad_cam, peer), peer_model, explainer.default_layer, analysis.input)
    r = pearson(ours, theirs, f"{explainer.name} {image} {method}")
    assert r >= R_MIN, f"{explainer.name} {image} {method}: r with pytorch-grad-cam's {peer} is {r:.4f}"


@pytest.mark.parametrize("image", PHOTOS)
def test_kpcacam_sign_rule_only_flips_the_peers_map(explainer, peer_model, image):
    analysis = explainer.analyze(photo(image))
    fixed = analysis.cam("kpcacam").raw
    returned = analysis.cam("kpcacam", sign_rule="as returned").raw
    assert np.allclose(fixed, returned) or np.allclose(fixed, -returned)
    assert pearson(fixed, analysis.activations().mean(dim=0).numpy(), image) > 0


def peer_concepts(explainer, model, model_input: torch.Tensor, k: int):
    """The peer's concept vectors (C, k), its concept maps at the layer's resolution (k, h, w: its dff() on the
    activations its DeepFeatureFactorization caught, before it scales them to [0, 1] and the input's size) and its
    concept probabilities (k, classes), with the model's own classifier run on the concepts."""
    classifier = model.get_submodule(explainer.spec.head[-1])
    factorisation = DeepFeatureFactorization(model, model.get_submodule(explainer.default_layer),
                                             computation_on_concepts=classifier)
    try:
        vectors, _, outputs = factorisation(model_input.clone(), k)
        caught = factorisation.activations_and_grads.activations[0].numpy()
    finally:
        factorisation.activations_and_grads.release()
    again, maps = peer_dff(caught.copy(), n_components=k)
    np.testing.assert_allclose(again, vectors, rtol=1e-5, atol=1e-6)
    return vectors, maps[0], torch.softmax(torch.from_numpy(outputs), dim=1)


@pytest.mark.parametrize("image", PHOTOS)
def test_dff_concepts_and_maps_match_pytorch_grad_cam(explainer, peer_model, image):
    analysis = explainer.analyze(photo(image))
    params = PEERS["dff"]
    spec = ConceptSpec(explainer.default_layer, 5, 0, params["shift"], params["scale"])
    found = analysis.concepts(spec)
    vectors, maps, probabilities = peer_concepts(explainer, peer_model, analysis.input, spec.k)
    for j in range(spec.k):
        what = f"{explainer.name} {image} concept {j}"
        assert pearson(found.maps[j].numpy(), maps[j], what) >= R_MIN, what
        assert pearson(found.vectors[j].numpy(), vectors[:, j], what + " vector") >= R_MIN, what
    assert torch.allclose(found.probabilities, probabilities.float(), atol=1e-3), "concept probabilities differ"
    for target in (analysis.target(None), OTHER, int(torch.argmin(analysis.logits))):
        ours = analysis.cam("dff", target=target, concepts=spec.k, **params).raw
        theirs = np.einsum("k,khw->hw", probabilities[:, target].numpy(), maps)
        what = f"{explainer.name} {image} dff class {target}"
        r = pearson(ours, theirs, what)
        assert r >= R_MIN, f"{what}: r with the peer's concepts weighted by the peer's probabilities is {r:.4f}"
