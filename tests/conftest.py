"""Shared fixtures and helpers of every test folder: the embedded models and real photos (all offline), the
dashboard's own Explainer, map comparisons, pass counting, the shared model's state, the CLI and the AppTest
dashboard."""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from sklearn.datasets import load_sample_images

from cam_core import Explainer, methods
from cam_core.engine.analysis import Analysis
from cam_core.inputs.images import image_key, load_image, to_input

# One intra-op thread for torch, as the dashboard runs (pages' explainer sets it process-wide on its first use, so
# without this the thread count of every later test would depend on the test order). On a shared 2-core machine two
# intra-op threads spin against other processes: a forward pass of mobilenet_v2 then takes 0.1-2 s instead of 40 ms.
# With one thread, the masked-input passes run two batches side by side (cam_core.passes.inference.batch_workers).
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent
APP_TIMEOUT = 120  # seconds an AppTest run may take
DARKNET = Path("/usr/share/darknet/data")
# Photos with two objects, and the ImageNet class of the second (the first is the model's top class).
TWO_OBJECT_PHOTOS = {"dog.jpg": "pickup", "person.jpg": "sorrel", "kite.jpg": "parachute"}


@pytest.fixture(scope="session")
def mobilenet() -> Explainer:
    return Explainer("mobilenet_v2")


@pytest.fixture(scope="session")
def lite0() -> Explainer:
    return Explainer("efficientnet_lite0")


