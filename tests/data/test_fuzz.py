"""Fuzzing every upload and label parser with hypothesis.

Inputs are valid seed files mutated (truncated, bytes flipped, slices replaced, random tails,
runs duplicated), random bytes, and envelopes right in shape whose fields take random types
and values. Hypothesis draws the generator and RNG seed of each batch of 25 inputs (its
per-example overhead is ~1 ms, far more than a parse), so 10^4 inputs cost 400 examples.
The property: a parser either returns a valid canonical form (finite float32 [T ≥ 1, A ≥ 1],
interval > 0; or an image ≥ 1×1) or raises InvalidArgument / ResourceExhausted — never any
other exception. The default suite runs 10^4 inputs per parser; the ``slow`` variant 10^5.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable

import cbor2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.data.conftest import image_bytes, wav_pcm16, wav_raw
from tinyforge.data.acquisition import make_envelope
from tinyforge.data.canonical import ParsedSample
from tinyforge.data.formats import parse_upload
from tinyforge.data.labels import (
    parse_bounding_boxes_file,
    parse_bounding_boxes_header,
    parse_metadata_header,
    parse_structured_labels_file,
)
from tinyforge.errors import InvalidArgument, ResourceExhausted

KEY = "fuzz-key"
DEFAULT_EXAMPLES = 10_000  # generated inputs per parser in the default suite
SLOW_EXAMPLES = 100_000


# -- seeds and mutations ---------------------------------------------------------------------

def _seeds() -> dict[str, list[bytes]]:
    sensors = [{"name": "x", "units": "g"}, {"name": "y", "units": "g"}]
    values = [[0.5, -1.0], [2.0, 3.25], [1e-3, 7.0]]
    return {
        "json": [make_envelope(values, interval_ms=10, sensors=sensors, hmac_key=KEY),
                 make_envelope([1, 2, 3], interval_ms=0.5, sensors=sensors[:1])],
        "cbor": [make_envelope(values, interval_ms=10, sensors=sensors, hmac_key=KEY,
                               cbor=True),
                 make_envelope([1.5, 2.5], interval_ms=2, sensors=sensors[:1], cbor=True)],
        "csv": [b"timestamp,accX,accY\n0,1.5,2\n10,3,-4\n20,5,6e2\n",
                b" -276,   -85,  -309\n -100,   10,  20\n",
                b"time,x,label\n0.0,1,idle\n0.5,2,wave\n"],
        "wav": [wav_pcm16([0, 1000, -1000, 32767], rate=8000),
                wav_pcm16([(1, 2), (3, 4)], rate=16000, channels=2),
                wav_raw(3, 1, 44100, 32, np.array([0.1, -0.2], "<f4").tobytes()),
                wav_raw(1, 1, 8000, 24, b"\x00\x00\x40\x00\x00\xc0", extensible=True),
                wav_raw(1, 1, 8000, 8, b"\x00\x80\xff")],
        "png": [image_bytes("PNG", (6, 5)), image_bytes("PNG", (4, 3), mode="L")],
        "jpeg": [image_bytes("JPEG", (8, 8)), image_bytes("JPEG", (9, 7), mode="L")],
        "boxes_header": [b'[{"label":"a","x":1,"y":2,"width":3,"height":4}]'],
        "metadata_header": [b'{"site":"lab","n":"3"}'],
        "boxes_file": [json.dumps({"version": 1, "type": "bounding-box-labels",
                                   "boundingBoxes": {"a.jpg": [{"label": "c", "x": 1, "y": 2,
                                                                "width": 3, "height": 4}]}}
                                  ).encode()],
        "structured_file": [json.dumps({"version": 1, "type": "structured-labels",
                                        "structuredLabels": {"s.json": [
                                            {"startIndex": 0, "endIndex": 9, "label": "a"},
                                            {"startIndex": 10, "endIndex": 19, "label": "b"}]}}
                                       ).encode()],
    }


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to three random edits of ``data``: truncation, byte flips, slice replacement,
    random tail after a kept header, byte duplication; or fully random bytes."""
    if rng.random() < 0.08:
        return rng.randbytes(rng.randrange(0, 300))
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(5)
        n = len(data)
        if op == 0:
            data = data[: rng.randrange(0, n + 1)]
        elif op == 1 and n:
            buf = bytearray(data)
            for _ in range(rng.randrange(1, 7)):
                buf[rng.randrange(n)] = rng.randrange(256)
            data = bytes(buf)
        elif op == 2:
            pos = rng.randrange(n + 1)
            data = data[:pos] + rng.randbytes(rng.randrange(0, 24)) + data[
                pos + rng.randrange(0, 17):]
        elif op == 3:
            data = data[: rng.randrange(0, min(n, 64) + 1)] + rng.randbytes(rng.randrange(64))
        elif n:
            pos, ln = rng.randrange(n), rng.randrange(1, 32)
            data = data[:pos] + data[pos:pos + ln] * rng.randrange(2, 5) + data[pos:]
    return data


