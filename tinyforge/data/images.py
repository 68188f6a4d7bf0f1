"""JPEG / PNG decoding with Pillow: verify that an upload decodes completely, record its size.

The original file is the canonical form of an image; :func:`image_pixels` decodes it to an
array when a processing block needs pixels.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image

from tinyforge.data.canonical import ImageInfo
from tinyforge.errors import InvalidArgument, ResourceExhausted

DEFAULT_MAX_PIXELS = 64_000_000  # width × height; a decompression bomb guard
_FORMATS = ("JPEG", "PNG")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's bomb warning: we check size ourselves
            img = Image.open(io.BytesIO(data), formats=list(_FORMATS))
    except Image.DecompressionBombError as e:
        raise ResourceExhausted(f"image too large: {e}", field="data") from e
    except Exception as e:  # Pillow raises many types on garbage; all mean "not an image"
        raise InvalidArgument(f"not a decodable JPEG or PNG image: {e}", field="data") from e
    w, h = img.size
    if w < 1 or h < 1:
        raise InvalidArgument(f"image has an empty size {w}x{h}", field="data")
    if w * h > max_pixels:
        raise ResourceExhausted(
            f"image is {w}x{h} = {w * h} pixels, over the limit of {max_pixels}", field="data")
    return img


def parse_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Decode the whole image (so truncated or corrupt files are refused) and return its size,
    mode and format. Raises InvalidArgument (corrupt) or ResourceExhausted (over max_pixels)."""
    img = _open(data, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()  # full decode: a truncated JPEG/PNG raises here
            if img.format == "PNG":
                # verify() checks the CRC of every chunk, which load() does not
                Image.open(io.BytesIO(data), formats=["PNG"]).verify()
    except Image.DecompressionBombError as e:
        raise ResourceExhausted(f"image too large: {e}", field="data") from e
    except Exception as e:  # see _open
        raise InvalidArgument(f"corrupt {img.format} image: {e}", field="data") from e
    return ImageInfo(width=int(img.size[0]), height=int(img.size[1]), mode=str(img.mode),
                     format=str(img.format))


def image_pixels(data: bytes, mode: str = "RGB", *,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode to uint8 pixels: shape [H, W, 3] for ``RGB``, [H, W] for ``L``."""
    img = _open(data, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(img.convert(mode), dtype=np.uint8)
    except Exception as e:  # see _open
        raise InvalidArgument(f"corrupt image: {e}", field="data") from e
