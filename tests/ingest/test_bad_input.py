"""Bad input through gRPC and HTTP: a precise error, nothing stored, the service keeps serving."""

from __future__ import annotations

import io
import json
import struct
import wave

import cbor2
import grpc
import pytest
import requests
from PIL import Image

from tests.ingest.conftest import envelope, stored


def _wav() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack("<100h", *range(100)))
    return buf.getvalue()


def _img(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (1, 2, 3)).save(buf, fmt)
    return buf.getvalue()


def _env(**payload) -> bytes:
    base = {"device_type": "T", "interval_ms": 10, "sensors": [{"name": "x", "units": "g"}],
            "values": [[1.0], [2.0]]}
    base.update(payload)
    return json.dumps({"protected": {"ver": "v1", "alg": "none"}, "signature": "0" * 64,
                       "payload": base}).encode()


NAN = b'{"protected":{"ver":"v1","alg":"none"},"signature":"' + b"0" * 64 + (
    b'","payload":{"device_type":"T","interval_ms":10,"sensors":[{"name":"x","units":"g"}],'
    b'"values":[[NaN],[1]]}}')
WRONG_SIG = json.dumps({"protected": {"ver": "v1", "alg": "HS256"}, "signature": "ab" * 32,
                        "payload": {"device_type": "T", "interval_ms": 10,
                                    "sensors": [{"name": "x", "units": "g"}],
                                    "values": [[1], [2]]}}).encode()

# (case, file name, bytes, extra options, expected field or message fragment)
CASES = [
    ("truncated_wav", "a.wav", _wav()[:60], {}, "data"),
    ("corrupt_cbor", "a.cbor", cbor2.dumps({"protected": {"ver": "v1"}})[:-3] + b"\xff", {},
     "data"),
    ("corrupt_json", "a.json", b'{"protected": {"ver": "v1", ', {}, "data"),
    ("truncated_png", "a.png", _img("PNG")[:50], {}, "data"),
    ("corrupt_jpeg", "a.jpg", _img("JPEG")[:40] + b"\x00" * 20, {}, "data"),
    ("ragged_csv", "a.csv", b"t,x,y\n0,1,2\n1,3\n2,4,5\n", {}, "data"),
    ("text_in_csv", "a.csv", b"t,x\n0,1\n1,abc\n", {}, "data"),
    ("values_vs_sensors", "a.json", _env(values=[[1.0, 2.0], [3.0, 4.0]]), {}, "values"),
    ("nan", "a.json", NAN, {}, "values"),
    ("inf", "a.json", _env(values=[[1e400], [1.0]]).replace(b"Infinity", b"1e999"), {},
     "values"),
    ("wrong_hmac", "a.json", WRONG_SIG, {}, "signature"),
    ("interval_zero", "a.json", _env(interval_ms=0), {}, "interval"),
    ("interval_negative", "a.json", _env(interval_ms=-5), {}, "interval"),
    ("label_too_long", "a.json", _env(), {"label": "x" * 257}, "label"),
    ("path_in_name", "../evil.json", _env(), {}, "filename"),
    ("dotdot_name", "a..json", _env(), {}, "filename"),
    ("backslash_name", "dir\\a.json", _env(), {}, "filename"),
]


def _grpc_upload(ingest, pid, name, data, opts):
    return ingest.upload(pid, data, filename=name, **opts)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_grpc(ingest, tenant, platform, case) -> None:
    _, name, data, opts, fragment = case
    pid = tenant.project_id
    with pytest.raises(grpc.RpcError) as e:
        _grpc_upload(ingest, pid, name, data, opts)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    assert fragment in e.value.details().lower() or fragment in str(e.value.trailing_metadata())
    assert stored(platform, pid) == (0, [])
    ok = ingest.upload(pid, envelope([[1.0]]), filename="ok.json")  # still serving
    assert ok.id > 0


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_http(ingest, tenant, platform, case) -> None:
    _, name, data, opts, fragment = case
    pid = tenant.project_id
    headers = {"x-label": opts["label"]} if "label" in opts else {}
    r = ingest.post_files("training", [(name, data, "application/octet-stream")], headers)
    assert 400 <= r.status_code < 500, r.text
    body = r.json()
    assert body["success"] is False and body["error"]
    assert fragment in body["error"].lower() or fragment == body["files"][0]["field"], body
    r = ingest.post_data("training", data, {"x-file-name": name, **headers})
    assert 400 <= r.status_code < 500 and r.json()["success"] is False
    assert stored(platform, pid) == (0, [])
    r = ingest.post_files("training", [("ok.json", envelope([[1.0]]), "application/json")])
    assert r.status_code == 200


