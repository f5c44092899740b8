"""Pictures at the size a page shows them: the image scaled to a width (once per image and width), and pictures
encoded once as JPEG, so that a grid of maps is drawn and sent at its shown size while downloads keep the full
size."""

from __future__ import annotations

import io
import threading
import weakref

from PIL import Image

DISPLAY_WIDTH = 480  # a grid column is 250–370 px wide in the wide layout: 480 px stays sharp up to 1.3× zoom
JPEG_QUALITY = 90  # what Streamlit itself re-encodes at when it resizes; maps and colour bars stay clean

_scaled: dict[int, dict[int, Image.Image]] = {}  # id of a living image → width → the image scaled (PIL images are
_lock = threading.Lock()                          # unhashable: each entry goes when its image is collected)


def shown_size(size: tuple[int, int], width: int = DISPLAY_WIDTH) -> tuple[int, int]:
    """The (height, width) of a picture of size=(height, width) shown at most width pixels wide (never enlarged)."""
    height, full_width = size
    if full_width <= width:
        return size
    return max(1, round(height * width / full_width)), width


def shown_image(image: Image.Image, width: int = DISPLAY_WIDTH) -> Image.Image:
    """image scaled to at most width pixels wide (Lanczos), kept while image lives; image itself when narrower."""
    height, scaled_width = shown_size((image.height, image.width), width)
    if scaled_width == image.width:
        return image
    with _lock:
        if id(image) not in _scaled:
            _scaled[id(image)] = {}
            weakref.finalize(image, _scaled.pop, id(image), None)
        kept = _scaled[id(image)]
        if width not in kept:
            kept[width] = image.convert("RGB").resize((scaled_width, height), Image.LANCZOS)
        return kept[width]


def jpeg_bytes(picture: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    """picture encoded as JPEG (what st.image sends without encoding it again)."""
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
