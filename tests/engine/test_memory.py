"""Memory: the Analysis cache stays within its byte bound and the process's RSS stops growing once it is full."""

from __future__ import annotations

import gc

import pytest

from cam_core import Explainer
from scripts.measure import MIB, distinct_images, rss_bytes

BOUND = 12 * MIB
# gradcam + layercam (the pyramid: four layers' activations, gradients and graphs) on a 640×480 upload: ≈ 1.9 MiB per
# analysis as counted, so 12 MiB holds 6 of them and the cache is full well before image 10.
METHODS = ("gradcam", "layercam")
# Measured growth from image 10 to 30 (2 cores): +1 MiB with the bound; +47 MiB with the bound disabled
# (cache_bytes=1 << 40, every analysis kept, ≈ 2.3 MiB each), so 20 MiB catches a leak of every analysis.
GROWTH_LIMIT = 20 * MIB


@pytest.fixture
def only_new_objects():
    """gc.collect() in the test scans only the objects made after this point: what the test session holds already
    (every module imported, every fixture) is frozen out of it, so a collection takes milliseconds instead of a
    quarter of a second, and still frees every cycle the uploads leave behind."""
    gc.freeze()
    yield
    gc.unfreeze()


def test_thirty_uploads_keep_the_cache_and_rss_bounded(only_new_objects):
    explainer = Explainer("mobilenet_v2", cache_bytes=BOUND)
    rss = []
    for image in distinct_images(30, size=(640, 480), seed=1):
        analysis = explainer.analyze(image)
        for method in METHODS:
            result = analysis.cam(method)
            assert result.saliency.shape == (480, 640)
        assert explainer.cache.nbytes <= BOUND
        gc.collect()
        rss.append(rss_bytes())
    assert 2 <= len(explainer.cache) < 30, "the cache should hold several analyses but have dropped the oldest"
    growth = rss[-1] - rss[9]
    assert growth < GROWTH_LIMIT, f"RSS grew {growth / MIB:.1f} MiB from image 10 to 30: " + ", ".join(
        f"{r / MIB:.0f}" for r in rss
    )
