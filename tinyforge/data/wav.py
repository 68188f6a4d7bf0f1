"""WAV (RIFF/WAVE) decoding to the canonical float32 series.

Own RIFF reader rather than the stdlib ``wave`` module: ``wave`` rejects IEEE-float and
WAVE_FORMAT_EXTENSIBLE files and raises a mix of exception types on corrupt input, while every
failure here must become ``InvalidArgument`` naming what is wrong.

Supported: PCM integer 8 (unsigned), 16, 24, 32 bit and IEEE float 32/64 bit, any channel
count up to 64, plain or EXTENSIBLE ``fmt`` chunks. Integers are first scaled to [-1, 1)
(divided by 2^(bits-1)); floats are kept as is and must be finite. The canonical audio series
is then in **int16 units** (times :data:`AUDIO_FULL_SCALE` = 32768), the convention of Edge
Impulse's acquisition format and of the DSP blocks, so a WAV upload and a JSON upload of the
same sound give the same features.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from tinyforge.data.canonical import TimeSeries
from tinyforge.errors import InvalidArgument

_PCM = 1
_FLOAT = 3
_EXTENSIBLE = 0xFFFE
MAX_CHANNELS = 64
MAX_SAMPLE_RATE = 10_000_000  # Hz; above this the header is garbage, not a real recording
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
#: Canonical audio is in int16 units: full scale (1.0 in a float WAV) maps to 32768.
AUDIO_FULL_SCALE = 32768.0  # streaming writers leave these in the data chunk size


def _bad(msg: str) -> InvalidArgument:
    return InvalidArgument(f"invalid WAV file: {msg}", field="data")


def is_wav(data: bytes) -> bool:
    return len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE"


class WavHeadTooShort(Exception):
    """:func:`inspect_wav` needs more of the file than the head it was given."""


@dataclass(frozen=True)
class WavLayout:
    """What a WAV header says, checked against the file size. ``data_offset`` /
    ``data_size``: where the samples are, in bytes; ``frames``: samples per channel."""

    code: int
    channels: int
    rate: int
    block_align: int
    bits: int
    data_offset: int
    data_size: int

    @property
    def frames(self) -> int:
        return self.data_size // self.block_align

    @property
    def is_float(self) -> bool:
        return self.code == _FLOAT

    @property
    def axes(self) -> tuple[str, ...]:
        return ("audio",) if self.channels == 1 else tuple(
            f"audio{i}" for i in range(self.channels))


def inspect_wav(head: bytes, total_size: int | None = None) -> WavLayout:
    """Check a WAV file's structure without decoding its samples.

    ``head``: the file, or its first bytes when ``total_size`` (the whole file's size in
    bytes) is given — then the head must reach past the data chunk's header, else
    :class:`WavHeadTooShort`. Raises InvalidArgument exactly as :func:`parse_wav` does for
    every structural fault (integer PCM has no other kind; float samples still need their
    NaN/Inf check)."""
    if not is_wav(head):
        raise _bad("missing RIFF/WAVE header")
    total = len(head) if total_size is None else total_size
    pos = 12
    fmt: tuple[int, int, int, int, int] | None = None
    data: tuple[int, int] | None = None
    while pos + 8 <= total:
        if pos + 8 > len(head):
            raise WavHeadTooShort
        cid = bytes(head[pos:pos + 4])
        (size,) = struct.unpack_from("<I", head, pos + 4)
        body_start = pos + 8
        remaining = total - body_start
        if cid == b"data":
            if size > remaining:
                if size not in _UNKNOWN_SIZES:
                    raise _bad(f"data chunk declares {size} bytes but only {remaining} remain "
                               "(truncated file)")
                size = remaining
            elif size == 0 and remaining > 0:
                size = remaining  # size never patched by a streaming writer
            if fmt is None:
                raise _bad("data chunk before fmt chunk")
            data = (body_start, size)
            break
        if size > remaining:
            raise _bad(f"chunk {cid!r} declares {size} bytes but only {remaining} remain "
                       "(truncated file)")
        if cid == b"fmt ":
            if body_start + size > len(head):
                raise WavHeadTooShort
            fmt = _parse_fmt(bytes(head[body_start:body_start + size]))
        pos = body_start + size + (size & 1)  # chunks are padded to even sizes
    if fmt is None:
        raise _bad("no fmt chunk")
    if data is None:
        raise _bad("no data chunk")
    fmt_code, channels, rate, block_align, bits = fmt
    if data[1] % block_align:
        raise _bad(f"data length {data[1]} is not a multiple of the frame size {block_align} "
                   "(truncated file)")
    if data[1] // block_align < 1:
        raise _bad("no audio frames")
    return WavLayout(fmt_code, channels, rate, block_align, bits, data[0], data[1])


def parse_wav(data: bytes) -> TimeSeries:
    """Decode a WAV file into ``TimeSeries`` (values float32 [T, channels],
    interval_ms = 1000 / sample_rate, axes ``audio`` or ``audio0..N``, units ``wav``)."""
    lay = inspect_wav(data)
    pcm = memoryview(data)[lay.data_offset:lay.data_offset + lay.data_size]
    # Power-of-two scale: exact in float32, so int16 PCM comes back as its integers.
    with np.errstate(over="ignore", invalid="ignore"):  # huge or NaN floats: rejected below
        values = _decode(pcm, lay.code, lay.bits, lay.channels, lay.frames) * np.float32(
            AUDIO_FULL_SCALE)
    if not np.isfinite(values).all():
        raise InvalidArgument("WAV float samples contain NaN or Inf", field="data")
    return TimeSeries(values=values, interval_ms=1000.0 / lay.rate, axes=lay.axes,
                      units=("wav",) * lay.channels)


def check_float_samples(lay: WavLayout, chunk: bytes) -> None:
    """NaN/Inf check of a piece of a float WAV's data chunk (whole samples, little endian)."""
    if not lay.is_float:
        return
    raw = np.frombuffer(chunk, dtype="<f4" if lay.bits == 32 else "<f8")
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(raw.astype(np.float32) * np.float32(AUDIO_FULL_SCALE)).all()
    if not finite:
        raise InvalidArgument("WAV float samples contain NaN or Inf", field="data")


