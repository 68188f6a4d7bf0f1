"""Format detection, size limits, canonical serialisation, content hash."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from tests.data.conftest import image_bytes, wav_pcm16
from tinyforge.data.canonical import SourceFormat, TimeSeries, content_sha256
from tinyforge.data.formats import detect_format, parse_upload
from tinyforge.errors import InvalidArgument, ResourceExhausted

ENV = json.dumps({"protected": {"ver": "v1", "alg": "none"}, "signature": "0" * 64,
                  "payload": {"device_type": "d", "interval_ms": 5,
                              "sensors": [{"name": "a", "units": "g"}],
                              "values": [1, 2, 3]}}).encode()


@pytest.mark.parametrize("data, name, ctype, expected", [
    (wav_pcm16([1, 2]), "x.bin", None, SourceFormat.WAV),
    (image_bytes("PNG"), None, "image/jpeg", SourceFormat.PNG),
    (image_bytes("JPEG"), "a.png", None, SourceFormat.JPEG),
    (ENV, "x.cbor", "application/cbor", SourceFormat.EI_JSON),   # the SDK's labelling
    (b"  \n" + ENV, None, None, SourceFormat.EI_JSON),
    (b"\xa3abc", "x.json", None, SourceFormat.EI_CBOR),
    (b"a,b\n1,2\n", "x.txt", None, SourceFormat.CSV),
    (b"garbage", "x.wav", None, SourceFormat.WAV),                 # extension picks the parser
    (b"garbage", None, "image/png; q=1", SourceFormat.PNG),
    (b"garbage", None, None, SourceFormat.CSV),
])
def test_detection(data, name, ctype, expected):
    assert detect_format(data, name, ctype) is expected


def test_size_limit_is_resource_exhausted():
    with pytest.raises(ResourceExhausted) as e:
        parse_upload(ENV, "a.json", None, allow_unsigned=True, max_bytes=len(ENV) - 1)
    assert e.value.field == "data"
    assert parse_upload(ENV, "a.json", None, allow_unsigned=True, max_bytes=len(ENV)).series


def test_empty_and_non_bytes():
    with pytest.raises(InvalidArgument, match="empty"):
        parse_upload(b"", "a.csv", None)
    with pytest.raises(InvalidArgument):
        parse_upload("text", "a.csv", None)  # type: ignore[arg-type]


def test_canonical_npz_roundtrip_and_plain_numpy_reading():
    p = parse_upload(wav_pcm16([(100, -100), (200, -200), (300, -300)], rate=16000,
                               channels=2), "a.wav", None)
    blob = p.canonical_bytes()
    back = TimeSeries.from_bytes(blob)
    np.testing.assert_array_equal(back.values, p.series.values)
    assert (back.interval_ms, back.axes, back.units) == (0.0625, ("audio0", "audio1"),
                                                          ("wav", "wav"))
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:  # readable without our code
        assert npz["values"].dtype == np.float32 and npz["values"].shape == (3, 2)
        assert json.loads(str(npz["meta"]))["interval_ms"] == 0.0625
    with pytest.raises(InvalidArgument):
        TimeSeries.from_bytes(b"not an npz")


def test_canonical_rejects_bad_series():
    ok = np.zeros((2, 1), np.float32)
    for kwargs in (dict(values=np.zeros((0, 1), np.float32)),
                   dict(values=np.array([[np.nan]], np.float32)),
                   dict(values=ok.astype(np.float64)),
                   dict(values=ok, interval_ms=0.0),
                   dict(values=ok, interval_ms=float("inf")),
                   dict(values=ok, axes=("a", "b"))):
        args = dict(values=ok, interval_ms=1.0, axes=("a",), units=("",)) | kwargs
        with pytest.raises(InvalidArgument):
            TimeSeries(**args)


def test_content_sha256_known_vector():
    assert content_sha256(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


def test_duration():
    p = parse_upload(ENV, "a.json", None, allow_unsigned=True)
    assert p.duration_ms == 15.0 and p.content_type == "application/json"