def _scalar(rng: random.Random) -> object:
    return rng.choice([None, True, False, 0, -1, 1 << 70, -(1 << 70), 1.5, -0.0, 1e308,
                       float("nan"), float("inf"), "", "x", "1.0", [], {}])


def _value(rng: random.Random) -> object:
    if rng.random() < 0.3:
        return [_scalar(rng) for _ in range(rng.randrange(4))]
    return _scalar(rng)


def random_envelope(rng: random.Random) -> dict:
    """An envelope right in shape but with random types and values, field by field."""
    n_axes = rng.randrange(1, 4)

    def maybe(good: object) -> object:
        return good if rng.random() < 0.93 else _value(rng)

    rows = [maybe([rng.uniform(-1e6, 1e6) for _ in range(n_axes)])
            for _ in range(rng.randrange(0, 6))]
    sensors = [{"name": maybe(rng.choice(["a", "b", "c", "", "a"])), "units": maybe("g")}
               for _ in range(n_axes)]
    alg = rng.choice(["none"] * 8 + ["HS256", "RS"])
    env = {"protected": maybe({"ver": maybe("v1"), "alg": alg, "iat": maybe(1700000000)}),
           "signature": rng.choice(["0" * 64, "f" * 64, "abc", None, 5]),
           "payload": maybe({"device_type": maybe("dev"), "device_name": maybe(None),
                             "interval_ms": maybe(rng.uniform(-5, 100)),
                             "sensors": maybe(sensors), "values": maybe(rows)})}
    if rng.random() < 0.05:
        env.pop(rng.choice(list(env)))
    return env


def _json_env(rng: random.Random) -> bytes:
    return json.dumps(random_envelope(rng)).encode()  # NaN/Infinity literals on purpose


def _cbor_env(rng: random.Random) -> bytes:
    return cbor2.dumps(random_envelope(rng))


# -- the property ----------------------------------------------------------------------------

def check_parsed(p: ParsedSample) -> None:
    assert isinstance(p, ParsedSample)
    if p.series is not None:
        v = p.series.values
        assert v.dtype == np.float32 and v.ndim == 2 and v.shape[0] >= 1 and v.shape[1] >= 1
        assert np.isfinite(v).all()
        assert math.isfinite(p.series.interval_ms) and p.series.interval_ms > 0
        assert len(p.series.axes) == v.shape[1]
    else:
        assert p.image is not None and p.image.width >= 1 and p.image.height >= 1


def upload(name: str, **kw: object) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        check_parsed(parse_upload(data, name, None, **kw))  # type: ignore[arg-type]
    return run


def label_parser(fn: Callable[[bytes], object], as_text: bool) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        if as_text:  # headers arrive as text: undecodable bytes never reach the parser
            try:
                fn(data.decode("utf-8"))
            except UnicodeDecodeError:
                return
        else:
            fn(data)
    return run


Generator = Callable[[random.Random], bytes]


def _from_seeds(seeds: list[bytes]) -> Generator:
    return lambda rng: mutate(rng, rng.choice(seeds))