def test_unknown_category(ingest, tenant, platform) -> None:
    r = ingest.post_files("validation", [("a.json", envelope([[1.0]]), "application/json")])
    assert r.status_code == 400 and "category" in r.json()["error"]
    from tinyforge.v1 import ingest_service_pb2 as ipb

    with pytest.raises(grpc.RpcError) as e:
        ingest.upload(tenant.project_id, envelope([[1.0]]), filename="a.json", category=17)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError):
        ingest.stub.MoveSamples(ipb.MoveSamplesRequest(
            project_id=tenant.project_id, sample_ids=[1], category=ipb.SAMPLE_CATEGORY_SPLIT),
            metadata=ingest.md)
    assert stored(platform, tenant.project_id) == (0, [])


def test_size_limit(ingest, tenant, platform) -> None:
    """Over Settings.max_upload_bytes: 413 from Content-Length (body not parsed), gRPC
    RESOURCE_EXHAUSTED while streaming; nothing stored."""
    store = platform.ctx._tinyforge_sample_store
    old = store.max_upload_bytes
    store.max_upload_bytes = 64 * 1024
    try:
        big = b"t,x\n" + b"".join(b"%d,1\n" % i for i in range(20000))
        assert len(big) > 64 * 1024
        r = ingest.post_files("training", [("big.csv", big, "text/csv")])
        assert r.status_code == 413 and r.json()["success"] is False
        r = ingest.post_data("training", big, {"x-file-name": "big.csv"})
        assert r.status_code == 413
        from tinyforge.v1 import ingest_service_pb2 as ipb

        def msgs():
            yield ipb.UploadStreamRequest(header=ipb.UploadStreamHeader(
                project_id=tenant.project_id, options=ipb.UploadOptions(filename="big.csv")))
            for i in range(0, len(big), 8192):
                yield ipb.UploadStreamRequest(chunk=big[i:i + 8192])

        with pytest.raises(grpc.RpcError) as e:
            ingest.stub.UploadStream(msgs(), metadata=ingest.md)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        with pytest.raises(grpc.RpcError) as e:
            ingest.upload(tenant.project_id, big, filename="big.csv")
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        store.max_upload_bytes = old
    assert stored(platform, tenant.project_id) == (0, [])
    assert requests.get(f"{ingest.url}/", timeout=10).status_code == 200


def test_wrong_revoked_and_foreign_keys_grpc(ingest, tenant, platform) -> None:
    from tinyforge.v1 import ingest_service_pb2 as ipb

    pid = tenant.project_id
    req = ipb.UploadSampleRequest(project_id=pid, data=envelope([[1.0]]),
                                  options=ipb.UploadOptions(filename="a.json"))
    for key, code in [("tf_" + "q" * 40, grpc.StatusCode.UNAUTHENTICATED),
                      (tenant.key("member", revoked=True), grpc.StatusCode.UNAUTHENTICATED),
                      (platform.new_tenant().admin_key, grpc.StatusCode.PERMISSION_DENIED),
                      (tenant.key("member", project_id=tenant.new_project()),
                       grpc.StatusCode.PERMISSION_DENIED)]:
        with pytest.raises(grpc.RpcError) as e:
            ingest.stub.UploadSample(req, metadata=(("x-api-key", key),))
        assert e.value.code() == code

        def msgs():
            yield ipb.UploadStreamRequest(header=ipb.UploadStreamHeader(
                project_id=pid, options=ipb.UploadOptions(filename="a.json")))
            yield ipb.UploadStreamRequest(chunk=envelope([[1.0]]))

        with pytest.raises(grpc.RpcError) as e:
            ingest.stub.UploadStream(msgs(), metadata=(("x-api-key", key),))
        assert e.value.code() == code
    assert stored(platform, pid) == (0, [])
