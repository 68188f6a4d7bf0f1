"""Shared helpers for the data tests: where the real datasets live, small valid seed files."""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import pytest
from PIL import Image

DATASETS = (Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets").resolve()


def dataset(name: str) -> Path:
    """Path of a shared dataset, or skip the test with a clear message when it is absent."""
    path = DATASETS / name
    if not path.is_dir():
        pytest.skip(f"real dataset {name!r} not found at {path} (../shared/datasets absent)")
    return path


def wav_pcm16(samples: list[int] | list[tuple[int, ...]], rate: int = 8000,
              channels: int = 1) -> bytes:
    """A PCM16 WAV written by the stdlib ``wave`` module (independent of our encoder)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        flat = [v for s in samples for v in (s if isinstance(s, tuple) else (s,))]
        w.writeframes(struct.pack(f"<{len(flat)}h", *flat))
    return buf.getvalue()


def wav_raw(fmt_code: int, channels: int, rate: int, bits: int, pcm: bytes,
            extensible: bool = False) -> bytes:
    """A WAV assembled by hand, for formats ``wave`` cannot write (float, 24-bit, EXTENSIBLE)."""
    block = channels * bits // 8
    if extensible:
        guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, bits, 22,
                          bits, 0) + struct.pack("<H", fmt_code) + guid_tail
    else:
        fmt = struct.pack("<HHIIHH", fmt_code, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(pcm)) + pcm + (b"\0" if len(pcm) % 2 else b"")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def image_bytes(fmt: str, size: tuple[int, int] = (16, 12), mode: str = "RGB") -> bytes:
    img = Image.new(mode, size)
    for x in range(size[0]):
        for y in range(size[1]):
            img.putpixel((x, y), (x * 13 % 256, y * 17 % 256, (x + y) * 7 % 256)
                         if mode == "RGB" else (x * 13 + y) % 256)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()