def _targets() -> dict[str, tuple[list[Generator], Callable[[bytes], None]]]:
    s = _seeds()
    hmac_opts = {"hmac_key": KEY, "allow_unsigned": True}
    return {
        "ei_json": ([_from_seeds(s["json"]), _json_env], upload("x.json", **hmac_opts)),
        "ei_cbor": ([_from_seeds(s["cbor"]), _cbor_env], upload("x.cbor", **hmac_opts)),
        "csv": ([_from_seeds(s["csv"])], upload("x.csv", frequency_hz=25.0)),
        "wav": ([_from_seeds(s["wav"])], upload("x.wav")),
        "png": ([_from_seeds(s["png"])], upload("x.png")),
        "jpeg": ([_from_seeds(s["jpeg"])], upload("x.jpg")),
        "boxes_header": ([_from_seeds(s["boxes_header"])],
                         label_parser(parse_bounding_boxes_header, as_text=True)),
        "metadata_header": ([_from_seeds(s["metadata_header"])],
                            label_parser(parse_metadata_header, as_text=True)),
        "boxes_file": ([_from_seeds(s["boxes_file"])],
                       label_parser(parse_bounding_boxes_file, as_text=False)),
        "structured_file": ([_from_seeds(s["structured_file"])],
                            label_parser(parse_structured_labels_file, as_text=False)),
    }


TARGET_NAMES = ["ei_json", "ei_cbor", "csv", "wav", "png", "jpeg", "boxes_header",
                "metadata_header", "boxes_file", "structured_file"]
BATCH = 25  # inputs derived from each hypothesis example (its overhead dwarfs a parse)


def run_fuzz(name: str, inputs: int) -> int:
    """Feed ``inputs`` generated inputs to one parser; return how many ran."""
    generators, target = _targets()[name]
    ran = 0

    # hypothesis picks the generator and the RNG seed of each batch; the batch itself is
    # cheap plain-Python mutation, so the whole suite fits in the time budget
    @settings(max_examples=math.ceil(inputs / BATCH), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.integers(0, len(generators) - 1), st.integers(0, 2**64 - 1))
    def fuzz(which: int, seed: int) -> None:
        nonlocal ran
        rng = random.Random(seed)
        for _ in range(BATCH):
            data = generators[which](rng)
            try:
                target(data)
            except (InvalidArgument, ResourceExhausted) as e:
                assert e.message, data  # a precise message, never an empty one
            except Exception as e:  # report the exact input that broke the contract
                raise AssertionError(f"{name} parser raised {e!r} on input {data!r}") from e
            ran += 1

    fuzz()
    return ran


@pytest.mark.parametrize("name", TARGET_NAMES)
def test_fuzz_parser(name: str) -> None:
    assert run_fuzz(name, DEFAULT_EXAMPLES) >= DEFAULT_EXAMPLES


@pytest.mark.slow
@pytest.mark.parametrize("name", TARGET_NAMES)
def test_fuzz_parser_long(name: str) -> None:
    assert run_fuzz(name, SLOW_EXAMPLES) >= SLOW_EXAMPLES


def test_seeds_are_valid() -> None:
    """The mutations start from files that parse: otherwise the fuzzing only tests errors."""
    s = _seeds()
    for kind, name in (("json", "x.json"), ("cbor", "x.cbor"), ("csv", "x.csv"),
                       ("wav", "x.wav"), ("png", "x.png"), ("jpeg", "x.jpg")):
        for data in s[kind]:
            check_parsed(parse_upload(data, name, None, hmac_key=KEY, allow_unsigned=True,
                                      frequency_hz=25.0))
    assert parse_upload(s["json"][0], "x.json", None, hmac_key=KEY).signed
    assert parse_upload(s["cbor"][0], "x.cbor", None, hmac_key=KEY).signed
    parse_bounding_boxes_header(s["boxes_header"][0].decode())
    parse_metadata_header(s["metadata_header"][0].decode())
    parse_bounding_boxes_file(s["boxes_file"][0])
    parse_structured_labels_file(s["structured_file"][0])
