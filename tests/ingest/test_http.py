"""The Edge-Impulse-compatible HTTP ingestion API, driven by the real `edgeimpulse` SDK and by
raw requests for every header."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import subprocess
import sys
import textwrap

import cbor2
import requests
from PIL import Image

from tests.ingest.conftest import envelope, stored
from tinyforge.v1 import ingest_service_pb2 as ipb


def _sdk(url: str, key: str, script: str) -> dict:
    """Run the unmodified edgeimpulse SDK in a subprocess with EI_* variables set."""
    env = {**os.environ, "EI_INGESTION_ENDPOINT": url, "EI_API_KEY": key}
    # The SDK imports TensorFlow only for model tools, when it is installed; data upload does
    # not use it. Hide it so the subprocess starts in seconds (as on a machine without TF).
    prelude = "import sys\nsys.modules['tensorflow'] = None\n"
    out = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(script)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_edgeimpulse_sdk_upload_samples_and_numpy(ingest, tenant) -> None:
    pid = tenant.project_id
    key = tenant.key("member", project_id=pid)
    result = _sdk(ingest.url, key, """
        import io, json
        import numpy as np
        from edgeimpulse import data
        from edgeimpulse.data import Sample
        csv = b"timestamp,accX,accY\\n0,1,2\\n10,3,4\\n20,5,6\\n"
        samples = [
            Sample(filename="wave.01.csv", data=io.BytesIO(csv), category="training",
                   label="wave", metadata={"site": "lab"}),
            Sample(filename="idle.01.csv", data=io.BytesIO(csv.replace(b"5,6", b"7,8")),
                   category="testing", label="idle"),
        ]
        r1 = data.upload_samples(samples)
        values = np.arange(2 * 5 * 3, dtype=float).reshape(2, 5, 3)
        sensors = [{"name": n, "units": "m/s2"} for n in ("x", "y", "z")]
        r2 = data.upload_numpy(data=values, labels=["up", "down"], sensors=sensors,
                               sample_rate_ms=20, category="training")
        print(json.dumps({"ok1": len(r1.successes), "fail1": [str(f) for f in r1.fails],
                          "ok2": len(r2.successes), "fail2": [str(f) for f in r2.fails],
                          "ids": [s.sample.sample_id for s in r1.successes + r2.successes]}))
    """)
    assert (result["ok1"], result["ok2"]) == (2, 2), result
    rows = {s.id: s for s in ingest.list(pid)}
    assert sorted(rows) == sorted(result["ids"])
    by_label = {s.label: s for s in rows.values()}
    assert set(by_label) == {"wave", "idle", "up", "down"}
    assert by_label["wave"].category == ipb.SAMPLE_CATEGORY_TRAINING
    assert dict(by_label["wave"].metadata) == {"site": "lab"}
    assert by_label["idle"].category == ipb.SAMPLE_CATEGORY_TESTING
    assert by_label["up"].length == 5 and by_label["up"].interval_ms == 20
    assert [a.name for a in by_label["down"].axes] == ["x", "y", "z"]
    assert by_label["up"].upload_source == "EDGE_IMPULSE_PYTHON_SDK"


def test_sdk_duplicate_is_reported_as_a_failure(ingest, tenant) -> None:
    key = tenant.key("member", project_id=tenant.project_id)
    script = """
        import io, json
        from edgeimpulse import data
        from edgeimpulse.data import Sample
        s = lambda: Sample(filename="d.csv", data=io.BytesIO(b"time,a\\n0,1\\n5,4\\n"),
                           category="training", label="d")
        r1 = data.upload_samples(s())
        r2 = data.upload_samples(s())
        print(json.dumps({"ok": [len(r1.successes), len(r2.successes)],
                          "err": [str(f.error) for f in r2.fails]}))
    """
    r = _sdk(ingest.url, key, script)
    assert r["ok"] == [1, 0] and "same content" in r["err"][0]
    assert len(ingest.list(tenant.project_id)) == 1


def test_headers_label_metadata_boxes_and_label_files(ingest, tenant) -> None:
    pid = tenant.project_id
    buf = io.BytesIO()
    Image.new("RGB", (64, 48)).save(buf, "JPEG")
    jpg = buf.getvalue()
    boxes = [{"label": "cup", "x": 1, "y": 2, "width": 10, "height": 20}]
    hdr = {"x-label": "caf%C3%A9%20latte", "x-metadata": json.dumps({"a": "1"}),
           "x-bounding-boxes": json.dumps(boxes), "x-device-type": "CAM",
           "x-upload-source": "test"}
    r = ingest.post_files("training", [("cup.jpg", jpg, "image/jpeg")], hdr)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] and body["files"][0]["success"]
    s = {x.id: x for x in ingest.list(pid)}[body["files"][0]["sampleId"]]
    assert s.label == "café latte" and dict(s.metadata) == {"a": "1"}
    assert [(b.label, b.x, b.y, b.width, b.height) for b in s.bounding_boxes] == [
        ("cup", 1, 2, 10, 20)]
    assert s.device_type == "CAM" and s.upload_source == "test"
    # x-no-label; label inferred from the file name otherwise; x-add-date-id renames
    r = ingest.post_files("testing", [("walk.a1.csv", b"t,x\n0,1\n1,2\n", "text/csv"),
                                      ("run.b2.csv", b"t,x\n0,3\n1,4\n", "text/csv")],
                          {"x-add-date-id": "1"})
    files = r.json()["files"]
    assert [f["label"] for f in files] == ["walk", "run"]
    assert all(f["sampleName"] != f["fileName"] and f["sampleName"].startswith(
        f["fileName"].rsplit(".", 1)[0]) for f in files)
    r = ingest.post_files("testing", [("jump.csv", b"t,x\n0,5\n1,6\n", "text/csv")],
                          {"x-no-label": "1"})
    assert r.json()["files"][0]["label"] == ""
    # bounding_boxes.labels + structured_labels.labels parts
    bb = json.dumps({"version": 1, "type": "bounding-box-labels",
                     "boundingBoxes": {"p.jpg": boxes}}).encode()
    sl = json.dumps({"version": 1, "type": "structured-labels", "structuredLabels": {
        "s.json": [{"startIndex": 0, "endIndex": 19, "label": "a"},
                   {"startIndex": 20, "endIndex": 39, "label": "b"}]}}).encode()
    r = ingest.post_files("training", [("p.jpg", jpg, "image/jpeg"),
                                       ("s.json", envelope([[1]] * 4, interval_ms=10),
                                        "application/json")],
                          extra_parts=[("bounding_boxes.labels", bb),
                                       ("structured_labels.labels", sl)])
    assert r.status_code == 200 and all(f["success"] for f in r.json()["files"]), r.text
    got = {x.filename: x for x in ingest.list(pid)}
    assert len(got["p.jpg"].bounding_boxes) == 1
    assert [(x.start, x.end, x.label) for x in got["s.json"].structured_labels] == [
        (0, 1, "a"), (2, 3, "b")]  # ms → sample indices at 10 ms


def _sign(key: str, env: dict, as_cbor: bool = False) -> bytes:
    env = {**env, "signature": "0" * 64}
    raw = cbor2.dumps(env) if as_cbor else json.dumps(env).encode()
    sig = hmac.new(key.encode(), raw, hashlib.sha256).hexdigest().encode()
    i = raw.find(b"0" * 64)
    return raw[:i] + sig + raw[i + 64:]


def test_data_endpoint_json_and_cbor_signed(ingest, tenant) -> None:
    pid = tenant.project_id
    key = tenant.client().get_hmac_key(pid)
    env = {"protected": {"ver": "v1", "alg": "HS256", "iat": 1700000000},
           "payload": {"device_name": "forwarder-1", "device_type": "NANO33",
                       "interval_ms": 10, "sensors": [{"name": "x", "units": "g"}],
                       "values": [[1], [2], [3]]}}
    hdr = {"x-file-name": "idle.fw.json", "x-label": "idle", "content-type": "application/json",
           "x-project-id": str(pid)}  # optional with a project key; must then match
    r = ingest.post_data("training", _sign(key, env), hdr)
    assert r.status_code == 200, r.text
    r = ingest.post_data("training", _sign(key, env, as_cbor=True),
                         {**hdr, "content-type": "application/cbor", "x-file-name": "c.cbor"})
    assert r.status_code == 200, r.text
    rows = ingest.list(pid)
    assert len(rows) == 2 and all(s.signed and s.label == "idle" for s in rows)
    bad = _sign("not-the-key", env)
    r = ingest.post_data("training", bad, hdr)
    assert r.status_code == 400 and r.json()["success"] is False
    assert "signature" in r.json()["error"].lower()
    assert len(ingest.list(pid)) == 2
    devs = ingest.stub.ListDevices(ipb.ListDevicesRequest(project_id=pid), metadata=ingest.md)
    assert [(d.name, d.sample_count) for d in devs.devices] == [("forwarder-1", 2)]


def test_keys_and_projects(ingest, tenant, platform) -> None:
    pid = tenant.project_id
    other = tenant.new_project()
    files = [("a.csv", b"t,x\n0,1\n1,2\n", "text/csv")]
    own = tenant.key("member", project_id=pid)
    guest = tenant.key("guest", project_id=pid)
    revoked = tenant.key("member", project_id=pid, revoked=True)
    foreign = platform.new_tenant().admin_key

    def post(key: str | None, extra: dict | None = None) -> requests.Response:
        h = {"x-api-key": key} if key else {}
        return requests.post(f"{ingest.url}/api/training/files", files=[
            ("data", f) for f in files], headers={**h, **(extra or {})}, timeout=30)

    assert post(own).status_code == 200
    assert post(own, {"x-project-id": str(other)}).status_code == 403  # other project
    assert post(guest).status_code == 403  # read-only role
    assert post(revoked).status_code == 401
    assert post("tf_" + "x" * 40).status_code == 401
    assert post(None).status_code == 401
    assert post(foreign, {"x-project-id": str(pid)}).status_code == 403  # other org
    assert post(tenant.admin_key).status_code == 400  # org key without x-project-id
    assert post(tenant.admin_key, {"x-project-id": str(other)}).status_code == 200
    assert stored(platform, pid)[0] == 1 and stored(platform, other)[0] == 1
    for r in (post(revoked), post(guest)):
        assert r.json()["success"] is False and r.json()["error"]


def test_unknown_endpoint_and_missing_parts(ingest, tenant) -> None:
    r = requests.post(f"{ingest.url}/api/training/other", data=b"x",
                      headers={"x-api-key": ingest.key}, timeout=30)
    assert r.status_code == 404 and r.json()["success"] is False
    r = requests.post(f"{ingest.url}/api/training/files", files=[("other", ("a", b"1"))],
                      headers={"x-api-key": tenant.key("member", project_id=tenant.project_id)},
                      timeout=30)
    assert r.status_code == 400 and "data" in r.json()["error"]
    assert requests.get(f"{ingest.url}/", timeout=30).json()["success"] is True