@pytest.fixture(scope="session")
def dashboard_explainer() -> Explainer:
    """The dashboard's own cached mobilenet_v2 Explainer (the pages' st.cache_resource one): tests of what a page
    shows read the same Analysis as the page in AppTest, so every model pass runs once."""
    try:
        from pages.ui.resources import DEFAULT_MODEL, explainer
    except ImportError:  # the pages' layout before pages/ui/
        from pages import DEFAULT_MODEL, explainer
    return explainer(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def chelsea() -> Image.Image:
    return Image.fromarray(data.chelsea())


@pytest.fixture(scope="session")
def coffee() -> Image.Image:
    return Image.fromarray(data.coffee())


@pytest.fixture(scope="session")
def dog_photo() -> Image.Image:
    path = DARKNET / "dog.jpg"
    if not path.exists():
        pytest.skip("Debian package darknet (dog.jpg) is not installed")
    return Image.open(path).convert("RGB")


@pytest.fixture(scope="session")
def eight_photos() -> list[Image.Image]:
    """Eight different real photos: scikit-image's four, scikit-learn's two and darknet's dog and person."""
    if not (DARKNET / "person.jpg").exists():
        pytest.skip("Debian package darknet (dog.jpg, person.jpg) is not installed")
    photos = [Image.fromarray(getattr(data, name)()) for name in ("chelsea", "coffee", "astronaut", "rocket")]
    photos += [Image.fromarray(array) for array in load_sample_images().images]
    photos += [Image.open(DARKNET / name).convert("RGB") for name in ("dog.jpg", "person.jpg")]
    return photos


CHEAP_LAYER = "features.16"  # 160 channels of mobilenet_v2 at 7×7: one masked pass per channel stays short
CHEAP_PYRAMID = ("features.10", "features.16")  # 64 channels at 14×14, 160 at 7×7 (both offered by the pickers)


def runs_on(explainer: Explainer, card) -> bool:
    """Whether explainer's model has what card's method requires (the attention methods need a ViT/DeiT)."""
    return not explainer.unmet(card)


def skip_unless_runs_on(explainer: Explainer, card) -> None:
    """Skip the test where explainer's model cannot run card's method (its CamError is tested elsewhere)."""
    if not runs_on(explainer, card):
        pytest.skip(f"{card.id}: {explainer.unmet(card)}")


def cheap_settings(card) -> dict:
    """For a method that runs one masked pass per channel (cost "slow"), mobilenet_v2 layers with fewer channels: a
    test of the method's behaviour, not of the layer's. Other methods keep their defaults."""
    if card.cost != "slow":
        return {}
    if card.id in SAMPLED_CHEAPLY:
        return {"layer": CHEAP_LAYER, **SAMPLED_CHEAPLY[card.id]}
    return {"layers": CHEAP_PYRAMID} if card.multi_layer else {"layer": CHEAP_LAYER}


# SS-CAM and IS-CAM score every channel's mask once per sample: in the behaviour tests two samples of the half of the
# channels that vary most (as many passes as Score-CAM's), and for SS-CAM a milder noise (σ = 0.25: two samples of
# σ = 2 leave its weights mostly noise; the references check σ = 2).
SAMPLED_CHEAPLY = {"sscam": {"samples": 2, "noise": 0.25, "top_channels": 0.5},
                   "iscam": {"samples": 2, "top_channels": 0.5}}
# RISE, occlusion and LIME run one pass per perturbed input: few masks, large windows, few samples.
SAMPLED_CHEAPLY |= {"rise": {"samples": 160}, "occlusion": {"window": 56, "stride": 28},
                    "lime": {"samples": 120, "segments": 40}}


# The gradient methods that read more than one pass at one layer (noisy copies, a path, a stack of layers, the input
# gradient), from their cards: Smooth Grad-CAM++, Integrated Grad-CAM, Layer-CAM, Zoom-CAM, Gradient Poly-CAM and the
# guided methods, checked together on the engine and on real photos.
NEW_METHODS = tuple(card.id for card in methods()
                    if card.needs & {"path", "layer_stack", "guided_gradients"} and "mask_scores" not in card.needs)
CAT_FAMILY = {281, 282, 283, 284, 285, 287}


def cat_on_canvas(chelsea: Image.Image, right: bool = True) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """chelsea pasted into a plain grey canvas twice its width (on the right, or on the left): the image and the
    cat's box (top, bottom, left, right)."""
    canvas = Image.new("RGB", (chelsea.width * 2 + 40, chelsea.height + 80), (128, 128, 128))
    left = chelsea.width + 20 if right else 20
    canvas.paste(chelsea, (left, 40))
    return canvas, (40, 40 + chelsea.height, left, left + chelsea.width)


def fresh_analysis(explainer: Explainer, image) -> Analysis:
    """An Analysis of image that no other test has touched (the explainer's cache is bypassed)."""
    picture = load_image(image)
    return Analysis(explainer, picture, image_key(picture), to_input(picture, explainer.spec.preprocessing))


def two_object_photo(name: str) -> Image.Image:
    """One of TWO_OBJECT_PHOTOS (darknet's data); the test is skipped where darknet is not installed."""
    path = DARKNET / name
    if not path.exists():
        pytest.skip(f"Debian package darknet ({name}) is not installed")
    return _photo(path)


@functools.cache
def _photo(path: Path) -> Image.Image:
    return Image.open(path).convert("RGB")


def photo_classes(analysis, name: str) -> dict[str, int]:
    """The three classes each class-specific method is checked on: the top class, the second object of the photo
    and the class with the lowest (negative) logit."""
    labels = analysis.explainer.labels
    classes = {"top": analysis.target(None), "second": labels.index(TWO_OBJECT_PHOTOS[name]),
               "negative": int(torch.argmin(analysis.logits))}
    assert classes["top"] != classes["second"], f"{name}: the second object is the top class"
    assert float(analysis.logits[classes["negative"]]) < 0, f"{name}: the lowest logit is not negative"
    return classes


def pearson(ours: np.ndarray, theirs: np.ndarray, what: str) -> float:
    """Pearson correlation of two maps, after checking both are finite and not flat (a flat map gives NaN)."""
    a = np.asarray(ours, dtype=np.float64).ravel()
    b = np.asarray(theirs, dtype=np.float64).ravel()
    assert a.shape == b.shape, f"{what}: shapes differ, ours {np.shape(ours)} vs the other {np.shape(theirs)}"
    for name, values in (("our", a), ("the other", b)):
        assert np.all(np.isfinite(values)), f"{what}: {name} map has non-finite values"
        scale = float(np.abs(values).max())
        assert scale > 0 and np.ptp(values) > 1e-6 * scale, f"{what}: {name} map is constant, Pearson is undefined"
    return float(np.corrcoef(a, b)[0, 1])


def run_threads(work: Callable, jobs: Sequence, timeout: float) -> list:
    """work(job) for every job, each in its own thread, all started together; the results in job order. A thread
    still running after timeout seconds fails the test with every thread's stack (a deadlock must not hang the
    suite); an exception in a thread is raised here."""
    results: list = [None] * len(jobs)
    errors: list = []
    start = threading.Barrier(len(jobs))

    def run(index: int) -> None:
        try:
            start.wait(timeout)
            results[index] = work(jobs[index])
        except BaseException as exc:  # noqa: BLE001 - raised in the test's thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True, name=f"job-{i}") for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [thread for thread in threads if thread.is_alive()]
    if stuck:
        frames = sys._current_frames()
        stacks = "\n".join(
            f"--- {thread.name}\n" + "".join(traceback.format_stack(frames[thread.ident]))
            for thread in threading.enumerate() if thread.ident in frames
        )
        pytest.fail(f"{len(stuck)} of {len(jobs)} threads still running after {timeout:.0f} s; stacks:\n{stacks}")
    if errors:
        raise errors[0]
    return results


def peak(saliency: np.ndarray) -> tuple[int, int]:
    """(row, column) of a map's maximum."""
    row, column = np.unravel_index(int(np.argmax(saliency)), saliency.shape)
    return int(row), int(column)


@contextlib.contextmanager
def count_passes(*modules: torch.nn.Module) -> Iterator[list]:
    """Counts, while inside, the calls of each module given and of its replicas (the Explainer's structural copies:
    same type, the very same parameter tensors), from any thread."""
    def first_parameter(module):
        return next(iter(module.parameters()), None)

    wanted = [(module, type(module), first_parameter(module)) for module in modules]
    calls: list = []

    def count(module, _inputs, _output):
        for original, kind, parameter in wanted:
            if module is original or (type(module) is kind and parameter is not None
                                      and first_parameter(module) is parameter):
                calls.append(module)
                return

    handle = torch.nn.modules.module.register_module_forward_hook(count)
    try:
        yield calls
    finally:
        handle.remove()


# ------------------------------------------------------------------------------------ the shared model's state


def module_state(model: torch.nn.Module) -> dict:
    """A copy of everything a map must not change in a shared model: its tensors, module types, in-place flags and
    which parameters require grad."""
    return {
        "tensors": {name: tensor.detach().clone() for name, tensor in model.state_dict().items()},
        "types": [(name, type(module)) for name, module in model.named_modules()],
        "inplace": [(name, module.inplace) for name, module in model.named_modules() if hasattr(module, "inplace")],
        "requires_grad": [parameter.requires_grad for parameter in model.parameters()],
    }


def bits(tensor: torch.Tensor) -> torch.Tensor:
    """A tensor's bytes, to compare bit for bit."""
    return tensor.reshape(-1).view(torch.uint8)


def hook_counts(model: torch.nn.Module) -> dict[str, int]:
    """The hooks left on each module of model (none: an empty dict)."""
    kinds = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    return {
        f"{name or 'model'}.{kind}": len(getattr(module, kind))
        for name, module in model.named_modules()
        for kind in kinds
        if len(getattr(module, kind))
    }


def global_hooks() -> tuple[int, ...]:
    """How many global module hooks of each kind torch holds."""
    from torch.nn.modules import module

    return tuple(
        len(getattr(module, name))
        for name in ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                     "_global_backward_pre_hooks")
    )


# ----------------------------------------------------------------------------------------- the CLI and the pages


def run_cli(argv: list[str]) -> int:
    """cam_core.cli.main's exit code, whether it returns it or argparse exits with it."""
    from cam_core.cli import main

    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code)


def open_app():
    """The dashboard's home page run once through streamlit.testing.v1.AppTest (no browser), without exception."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APP_TIMEOUT)
    app.run()
    assert not app.exception, app.exception
    return app


def texts(app) -> str:
    """An AppTest page's markdown and captions, one a line."""
    return "\n".join([m.value for m in app.markdown] + [c.value for c in app.caption])
