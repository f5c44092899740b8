"""Property tests (hypothesis): any bytes or small array loads as RGB or raises ImageError; method parameters
inside their card's range give a finite map, outside it a CamError naming the range."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cam_core import CamError, ImageError, methods
from cam_core.inputs.images import load_image

# headers that get random bytes past format detection into Pillow's decoders
MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xee", b"GIF89a", b"GIF87a", b"BM",
         b"II*\x00", b"MM\x00*", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"P6\n", b"\x00\x00\x01\x00"]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(MAGIC), st.binary(max_size=600))
def test_random_bytes_load_as_rgb_or_raise_image_error(magic, tail):
    try:
        image = load_image(magic + tail)
    except ImageError as exc:
        assert "\n" not in str(exc)
        return
    assert image.mode == "RGB" and image.width >= 1 and image.height >= 1


DTYPES = [np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32), np.dtype(np.float64), np.dtype(bool)]


@st.composite
def small_arrays(draw) -> np.ndarray:
    dtype = draw(st.sampled_from(DTYPES))
    height, width = draw(st.integers(0, 6)), draw(st.integers(0, 6))
    shape = draw(st.sampled_from([(height, width), (height, width, 1), (height, width, 3), (height, width, 4)]))
    return draw(hnp.arrays(dtype, shape))  # floats include NaN, ±inf, negatives and huge values


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_arrays())
def test_small_arrays_load_as_rgb_of_the_same_size_or_raise_image_error(array):
    try:
        image = load_image(array)
    except ImageError as exc:
        assert "\n" not in str(exc)
        assert 0 in array.shape[:2], f"{array.dtype} {array.shape} refused: {exc}"
        return
    assert image.mode == "RGB" and (image.height, image.width) == array.shape[:2]
    got = np.asarray(image)
    if array.ndim == 2 and array.dtype == np.uint16:
        np.testing.assert_array_equal(got[:, :, 0], np.rint(array / 257.0))
    if array.ndim == 2 and array.dtype == bool:
        np.testing.assert_array_equal(got[:, :, 0], np.where(array, 255, 0))


NUMERIC = [
    (card.id, param)
    for card in methods()
    for param in card.params
    if param.minimum is not None and param.maximum is not None and not isinstance(param.default, bool)
]


def param_of(method: str, name: str):
    return next(param for card_id, param in NUMERIC if card_id == method and param.name == name)


@pytest.fixture(scope="module")
def analysis(mobilenet, chelsea):
    return mobilenet.analyze(chelsea)


def in_range(param) -> st.SearchStrategy:
    if isinstance(param.default, int):
        return st.integers(int(param.minimum), int(param.maximum))
    return st.floats(param.minimum, param.maximum, allow_nan=False)


def out_of_range(param) -> st.SearchStrategy:
    low, high = param.minimum, param.maximum
    if isinstance(param.default, int):
        return st.integers(max_value=int(low) - 1) | st.integers(min_value=int(high) + 1)
    return (st.floats(max_value=low, exclude_max=True) | st.floats(min_value=high, exclude_min=True)
            | st.sampled_from([math.nan, math.inf, -math.inf]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_parameters_outside_the_range_are_refused_naming_it(analysis, data):
    method, param = data.draw(st.sampled_from(NUMERIC), label="parameter")
    value = data.draw(out_of_range(param), label="value")
    with pytest.raises(CamError) as caught:
        analysis.cam(method, **{param.name: value})
    assert f"between {param.minimum} and {param.maximum}" in str(caught.value)
    assert param.name in str(caught.value) and method in str(caught.value)


def finite_map(analysis, method: str, **params) -> None:
    result = analysis.cam(method, **params)
    assert result.saliency.shape == (analysis.image.height, analysis.image.width)
    assert np.isfinite(result.saliency).all() and np.isfinite(result.raw).all()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(gamma=in_range(param_of("layercam", "gamma")))
def test_layercam_gamma_inside_the_range_gives_a_finite_map(analysis, gamma):
    finite_map(analysis, "layercam", gamma=gamma)


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sigma=in_range(param_of("smoothgradcampp", "sigma")), seed=in_range(param_of("smoothgradcampp", "seed")))
def test_smoothgradcampp_sigma_and_seed_inside_the_range_give_a_finite_map(analysis, sigma, seed):
    finite_map(analysis, "smoothgradcampp", samples=1, sigma=sigma, seed=seed)


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blur=st.floats(0.0, param_of("intgradcam", "blur").maximum))
def test_intgradcam_blur_inside_the_range_gives_a_finite_map(analysis, blur):
    finite_map(analysis, "intgradcam", steps=1, blur=blur)


def test_intgradcam_with_a_vanishing_blur_gives_a_finite_map(analysis):
    """Found by hypothesis: a blur so small that 2σ² underflows to 0 once made a NaN Gaussian kernel."""
    finite_map(analysis, "intgradcam", steps=1, blur=1e-70)


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(groups=in_range(param_of("clustercam", "groups")))
def test_clustercam_groups_inside_the_range_give_a_finite_map(analysis, groups):
    finite_map(analysis, "clustercam", groups=groups)
