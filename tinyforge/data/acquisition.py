"""Edge Impulse data-acquisition envelopes (JSON and CBOR): parsing, HS256 verification, signing.

Envelope::

    {"protected": {"ver": "v1", "alg": "HS256" | "none", "iat": <s since epoch, optional>},
     "signature": "<64 hex chars>",
     "payload": {"device_name": str?, "device_type": str, "interval_ms": number > 0,
                 "sensors": [{"name": str, "units": str}, ...],
                 "values": [[v_axis0, v_axis1, ...], ...]   # or [v, v, ...] for one sensor
    }}

Signature rule (as Edge Impulse's signers do it, e.g. its data forwarder and C ingestion SDK):
the signer encodes the envelope with ``signature`` set to 64 ``'0'`` characters, computes
hex HMAC-SHA256 over those encoded bytes with the project's HMAC key (its UTF-8 bytes), then
writes the hex digest over the zeros in place. The same holds for CBOR: the signature is a
64-byte text string patched inside the encoded buffer. So verification puts the zeros back at
the signature's position in the received bytes and recomputes. Senders that re-serialise
after signing are also accepted when the bytes match a compact JSON re-encoding, Python's
default ``json.dumps``, or ``cbor2.dumps`` of the envelope with the zeros.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from typing import Any

import cbor2
import numpy as np

from tinyforge.data.canonical import TimeSeries
from tinyforge.errors import InvalidArgument

EMPTY_SIGNATURE = "0" * 64
MAX_AXES = 1024
MAX_NAME_LEN = 256


@dataclass(frozen=True)
class Envelope:
    """A parsed and checked acquisition envelope. ``series`` is the canonical form."""

    series: TimeSeries
    device_name: str | None
    device_type: str | None
    alg: str
    signed: bool  # True when HS256 was verified
    iat: float | None


def _bad(field: str, msg: str) -> InvalidArgument:
    return InvalidArgument(msg, field=field)


# -- decoding --------------------------------------------------------------------------------

def decode_json(data: bytes) -> Any:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _bad("data", f"JSON body is not valid UTF-8: {e}") from e
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise _bad("data", f"malformed JSON: {e}") from e


def decode_cbor(data: bytes) -> Any:
    try:
        return cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError,
            MemoryError, LookupError, UnicodeError) as e:
        raise _bad("data", f"malformed CBOR: {e}") from e


# -- validation ------------------------------------------------------------------------------

def _opt_str(obj: dict, key: str, field: str) -> str | None:
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise _bad(field, f"{field} must be a string, got {type(v).__name__}")
    if len(v) > MAX_NAME_LEN:
        raise _bad(field, f"{field} longer than {MAX_NAME_LEN} characters")
    return v


def _number(v: Any, field: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _bad(field, f"{field} must be a number, got {type(v).__name__}")
    try:
        f = float(v)
    except OverflowError as e:
        raise _bad(field, f"{field} is out of range: {e}") from e
    if not math.isfinite(f):
        raise _bad(field, f"{field} must be finite, got {f}")
    return f


def _has_bool(values: list) -> bool:
    # numpy silently turns True/False into 1/0; the format wants numbers only
    return any(v is True or v is False or (type(v) is list and any(x is True or x is False
                                                                 for x in v))
               for v in values)


def _values_array(values: Any, n_axes: int) -> np.ndarray:
    if not isinstance(values, list) or not values:
        raise _bad("payload.values", "payload.values must be a non-empty list of samples")
    rows = len(values)
    # Fast path: a well-formed numeric matrix converts in one call; anything odd (ragged,
    # strings, huge ints, nested) falls through to the per-value loop for a precise error.
    try:
        arr = np.array(values)
    except (ValueError, TypeError, OverflowError, RecursionError):
        arr = None
    if (arr is not None and arr.dtype.kind in "if" and not _has_bool(values)
            and (arr.shape == (rows, n_axes) or (n_axes == 1 and arr.shape == (rows,)))):
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked below
            f32 = arr.reshape(rows, n_axes).astype(np.float32)
        if np.isfinite(f32).all():
            return f32
    out = np.empty((rows, n_axes), dtype=np.float64)
    for i, row in enumerate(values):
        if isinstance(row, list):
            if len(row) != n_axes:
                raise _bad("payload.values",
                           f"payload.values[{i}] has {len(row)} values but there are "
                           f"{n_axes} sensors")
            for j, v in enumerate(row):
                out[i, j] = _number(v, f"payload.values[{i}][{j}]")
        elif n_axes == 1:  # 1-D values are allowed for single-axis sensors
            out[i, 0] = _number(row, f"payload.values[{i}]")
        else:
            raise _bad("payload.values",
                       f"payload.values[{i}] must be a list of {n_axes} numbers")
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked below
        f32 = out.astype(np.float32)
    if not np.isfinite(f32).all():
        bad = np.argwhere(~np.isfinite(f32))[0]
        raise _bad("payload.values",
                   f"payload.values[{bad[0]}][{bad[1]}] overflows float32")
    return f32


def check_envelope(obj: Any) -> tuple[dict, str, TimeSeries, str | None, str | None, float | None]:
    """Validate the structure; return (protected, alg, series, device_name, device_type, iat)."""
    if not isinstance(obj, dict):
        raise _bad("data", "acquisition file must be an object with protected, signature, "
                   "payload")
    prot = obj.get("protected")
    if not isinstance(prot, dict):
        raise _bad("protected", "protected must be an object {ver, alg, iat}")
    ver = prot.get("ver")
    if ver != "v1":
        raise _bad("protected.ver", f"protected.ver must be 'v1', got {ver!r}")
    alg = prot.get("alg")
    if alg not in ("HS256", "none"):
        raise _bad("protected.alg", f"protected.alg must be 'HS256' or 'none', got {alg!r}")
    iat = prot.get("iat")
    iat_f = None if iat is None else _number(iat, "protected.iat")
    payload = obj.get("payload")
    if not isinstance(payload, dict):
        raise _bad("payload", "payload must be an object")
    device_name = _opt_str(payload, "device_name", "payload.device_name")
    device_type = _opt_str(payload, "device_type", "payload.device_type")
    if "interval_ms" not in payload:
        raise _bad("payload.interval_ms", "payload.interval_ms is required")
    interval = _number(payload["interval_ms"], "payload.interval_ms")
    if interval <= 0:
        raise _bad("payload.interval_ms", f"payload.interval_ms must be > 0, got {interval}")
    sensors = payload.get("sensors")
    if not isinstance(sensors, list) or not sensors:
        raise _bad("payload.sensors", "payload.sensors must be a non-empty list")
    if len(sensors) > MAX_AXES:
        raise _bad("payload.sensors", f"more than {MAX_AXES} sensors")
    names: list[str] = []
    units: list[str] = []
    for i, s in enumerate(sensors):
        if not isinstance(s, dict):
            raise _bad(f"payload.sensors[{i}]", f"payload.sensors[{i}] must be {{name, units}}")
        name = _opt_str(s, "name", f"payload.sensors[{i}].name")
        if not name:
            raise _bad(f"payload.sensors[{i}].name", f"payload.sensors[{i}].name is required")
        names.append(name)
        units.append(_opt_str(s, "units", f"payload.sensors[{i}].units") or "")
    values = _values_array(payload.get("values"), len(names))
    series = TimeSeries(values=values, interval_ms=interval, axes=tuple(names),
                        units=tuple(units))
    return prot, alg, series, device_name, device_type, iat_f


# -- signatures ------------------------------------------------------------------------------

def _hmac_hex(key: str, data: bytes) -> str:
    return hmac.new(key.encode("utf-8"), data, hashlib.sha256).hexdigest()


def _with_zero_signature(obj: dict) -> dict:
    out = dict(obj)
    out["signature"] = EMPTY_SIGNATURE
    return out


def _candidates(data: bytes, obj: dict, sig: str, is_cbor: bool) -> list[bytes]:
    """Byte strings the signer may have MACed: the received bytes with the signature put back
    to zeros at each place it occurs, then canonical re-encodings."""
    out: list[bytes] = []
    needle = sig.encode("ascii")
    if is_cbor:
        needle = b"\x78\x40" + needle  # CBOR text string header, length 64
    start = 0
    while (ix := data.find(needle, start)) != -1:
        off = ix + len(needle) - 64
        out.append(data[:off] + EMPTY_SIGNATURE.encode() + data[off + 64:])
        start = ix + 1
        if len(out) >= 8:
            break
    zeroed = _with_zero_signature(obj)
    try:
        if is_cbor:
            out.append(cbor2.dumps(zeroed))
        else:
            out.append(json.dumps(zeroed, separators=(",", ":")).encode())
            out.append(json.dumps(zeroed).encode())
    except (TypeError, ValueError, OverflowError, RecursionError, cbor2.CBOREncodeError):
        pass
    return out


def verify_signature(data: bytes, obj: dict, hmac_key: str, *, is_cbor: bool) -> None:
    """Raise InvalidArgument(field="signature") unless ``obj['signature']`` is the HS256 of
    ``data`` under ``hmac_key`` (see the module docstring for the rule)."""
    sig = obj.get("signature")
    if not isinstance(sig, str) or len(sig) != 64 or any(c not in "0123456789abcdefABCDEF"
                                                          for c in sig):
        raise _bad("signature", "signature must be 64 hex characters for alg HS256")
    want = sig.lower()
    for candidate in _candidates(data, obj, sig, is_cbor):
        if hmac.compare_digest(_hmac_hex(hmac_key, candidate), want):
            return
    raise _bad("signature", "HMAC-SHA256 signature does not match the project's HMAC key")


def parse_envelope(data: bytes, *, is_cbor: bool, hmac_key: str | None,
                   allow_unsigned: bool) -> Envelope:
    """Parse and check a JSON (``is_cbor=False``) or CBOR acquisition envelope.

    ``alg: HS256`` is verified with ``hmac_key``; a wrong signature is refused. ``alg: none``
    is accepted only when ``allow_unsigned``; so is HS256 when no ``hmac_key`` is configured
    (then ``signed`` is False). Errors: InvalidArgument naming the field.
    """
    obj = decode_cbor(data) if is_cbor else decode_json(data)
    _prot, alg, series, device_name, device_type, iat = check_envelope(obj)
    signed = False
    if alg == "HS256":
        if hmac_key:
            verify_signature(data, obj, hmac_key, is_cbor=is_cbor)
            signed = True
        elif not allow_unsigned:
            raise _bad("signature", "HS256 signature cannot be verified: no HMAC key is "
                       "configured and unsigned data is not allowed")
    elif not allow_unsigned:
        raise _bad("protected.alg", "unsigned data (alg 'none') is not allowed for this project")
    return Envelope(series=series, device_name=device_name, device_type=device_type, alg=alg,
                    signed=signed, iat=iat)


def make_envelope(values: Any, *, interval_ms: float, sensors: list[dict[str, str]],
                  device_type: str = "TINYFORGE", device_name: str | None = None,
                  hmac_key: str | None = None, cbor: bool = False,
                  iat: int | None = None) -> bytes:
    """Encode (and sign, when ``hmac_key`` is given) an envelope the way EI's signers do:
    encode with 64 zeros, HMAC the bytes, patch the digest in place. For clients and tests."""
    prot: dict[str, Any] = {"ver": "v1", "alg": "HS256" if hmac_key else "none"}
    if iat is not None:
        prot["iat"] = iat
    payload: dict[str, Any] = {"device_type": device_type, "interval_ms": interval_ms,
                               "sensors": sensors, "values": values}
    if device_name is not None:
        payload = {"device_name": device_name, **payload}
    env = {"protected": prot, "signature": EMPTY_SIGNATURE, "payload": payload}
    raw = cbor2.dumps(env) if cbor else json.dumps(env, separators=(",", ":")).encode()
    if not hmac_key:
        return raw
    sig = _hmac_hex(hmac_key, raw).encode()
    ix = raw.find(EMPTY_SIGNATURE.encode())
    return raw[:ix] + sig + raw[ix + 64:]
