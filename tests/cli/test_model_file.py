"""python -m cam_core explain --model-file: a user's model saved as the dashboard's models.yaml fragment explains
from the command line with the same logits and maps as in the API."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from safetensors.torch import save

from cam_core.engine.own_models import build_own_model, spec_fragment
from cam_core.models.specs import Preprocessing
from tests.conftest import run_cli

SMALL = Preprocessing(96, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "bilinear")


@pytest.fixture(scope="module")
def saved(tmp_path_factory, chelsea) -> dict:
    """A random 3-class resnet18 saved as weights + fragment (the weights by a path relative to the fragment) and
    a photo, with the map the API gives."""
    folder = tmp_path_factory.mktemp("own")
    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in torchvision.models.resnet18(num_classes=3).state_dict().items()}
    data = save(state)
    (folder / "mine.safetensors").write_bytes(data)
    own = build_own_model("torchvision", "resnet18", data, "mine.safetensors", "cat\ndog\nbird\n", preprocessing=SMALL)
    (folder / "mine.yaml").write_text(spec_fragment(own.spec, "mine.safetensors"))
    image = folder / "photo.png"
    Image.fromarray(np.asarray(chelsea)).resize((150, 100)).save(image)
    expected = own.explainer.analyze(Image.open(image)).cam("gradcam", target=1)
    return {"folder": folder, "image": str(image), "own": own, "expected": expected}


def test_explain_with_the_fragment_gives_the_apis_map(saved, capsys):
    out = saved["folder"] / "map.npz"
    code = run_cli(["explain", saved["image"], "--model-file", str(saved["folder"] / "mine.yaml"), "--target", "dog",
                    "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    written = np.load(out)
    assert int(written["target"]) == 1
    np.testing.assert_allclose(written["saliency"], saved["expected"].saliency, atol=1e-6)
    assert "dog" in capsys.readouterr().out


def test_a_fragment_without_its_weights_file_says_so(saved, tmp_path, capsys):
    fragment = tmp_path / "moved.yaml"
    fragment.write_text((saved["folder"] / "mine.yaml").read_text())
    code = run_cli(["explain", saved["image"], "--model-file", str(fragment), "--out", str(tmp_path / "x.npz")])
    assert code == 2
    assert "mine.safetensors not found" in capsys.readouterr().err
