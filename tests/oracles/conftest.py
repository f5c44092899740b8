"""The oracles' shared set-up: each embedded model's session Explainer (tests.conftest's mobilenet and lite0) in
turn, and the peer's own trainable copy of its network (the shared one is never handed to a peer)."""

from __future__ import annotations

import copy

import pytest
from torch import nn

from cam_core import Explainer

MODELS = ("mobilenet_v2", "efficientnet_lite0")
SESSION_FIXTURES = {"mobilenet_v2": "mobilenet", "efficientnet_lite0": "lite0"}


def trainable_copy(module: nn.Module) -> nn.Module:
    """A deep copy of module with parameters that require grad (the peers need layer outputs that require grad)."""
    model = copy.deepcopy(module)
    model.requires_grad_(True)
    return model.eval()


@pytest.fixture(scope="module", params=MODELS)
def explainer(request) -> Explainer:
    """Each embedded model's session Explainer in turn."""
    return request.getfixturevalue(SESSION_FIXTURES[request.param])


@pytest.fixture(scope="module")
def peer_model(explainer: Explainer) -> nn.Module:
    """The peer's own copy of the model, with parameters that require grad; the shared one is never touched."""
    return trainable_copy(explainer.model.module)
