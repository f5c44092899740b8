"""Turning what a user gives (a path, bytes, an array, a PIL image) into an upright RGB image and a model input."""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from cam_core.errors import ImageError
from cam_core.models.specs import Preprocessing

MAX_PIXELS = 64_000_000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
READABLE = "PNG, JPEG, WebP, BMP, TIFF and GIF"

ImageInput = Image.Image | np.ndarray | bytes | str | os.PathLike


def load_image(source: ImageInput) -> Image.Image:
    """An RGB PIL image from a path, encoded bytes, an (H, W[, C]) array or a PIL image, upright per EXIF."""
    if isinstance(source, Image.Image):
        image = _upright(source)
    elif isinstance(source, np.ndarray):
        image = _from_array(source)
    elif isinstance(source, (bytes, bytearray)):
        image = _decode(io.BytesIO(source), "the uploaded data")
    elif isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise ImageError(f"image file {source} not found")
        with open(source, "rb") as handle:
            image = _decode(io.BytesIO(handle.read()), str(source))
    else:
        raise ImageError(f"cannot read an image from a {type(source).__name__}")
    return _to_rgb(image)


def _decode(stream: io.BytesIO, what: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(stream)
            if image.width * image.height > MAX_PIXELS:
                raise ImageError(f"{what} is {image.width}×{image.height} pixels, more than the {MAX_PIXELS:,} allowed")
            image.load()  # the first frame of an animation
            return _upright(image)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        raise ImageError(f"{what} has {size}, more than the {MAX_PIXELS:,} allowed") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{what} is not an image this tool can read (it reads {READABLE})") from exc
    except MemoryError as exc:
        raise ImageError(f"{what} is too large to decode in memory") from exc
    except Exception as exc:  # Pillow's decoders raise many kinds (OSError, SyntaxError, EOFError, struct.error…)
        raise ImageError(f"{what} is damaged or truncated ({_one_line(exc)})") from exc


def _upright(image: Image.Image) -> Image.Image:
    """image turned as its EXIF orientation tag says (a camera's portrait photo stands up)."""
    return ImageOps.exif_transpose(image)


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (its type name when it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _from_array(array: np.ndarray) -> Image.Image:
    """Arrays to 8 bits: bool → 0/255, uint16 → value/257, floats in [0, 1] → ×255, other numbers clipped to
    [0, 255] (NaN → 0)."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(f"an image array must be (H, W), (H, W, 3) or (H, W, 4), not {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageError(f"an image array must have at least one pixel, not shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise ImageError(f"an image array must hold numbers, not {array.dtype}")
    if array.dtype != np.uint8:
        values = array.astype(np.float64)
        if array.dtype.kind == "b":
            values *= 255.0
        elif array.dtype == np.uint16:
            values /= 257.0
        elif array.dtype.kind == "f":
            values = np.nan_to_num(values, nan=0.0, posinf=255.0, neginf=0.0)
            if values.max(initial=0.0) <= 1.0:
                values = np.clip(values, 0.0, 1.0) * 255.0
        array = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(array))


def _to_rgb(image: Image.Image) -> Image.Image:
    try:
        return _converted(image)
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(f"cannot convert a {image.mode} image to RGB ({_one_line(exc)})") from exc


def _converted(image: Image.Image) -> Image.Image:
    if image.width == 0 or image.height == 0:
        raise ImageError(f"the image is {image.width}×{image.height} pixels: it has no pixels")
    if image.mode == "RGB" and "transparency" not in image.info:
        return image
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:  # alpha or a colour key
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode.startswith("I;16"):  # 16-bit: 65535 is white
        return _gray(np.asarray(image, dtype=np.float64) / 257.0)
    if image.mode == "I":  # 32-bit integers: 8-bit or 16-bit data as such, anything else stretched
        array = np.asarray(image, dtype=np.float64)
        low, high = array.min(initial=0), array.max(initial=0)
        if low < 0 or high > 65535:
            return _gray((array - low) / (high - low) * 255.0 if high > low else np.zeros_like(array))
        return _gray(array / 257.0 if high > 255 else array)
    if image.mode == "F":  # floats: [0, 1] scaled, else clipped
        array = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        return _gray(array * 255.0 if array.max(initial=0.0) <= 1.0 else array)
    return image.convert("RGB")


def _gray(values: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8)).convert("RGB")


def image_key(image: Image.Image) -> str:
    """A content hash of an RGB image (pixels and size)."""
    digest = hashlib.sha256(f"{image.width}x{image.height}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def to_input(image: Image.Image, prep: Preprocessing) -> torch.Tensor:
    """The (1, 3, S, S) model input: the whole image resized (no crop), scaled to [0, 1], normalised."""
    resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[prep.interpolation]
    resized = image.resize((prep.input_size, prep.input_size), resample=resample)
    array = np.asarray(resized, dtype=np.float32) / 255.0
    mean = np.asarray(prep.mean, dtype=np.float32)
    std = np.asarray(prep.std, dtype=np.float32)
    return torch.from_numpy(((array - mean) / std).transpose(2, 0, 1).copy()).unsqueeze(0)
