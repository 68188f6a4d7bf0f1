"""EI data-acquisition JSON/CBOR envelopes: parsing, signatures, bad input."""

from __future__ import annotations

import hashlib
import hmac
import json

import cbor2
import numpy as np
import pytest

from tinyforge.data.acquisition import make_envelope
from tinyforge.data.canonical import SampleKind, SourceFormat
from tinyforge.data.formats import parse_upload
from tinyforge.errors import InvalidArgument

KEY = "3c2e8f0a9b7d4e1f"
SENSORS = [{"name": "accX", "units": "m/s2"}, {"name": "accY", "units": "m/s2"},
           {"name": "accZ", "units": "m/s2"}]
VALUES = [[-9.81, 0.03, 1.21], [-9.83, 0.04, 1.27], [-9.12, 0.03, 1.23], [-9.14, 0.01, 1.25]]


def envelope(values=VALUES, sensors=SENSORS, interval_ms=10, alg="HS256", **payload_extra):
    return {"protected": {"ver": "v1", "alg": alg, "iat": 1564128599},
            "signature": "0" * 64,
            "payload": {"device_name": "ac:87:a3:0a:2d:1b", "device_type": "DISCO-L475VG-IOT01A",
                        "interval_ms": interval_ms, "sensors": sensors, "values": values,
                        **payload_extra}}


def sign_like_ei(raw: bytes, key: str = KEY) -> bytes:
    """EI's recipe, written out independently: HMAC over the bytes with 64 zeros as the
    signature, then the hex digest written over the zeros."""
    sig = hmac.new(key.encode(), raw, hashlib.sha256).hexdigest().encode()
    ix = raw.index(b"0" * 64)
    return raw[:ix] + sig + raw[ix + 64:]


def test_signed_json_is_verified_and_parsed():
    raw = sign_like_ei(json.dumps(envelope()).encode())  # Python default separators
    p = parse_upload(raw, "walk.01.json", "application/json", hmac_key=KEY)
    assert p.format is SourceFormat.EI_JSON and p.kind is SampleKind.TIME_SERIES
    assert p.signed
    assert p.series.values.dtype == np.float32 and p.series.values.shape == (4, 3)
    np.testing.assert_allclose(p.series.values, np.array(VALUES, dtype=np.float32))
    assert p.series.interval_ms == 10 and p.series.frequency_hz == 100
    assert p.series.axes == ("accX", "accY", "accZ") and p.series.units == ("m/s2",) * 3
    assert p.device_name == "ac:87:a3:0a:2d:1b" and p.device_type == "DISCO-L475VG-IOT01A"


def test_signed_cbor_is_verified_and_parsed():
    raw = sign_like_ei(cbor2.dumps(envelope()))
    p = parse_upload(raw, "walk.cbor", "application/cbor", hmac_key=KEY)
    assert p.format is SourceFormat.EI_CBOR and p.signed
    np.testing.assert_allclose(p.series.values, np.array(VALUES, dtype=np.float32))


def test_cbor_with_half_floats_and_indefinite_array_verifies():
    # devices encode values as float16 inside an indefinite-length array (0x9f ... 0xff):
    # a re-encoding would differ, so this only verifies if the bytes are MACed as received
    env = envelope(values=[[1.5, 2.0, -0.5]])
    raw = bytearray(cbor2.dumps(env))
    arr = b"\x81\x83" + b"".join(cbor2.dumps(v) for v in [1.5, 2.0, -0.5])
    half = b"\x9f\x83" + b"\xf9\x3e\x00" + b"\xf9\x40\x00" + b"\xf9\xb8\x00" + b"\xff"
    assert bytes(raw).count(arr) == 1
    raw = bytes(raw).replace(arr, half)
    p = parse_upload(sign_like_ei(raw), "x.cbor", None, hmac_key=KEY)
    assert p.signed
    np.testing.assert_array_equal(p.series.values, [[1.5, 2.0, -0.5]])