def _parse_fmt(body: bytes) -> tuple[int, int, int, int, int]:
    if len(body) < 16:
        raise _bad(f"fmt chunk is {len(body)} bytes, needs at least 16")
    code, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if code == _EXTENSIBLE:
        if len(body) < 40:
            raise _bad("WAVE_FORMAT_EXTENSIBLE fmt chunk shorter than 40 bytes")
        (code,) = struct.unpack_from("<H", body, 24)  # first 2 bytes of the sub-format GUID
    if code not in (_PCM, _FLOAT):
        raise _bad(f"unsupported sample format code {code} (PCM=1 and IEEE float=3 supported)")
    if not 1 <= channels <= MAX_CHANNELS:
        raise _bad(f"channel count {channels} outside 1..{MAX_CHANNELS}")
    if not 1 <= rate <= MAX_SAMPLE_RATE:
        raise _bad(f"sample rate {rate} Hz outside 1..{MAX_SAMPLE_RATE}")
    allowed = (8, 16, 24, 32) if code == _PCM else (32, 64)
    if bits not in allowed:
        kind = "PCM" if code == _PCM else "float"
        raise _bad(f"{bits} bits per sample not supported for {kind} (allowed: {allowed})")
    if block_align != channels * bits // 8:
        raise _bad(f"block align {block_align} != channels {channels} x {bits // 8} bytes")
    return code, channels, rate, block_align, bits


def _decode(pcm: memoryview, code: int, bits: int, channels: int, frames: int) -> np.ndarray:
    n = frames * channels
    if code == _FLOAT:
        raw = np.frombuffer(pcm, dtype="<f4" if bits == 32 else "<f8", count=n)
        out = raw.astype(np.float32)
    elif bits == 8:
        out = (np.frombuffer(pcm, dtype=np.uint8, count=n).astype(np.float32) - 128.0) / 128.0
    elif bits == 16:
        out = np.frombuffer(pcm, dtype="<i2", count=n).astype(np.float32) / 32768.0
    elif bits == 24:
        b = np.frombuffer(pcm, dtype=np.uint8, count=n * 3).reshape(n, 3).astype(np.int32)
        ints = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        out = ints.astype(np.float32) / float(1 << 23)
    else:
        # float64 keeps int32 exact before scaling; float32(1 - 2^-31) rounds to 1.0, so clamp
        out = (np.frombuffer(pcm, dtype="<i4", count=n).astype(np.float64) / 2.0**31)
        out = np.minimum(out.astype(np.float32), np.nextafter(np.float32(1), np.float32(0)))
    return np.ascontiguousarray(out.reshape(frames, channels), dtype=np.float32)


def encode_wav(values: np.ndarray, sample_rate: int, *, bits: int = 16,
               float_format: bool = False) -> bytes:
    """Write a plain WAV file (for tests and exports). ``values``: [T, channels] in [-1, 1]."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    frames, channels = v.shape
    if float_format:
        code = _FLOAT
        pcm = v.astype("<f4" if bits == 32 else "<f8").tobytes()
    else:
        code = _PCM
        scale = float(1 << (bits - 1))
        ints = np.clip(np.round(v * scale), -scale, scale - 1).astype(np.int64)
        if bits == 8:
            pcm = (ints + 128).astype(np.uint8).tobytes()
        elif bits == 16:
            pcm = ints.astype("<i2").tobytes()
        elif bits == 24:
            u = (ints & 0xFFFFFF).astype("<u4").reshape(-1)
            pcm = np.stack([u & 0xFF, (u >> 8) & 0xFF, (u >> 16) & 0xFF], axis=1).astype(
                np.uint8).tobytes()
        else:
            pcm = ints.astype("<i4").tobytes()
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", code, channels, sample_rate, sample_rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(pcm)) + pcm + (b"\0" if len(pcm) & 1 else b"")
    return b"RIFF" + struct.pack("<I", len(body)) + body
