"""JPEG/PNG: decoded size and mode, and truncated/corrupt/oversized images."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.data.conftest import image_bytes
from tinyforge.data.canonical import SampleKind, SourceFormat
from tinyforge.data.formats import parse_upload
from tinyforge.data.images import image_pixels
from tinyforge.errors import InvalidArgument, ResourceExhausted


@pytest.mark.parametrize("fmt, sfmt", [("PNG", SourceFormat.PNG), ("JPEG", SourceFormat.JPEG)])
def test_image_size_and_mode(fmt, sfmt):
    p = parse_upload(image_bytes(fmt, (16, 12)), "x.img", None)
    assert p.kind is SampleKind.IMAGE and p.format is sfmt
    assert (p.image.width, p.image.height, p.image.mode) == (16, 12, "RGB")
    assert p.series is None and p.canonical_bytes() is None and p.duration_ms == 0


def test_grayscale_mode_and_pixels():
    raw = image_bytes("PNG", (5, 4), mode="L")
    assert parse_upload(raw, "g.png", None).image.mode == "L"
    px = image_pixels(raw, "L")
    assert px.shape == (4, 5) and px.dtype == np.uint8
    assert px[2, 3] == (3 * 13 + 2) % 256  # putpixel((x=3, y=2)) in the helper
    assert image_pixels(raw).shape == (4, 5, 3)


def test_magic_bytes_win_over_extension():
    p = parse_upload(image_bytes("JPEG"), "mislabelled.png", "image/png")
    assert p.format is SourceFormat.JPEG and p.content_type == "image/jpeg"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_images(fmt):
    raw = image_bytes(fmt, (64, 64))
    for cut in (len(raw) // 2, len(raw) - 20, 40):
        with pytest.raises(InvalidArgument) as e:
            parse_upload(raw[:cut], "x." + fmt.lower(), None)
        assert e.value.field == "data"


def test_png_with_bad_crc():
    raw = bytearray(image_bytes("PNG", (8, 8)))
    ix = raw.index(b"IDAT")
    (length,) = struct.unpack(">I", raw[ix - 4: ix])
    raw[ix + 4 + length] ^= 0xFF  # first CRC byte of the IDAT chunk
    with pytest.raises(InvalidArgument, match="PNG"):
        parse_upload(bytes(raw), "x.png", None)


def test_corrupt_jpeg_header_and_garbage():
    raw = image_bytes("JPEG", (32, 32))
    with pytest.raises(InvalidArgument):
        parse_upload(raw[:4] + b"\x00" * 200 + raw[204:], "x.jpg", None)
    with pytest.raises(InvalidArgument):
        parse_upload(b"\xff\xd8\xff" + bytes(range(256)) * 4, "x.jpg", None)
    with pytest.raises(InvalidArgument):
        parse_upload(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "x.png", None)


def test_other_image_formats_are_refused():
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="GIF")
    with pytest.raises(InvalidArgument):
        parse_upload(buf.getvalue(), "x.png", "image/png")


def test_pixel_limit_gives_resource_exhausted():
    raw = image_bytes("PNG", (100, 100))
    with pytest.raises(ResourceExhausted):
        parse_upload(raw, "x.png", None, max_pixels=9999)
    assert parse_upload(raw, "x.png", None, max_pixels=10_000).image.width == 100


@pytest.mark.parametrize("side", [10_000, 100_000])  # over our limit; over Pillow's too
def test_decompression_bomb_header_is_refused_before_decoding(side):
    # a PNG header claiming side x side pixels with almost no data behind it
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I",
                                                                         zlib.crc32(kind + body))
    raw = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    with pytest.raises(ResourceExhausted):
        parse_upload(raw, "bomb.png", None)