def test_make_envelope_output_verifies_with_independent_hmac():
    raw = make_envelope(VALUES, interval_ms=10, sensors=SENSORS, hmac_key=KEY)
    obj = json.loads(raw)
    zeroed = raw.replace(obj["signature"].encode(), b"0" * 64)
    assert hmac.new(KEY.encode(), zeroed, hashlib.sha256).hexdigest() == obj["signature"]


def test_reformatted_after_signing_still_verifies_via_compact_form():
    compact = json.dumps(envelope(), separators=(",", ":")).encode()
    signed = json.loads(sign_like_ei(compact))
    pretty = json.dumps(signed, indent=2).encode()
    assert parse_upload(pretty, "a.json", None, hmac_key=KEY).signed


def test_wrong_signature_is_refused():
    raw = sign_like_ei(json.dumps(envelope()).encode(), key="another-key")
    with pytest.raises(InvalidArgument) as e:
        parse_upload(raw, "a.json", None, hmac_key=KEY)
    assert e.value.field == "signature"


def test_tampered_values_fail_the_signature():
    raw = sign_like_ei(json.dumps(envelope()).encode())
    tampered = raw.replace(b"-9.81", b"-9.80")
    with pytest.raises(InvalidArgument, match="signature"):
        parse_upload(tampered, "a.json", None, hmac_key=KEY)


def test_malformed_signature_is_refused():
    env = envelope()
    env["signature"] = "xyz"
    with pytest.raises(InvalidArgument) as e:
        parse_upload(json.dumps(env).encode(), "a.json", None, hmac_key=KEY)
    assert e.value.field == "signature"


def test_alg_none_needs_allow_unsigned():
    raw = json.dumps(envelope(alg="none")).encode()
    with pytest.raises(InvalidArgument) as e:
        parse_upload(raw, "a.json", None, hmac_key=KEY, allow_unsigned=False)
    assert e.value.field == "protected.alg"
    p = parse_upload(raw, "a.json", None, hmac_key=KEY, allow_unsigned=True)
    assert not p.signed and p.series.length == 4


def test_hs256_without_project_key():
    raw = sign_like_ei(json.dumps(envelope()).encode())
    with pytest.raises(InvalidArgument):
        parse_upload(raw, "a.json", None, hmac_key=None, allow_unsigned=False)
    assert not parse_upload(raw, "a.json", None, hmac_key=None, allow_unsigned=True).signed


def test_python_sdk_shape_with_nulls_is_accepted():
    # edgeimpulse.data.upload_numpy sends asdict(DataAcquisition): signature/iat/device_name
    # null, alg "none", and labels the JSON part "application/cbor"
    sdk = {"protected": {"ver": "v1", "alg": "none", "iat": None}, "signature": None,
           "payload": {"device_type": "EDGE_IMPULSE_UPLOADER",
                       "sensors": [{"name": "x", "units": "N/A"}],
                       "values": [[1.0], [2.0], [3.0]], "interval_ms": 20,
                       "device_name": None}}
    p = parse_upload(json.dumps(sdk).encode(), "s.json", "application/cbor",
                     allow_unsigned=True)
    assert p.format is SourceFormat.EI_JSON
    np.testing.assert_array_equal(p.series.values, [[1.0], [2.0], [3.0]])
    assert p.device_name is None


def test_one_dimensional_values_for_single_sensor():
    raw = json.dumps(envelope(values=[0.1, 0.2, 0.3], sensors=[{"name": "audio",
                                                                   "units": "wav"}],
                              interval_ms=0.0625, alg="none")).encode()
    p = parse_upload(raw, "a.json", None, allow_unsigned=True)
    assert p.series.values.shape == (3, 1)
    assert p.kind is SampleKind.AUDIO and p.series.frequency_hz == 16000


