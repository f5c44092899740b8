"""Turning what a user gives (a path, bytes, an array, a PIL image) into an upright RGB image and a model input."""

from __future__ import annotations

import hashlib
import io
import os
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError
from .models import Preprocessing

MAX_PIXELS = 64_000_000

ImageInput = Image.Image | np.ndarray | bytes | str | os.PathLike


def load_image(source: ImageInput) -> Image.Image:
    """An RGB PIL image from a path, encoded bytes, an (H, W[, C]) array or a PIL image, upright per EXIF."""
    if isinstance(source, Image.Image):
        image = source
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
            image.load()
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{what} is not an image this tool can read ({type(exc).__name__})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{what} is damaged or truncated ({exc})") from exc
    return ImageOps.exif_transpose(image)


def _from_array(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(f"an image array must be (H, W), (H, W, 3) or (H, W, 4), not {array.shape}")
    if array.dtype != np.uint8:
        scale = 255.0 if np.issubdtype(array.dtype, np.floating) and array.max(initial=0) <= 1.0 else 1.0
        array = np.clip(array.astype(np.float64) * scale, 0, 255).astype(np.uint8)
    return Image.fromarray(array)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = array.max(initial=0)
        array = array / top * 255 if top > 0 else array
        return Image.fromarray(array.astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


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
