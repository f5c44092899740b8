"""A corpus of bad and odd image files, generated here: each is converted correctly (size, RGB, colours) or refused
with a one-line ImageError, through the API, the CLI and the dashboard."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cam_core import ImageError
from cam_core.inputs.images import MAX_PIXELS, load_image
from tests.conftest import open_app, run_cli, texts

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny 1-bit grayscale PNG whose IHDR (with a correct CRC) claims width × height; one IDAT row of zeros."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (1 + (width + 7) // 8))
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def quadrants(size: tuple[int, int] = (40, 30)) -> Image.Image:
    """An RGB picture, red with a blue top-left corner block (to follow rotations)."""
    image = Image.new("RGB", size, RED)
    image.paste(BLUE, (0, 0, size[0] // 4, size[1] // 4))
    return image


def exif_rotated(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(quadrants(), "JPEG", quality=95, exif=exif.tobytes())


def sixteen_bit_png() -> bytes:
    array = np.zeros((20, 32), dtype=np.uint16)
    array[:, :16] = 30000  # mid grey in 16 bits: about 117 in 8 bits, not white
    array[:, 16:] = 1000  # nearly black: about 4
    return encode(Image.fromarray(array), "PNG")


def cmyk_jpeg() -> bytes:
    image = Image.new("CMYK", (24, 16), (0, 255, 255, 0))  # pure red in CMYK
    image.paste((255, 0, 255, 0), (12, 0, 24, 16))  # pure green
    return encode(image, "JPEG", quality=95)


def palette_png_with_transparency() -> bytes:
    image = Image.new("P", (20, 10), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))  # index 0 black (transparent), index 1 red
    image.paste(1, (10, 0, 20, 10))
    return encode(image, "PNG", transparency=0)


def colour_keyed_png(mode: str, key, fill) -> bytes:
    """A PNG without alpha whose tRNS chunk makes the colour key transparent: left half key, right half fill."""
    image = Image.new(mode, (12, 6), key)
    image.paste(fill, (6, 0, 12, 6))
    return encode(image, "PNG", transparency=key)


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (16, 12), colour) for colour in (GREEN, BLUE, RED)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def rgba_png() -> bytes:
    image = Image.new("RGBA", (10, 10), (0, 0, 255, 255))
    image.paste((0, 0, 0, 0), (0, 0, 5, 10))  # transparent left half: shown on white
    return encode(image, "PNG")


JPEG = encode(quadrants((64, 48)), "JPEG", quality=95)
PNG = encode(quadrants((64, 48)), "PNG")

# name -> (file name, bytes)
REFUSED = {
    "zero bytes": ("empty.png", b""),
    "truncated JPEG": ("cut.jpg", JPEG[: len(JPEG) // 2]),
    "truncated PNG": ("cut.png", PNG[: len(PNG) // 2]),
    "PNG cut after its header": ("head.png", PNG[:40]),
    "text renamed .png": ("notes.png", b"this is not a picture\nsecond line\n"),
    "decompression bomb 50000x50000": ("bomb.png", png_claiming(50_000, 50_000)),
    "over MAX_PIXELS": ("big.png", png_claiming(10_000, MAX_PIXELS // 10_000 + 1)),
}

# name -> (file name, bytes, size, {(x, y): colour}, tolerance)
ACCEPTED = {
    "1x1 pixel": ("dot.png", encode(Image.new("RGB", (1, 1), GREEN), "PNG"), (1, 1), {(0, 0): GREEN}, 0),
    "16-bit grayscale PNG": ("deep.png", sixteen_bit_png(), (32, 20), {(0, 0): (117,) * 3, (31, 19): (4,) * 3}, 1),
    "CMYK JPEG": ("cmyk.jpg", cmyk_jpeg(), (24, 16), {(2, 8): RED, (21, 8): GREEN}, 12),
    "palette PNG with transparency": (
        "pal.png", palette_png_with_transparency(), (20, 10), {(2, 5): WHITE, (15, 5): RED}, 0),
    "RGB PNG with a colour key": (
        "key.png", colour_keyed_png("RGB", (0, 0, 0), RED), (12, 6), {(2, 3): WHITE, (9, 3): RED}, 0),
    "grayscale PNG with a colour key": (
        "graykey.png", colour_keyed_png("L", 0, 100), (12, 6), {(2, 3): WHITE, (9, 3): (100,) * 3}, 0),
    "animated GIF": ("anim.gif", animated_gif(), (16, 12), {(0, 0): GREEN, (15, 11): GREEN}, 0),
    "EXIF orientation 6": ("rot6.jpg", exif_rotated(6), (30, 40), {(25, 3): BLUE, (3, 3): RED, (25, 36): RED}, 12),
    "EXIF orientation 8": ("rot8.jpg", exif_rotated(8), (30, 40), {(3, 36): BLUE, (3, 3): RED, (25, 36): RED}, 12),
    "grayscale": ("gray.png", encode(Image.new("L", (9, 7), 200), "PNG"), (9, 7), {(4, 3): (200,) * 3}, 0),
    "RGBA": ("rgba.png", rgba_png(), (10, 10), {(2, 5): WHITE, (8, 5): BLUE}, 0),
    "plain JPEG": ("plain.jpg", JPEG, (64, 48), {(3, 3): BLUE, (60, 40): RED}, 12),
}


def assert_one_line(error: ImageError) -> None:
    message = str(error)
    assert message and "\n" not in message and "\r" not in message, repr(message)
    assert "Traceback" not in message


def assert_converted(image: Image.Image, size, colours, tolerance) -> None:
    assert image.mode == "RGB"
    assert image.size == size
    for (x, y), colour in colours.items():
        got = image.getpixel((x, y))
        assert np.abs(np.subtract(got, colour)).max() <= tolerance, f"pixel {(x, y)} is {got}, not {colour}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    for name, data in [(file, data) for file, data in REFUSED.values()] + [
        (file, data) for file, data, *_ in ACCEPTED.values()
    ]:
        (folder / name).write_bytes(data)
    return folder


# --- the API ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(REFUSED))
def test_load_image_refuses_with_one_line(case, corpus):
    file, data = REFUSED[case]
    for source in (data, str(corpus / file), corpus / file):
        with pytest.raises(ImageError) as caught:
            load_image(source)
        assert_one_line(caught.value)
        if isinstance(source, str):
            assert file in str(caught.value)


def test_a_too_large_image_says_how_large():
    for data in (png_claiming(50_000, 50_000), png_claiming(10_000, MAX_PIXELS // 10_000 + 1)):
        with pytest.raises(ImageError, match="pixels") as caught:
            load_image(data)
        assert "allowed" in str(caught.value), caught.value


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_load_image_converts_correctly(case, corpus):
    file, data, size, colours, tolerance = ACCEPTED[case]
    for source in (data, str(corpus / file)):
        assert_converted(load_image(source), size, colours, tolerance)


def test_a_pil_image_stands_up_as_its_exif_says():
    opened = Image.open(io.BytesIO(exif_rotated(6)))
    assert opened.size == (40, 30)
    assert_converted(load_image(opened), (30, 40), {(25, 3): BLUE, (3, 3): RED, (25, 36): RED}, 12)


def test_a_16_bit_image_keeps_its_tones():
    array = np.linspace(0, 65535, 64 * 8, dtype=np.float64).reshape(8, 64).astype(np.uint16)
    for source in (encode(Image.fromarray(array), "PNG"), array):
        got = np.asarray(load_image(source))[:, :, 0].astype(int)
        assert np.abs(got - np.round(array / 257)).max() <= 1


def test_explainer_refuses_bad_files_and_analyzes_odd_ones(mobilenet, corpus):
    for case in ("truncated JPEG", "text renamed .png", "decompression bomb 50000x50000"):
        with pytest.raises(ImageError) as caught:
            mobilenet.analyze(str(corpus / REFUSED[case][0]))
        assert_one_line(caught.value)
    tiny = mobilenet.analyze(str(corpus / ACCEPTED["1x1 pixel"][0]))
    assert tiny.image.size == (1, 1)
    result = tiny.cam("gradcam")
    assert result.saliency.shape == (1, 1) and np.isfinite(result.saliency).all()
    deep = mobilenet.analyze(str(corpus / ACCEPTED["16-bit grayscale PNG"][0]))
    assert np.isfinite(deep.cam("gradcam").saliency).all()


# --- the CLI ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(REFUSED))
def test_cli_refuses_with_exit_2_and_one_line(case, corpus, tmp_path, capsys):
    out = tmp_path / "x.npz"
    assert run_cli(["explain", str(corpus / REFUSED[case][0]), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert len(captured.err.strip().splitlines()) == 1, captured.err
    assert captured.err.startswith("error: ") and "Traceback" not in captured.err
    assert not out.exists()


@pytest.mark.parametrize("case", ["1x1 pixel", "CMYK JPEG", "EXIF orientation 6"])
def test_cli_explains_odd_images(case, corpus, tmp_path, capsys):
    file, _, size, _, _ = ACCEPTED[case]
    out = tmp_path / "x.npz"
    assert run_cli(["explain", str(corpus / file), "--out", str(out)]) == 0, capsys.readouterr().err
    saved = np.load(out)
    assert saved["saliency"].shape == (size[1], size[0]) and np.isfinite(saved["saliency"]).all()


# --- the dashboard ------------------------------------------------------------------------------------------


def test_bad_uploads_are_messages_in_the_page():
    app = open_app()
    for case in ("truncated JPEG", "decompression bomb 50000x50000", "zero bytes"):
        file, data = REFUSED[case]
        app.file_uploader(key="upload").upload(file, data, "image/png")
        app.run()
        assert not app.exception, app.exception
        assert app.error and file in app.error[0].value, case
        assert "\n" not in app.error[0].value
        assert "Explaining:** Egyptian cat" in texts(app), "the previous image stays"