@pytest.mark.parametrize("values, field_part", [
    ([[1, 2, 3], [1, 2]], "payload.values"),        # row shorter than sensors
    ([[1, 2, 3, 4]], "payload.values"),             # row longer than sensors
    ([1, 2, 3], "payload.values"),                  # 1-D with 3 sensors
    ([], "payload.values"),                          # no samples
    ([[1, "a", 3]], "payload.values[0][1]"),         # text value
    ([[1, True, 3]], "payload.values[0][1]"),        # boolean value
    ([[1, None, 3]], "payload.values[0][1]"),        # null
])
def test_bad_values(values, field_part):
    raw = json.dumps(envelope(values=values, alg="none")).encode()
    with pytest.raises(InvalidArgument) as e:
        parse_upload(raw, "a.json", None, allow_unsigned=True)
    assert field_part in str(e.value) or e.value.field == field_part


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_nan_and_inf_are_refused(literal):
    raw = json.dumps(envelope(values=[[1, 2, 3]], alg="none")).encode()
    raw = raw.replace(b"[[1, 2, 3]]", b"[[1, " + literal + b", 3]]")
    with pytest.raises(InvalidArgument, match=r"payload\.values\[0\]\[1\].*finite"):
        parse_upload(raw, "a.json", None, allow_unsigned=True)


def test_float32_overflow_is_refused():
    raw = json.dumps(envelope(values=[[1, 1e300, 3]], alg="none")).encode()
    with pytest.raises(InvalidArgument, match="float32"):
        parse_upload(raw, "a.json", None, allow_unsigned=True)


@pytest.mark.parametrize("interval", [0, -5, "10", None])
def test_bad_interval(interval):
    raw = json.dumps(envelope(interval_ms=interval, alg="none")).encode()
    with pytest.raises(InvalidArgument) as e:
        parse_upload(raw, "a.json", None, allow_unsigned=True)
    assert e.value.field == "payload.interval_ms"


@pytest.mark.parametrize("mutate, field", [
    (lambda e: e.pop("protected"), "protected"),
    (lambda e: e["protected"].update(ver="v2"), "protected.ver"),
    (lambda e: e["protected"].update(alg="RS256"), "protected.alg"),
    (lambda e: e.pop("payload"), "payload"),
    (lambda e: e["payload"].update(sensors=[]), "payload.sensors"),
    (lambda e: e["payload"].update(sensors=[{"units": "g"}] * 3), "payload.sensors[0].name"),
    (lambda e: e["payload"].update(device_type=5), "payload.device_type"),
    (lambda e: e["payload"].update(sensors=[SENSORS[0]] * 3), "sensors"),  # duplicate names
])
def test_bad_structure_names_the_field(mutate, field):
    env = envelope(alg="none")
    mutate(env)
    with pytest.raises(InvalidArgument) as e:
        parse_upload(json.dumps(env).encode(), "a.json", None, allow_unsigned=True)
    assert e.value.field == field


def test_truncated_and_corrupt_json():
    raw = json.dumps(envelope(alg="none")).encode()
    for bad in (raw[: len(raw) // 2], raw[:-1], b"{\"protected\": ", b"{" + b"\xff" * 10):
        with pytest.raises(InvalidArgument) as e:
            parse_upload(bad, "a.json", None, allow_unsigned=True)
        assert e.value.field == "data"


def test_deeply_nested_json_is_refused_not_crashing():
    with pytest.raises(InvalidArgument):
        parse_upload(b"{\"a\":" + b"[" * 200_000 + b"]" * 200_000 + b"}", "a.json", None)


def test_truncated_and_corrupt_cbor():
    raw = cbor2.dumps(envelope(alg="none"))
    for bad in (raw[: len(raw) // 2], raw[:-1], raw[:1], b"\xbf\x61a"):
        with pytest.raises(InvalidArgument):
            parse_upload(bad, "a.cbor", None, allow_unsigned=True)
    # a CBOR array/string declaring a huge length must not allocate it
    with pytest.raises(InvalidArgument):
        parse_upload(b"\xa1\x61a\x9b\x00\xff\xff\xff\xff\xff\xff\xff", "a.cbor", None)
