"""WAV decoding: every supported sample format, and corrupt files."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from tests.data.conftest import wav_pcm16, wav_raw
from tinyforge.data.canonical import SampleKind, SourceFormat
from tinyforge.data.formats import parse_upload
from tinyforge.data.wav import AUDIO_FULL_SCALE as FS
from tinyforge.data.wav import encode_wav, parse_wav
from tinyforge.errors import InvalidArgument


def test_pcm16_mono_from_stdlib_wave():
    raw = wav_pcm16([0, 16384, -16384, 32767, -32768], rate=8000)
    p = parse_upload(raw, "a.wav", "audio/wav")
    assert p.kind is SampleKind.AUDIO and p.format is SourceFormat.WAV
    assert p.series.values.dtype == np.float32 and p.series.values.shape == (5, 1)
    np.testing.assert_array_equal(p.series.values[:, 0] / FS,
                                  [0.0, 0.5, -0.5, 32767 / 32768, -1.0])
    assert p.series.interval_ms == pytest.approx(0.125) and p.series.frequency_hz == 8000
    assert p.series.axes == ("audio",)


def test_pcm16_stereo_channels_stay_apart():
    raw = wav_pcm16([(16384, -8192), (0, 8192)], rate=16000, channels=2)
    s = parse_wav(raw)
    np.testing.assert_array_equal(s.values / FS, [[0.5, -0.25], [0.0, 0.25]])
    assert s.axes == ("audio0", "audio1")


def test_pcm8_unsigned():
    s = parse_wav(wav_raw(1, 1, 8000, 8, bytes([128, 192, 64, 0, 255])))
    np.testing.assert_array_equal(s.values[:, 0] / FS, [0.0, 0.5, -0.5, -1.0, 127 / 128])


def test_pcm24():
    vals = [0, 1 << 22, -(1 << 22), (1 << 23) - 1, -(1 << 23)]
    pcm = b"".join(struct.pack("<i", v)[:3] for v in vals)
    s = parse_wav(wav_raw(1, 1, 44100, 24, pcm))
    np.testing.assert_allclose(s.values[:, 0] / FS, [0, 0.5, -0.5, 1 - 2**-23, -1.0], atol=1e-7)


def test_pcm32_stays_below_one():
    pcm = struct.pack("<3i", 1 << 30, -(1 << 31), (1 << 31) - 1)
    s = parse_wav(wav_raw(1, 1, 8000, 32, pcm))
    assert s.values[0, 0] == 0.5 * FS and s.values[1, 0] == -FS
    assert 0.999 * FS < s.values[2, 0] < FS  # below full scale even where float32 rounds up


def test_float32_and_extensible_header():
    pcm = struct.pack("<4f", 0.25, -0.75, 1.5, 0.0)
    for ext in (False, True):
        s = parse_wav(wav_raw(3, 2, 48000, 32, pcm, extensible=ext))
        np.testing.assert_array_equal(s.values / FS, [[0.25, -0.75], [1.5, 0.0]])
    s = parse_wav(wav_raw(1, 1, 8000, 16, struct.pack("<h", 16384), extensible=True))
    assert s.values[0, 0] == 0.5 * FS


def test_encoder_roundtrip_all_widths():
    x = np.array([[0.0], [0.5], [-0.5], [-1.0]])
    for bits in (8, 16, 24, 32):
        np.testing.assert_allclose(parse_wav(encode_wav(x, 8000, bits=bits)).values / FS, x)
    np.testing.assert_array_equal(parse_wav(encode_wav(x, 8000, bits=32, float_format=True))
                                  .values / FS, x)


def test_odd_chunk_before_data_is_skipped():
    raw = wav_pcm16([100, 200, 300])
    # insert a 3-byte LIST chunk (padded to 4) between fmt and data
    ix = raw.index(b"data")
    raw = raw[:ix] + b"LIST" + struct.pack("<I", 3) + b"abc\0" + raw[ix:]
    assert parse_wav(raw).length == 3


def test_streaming_writer_placeholder_size_is_accepted():
    raw = bytearray(wav_pcm16([1, 2, 3, 4]))
    ix = raw.index(b"data")
    raw[ix + 4: ix + 8] = b"\xff\xff\xff\xff"
    assert parse_wav(bytes(raw)).length == 4


@pytest.mark.parametrize("cut", [30, 44 + 3, 44 + 5])
def test_truncated_wav(cut):
    raw = wav_pcm16(list(range(100)))
    with pytest.raises(InvalidArgument, match="WAV") as e:
        parse_upload(raw[:cut], "a.wav", None)
    assert e.value.field == "data"


@pytest.mark.parametrize("mutate, message", [
    (lambda r: b"RIFX" + r[4:], "RIFF"),
    (lambda r: r.replace(b"fmt ", b"fmx "), "fmt"),
    (lambda r: r.replace(b"data", b"dat_"), "data chunk"),
    (lambda r: r[:20] + struct.pack("<H", 2) + r[22:], "format code 2"),       # ADPCM
    (lambda r: r[:22] + struct.pack("<H", 0) + r[24:], "channel count 0"),
    (lambda r: r[:24] + struct.pack("<I", 0) + r[28:], "sample rate 0"),
    (lambda r: r[:34] + struct.pack("<H", 12) + r[36:], "12 bits"),
    (lambda r: r[:32] + struct.pack("<H", 3) + r[34:], "block align"),
])
def test_corrupt_headers(mutate, message):
    raw = wav_pcm16([1, 2, 3, 4])
    with pytest.raises(InvalidArgument, match=message):
        parse_upload(mutate(raw), "a.wav", None)


def test_empty_data_and_nan_floats():
    with pytest.raises(InvalidArgument, match="no audio frames"):
        parse_wav(wav_pcm16([]))
    with pytest.raises(InvalidArgument, match="NaN or Inf"):
        parse_wav(wav_raw(3, 1, 8000, 32, struct.pack("<2f", 0.1, float("nan"))))
    with pytest.raises(InvalidArgument, match="NaN or Inf"):
        parse_wav(wav_raw(3, 1, 8000, 32, struct.pack("<2f", 0.1, float("inf"))))
