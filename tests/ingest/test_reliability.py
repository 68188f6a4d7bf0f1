"""Reliability: a client killed mid-stream leaves nothing; 50 concurrent uploaders are exact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from tests.ingest.conftest import envelope, stored
from tinyforge.v1 import ingest_service_pb2 as ipb
from tinyforge.v1 import ingest_service_pb2_grpc

REPO = Path(__file__).resolve().parents[2]


def test_client_killed_during_upload_stream_leaves_nothing(ingest, tenant, platform,
                                                           store, tmp_path) -> None:
    pid = tenant.project_id
    marker = tmp_path / "sent"
    # The client streams chunks slowly and never finishes; after a few MB it reports progress
    # through a marker file, then gets SIGKILLed.
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        import grpc
        from tinyforge.v1 import ingest_service_pb2 as ipb, ingest_service_pb2_grpc as g
        def msgs():
            yield ipb.UploadStreamRequest(header=ipb.UploadStreamHeader(
                project_id={pid}, size_bytes=50 << 20,
                options=ipb.UploadOptions(filename="big.wav", label="x")))
            chunk = b"\\x01" * (1 << 20)
            for i in range(50):
                yield ipb.UploadStreamRequest(chunk=chunk)
                if i == 4:
                    open({str(marker)!r}, "w").write("5")
                time.sleep(0.2)
        ch = grpc.insecure_channel({platform.address!r})
        g.IngestServiceStub(ch).UploadStream(msgs(), metadata=(("x-api-key", {ingest.key!r}),))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, "client ended before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # The server notices the broken stream and discards the upload (rows and objects).
    deadline = time.monotonic() + 30
    while stored(platform, pid) != (0, []) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stored(platform, pid) == (0, [])
    assert ingest.list(pid) == []
    # No temp file of the object store is left behind either.
    tmp_dir = platform.ctx.settings.objects_dir / ".tmp"
    assert not [p for p in tmp_dir.iterdir() if p.stat().st_size >= 1 << 20]
    # cleanup of what a crashed *server* would leave: a pending row and an orphan object
    from tinyforge.store.models import Sample

    with platform.ctx.db.session() as s:
        row = Sample(project_id=pid, state="pending", filename="crash.json")
        s.add(row)
        s.flush()
        crashed = row.id
    platform.ctx.objects.put_bytes(f"projects/{pid}/raw/{crashed}/original", b"half")
    assert store.cleanup_stale_uploads(older_than_s=3600) == 0  # too young: maybe in progress
    assert store.cleanup_stale_uploads(older_than_s=0) == 1
    assert stored(platform, pid) == (0, [])
    assert ingest.upload(pid, envelope([[1.0]]), filename="after.json").id > 0


def test_50_concurrent_uploaders_40_samples_each(ingest, tenant, platform) -> None:
    pid = tenant.project_id
    n_clients, per_client = 50, 40
    labels = ["a", "b", "c", "d"]

    def client(c: int) -> list[int]:
        ch = grpc.insecure_channel(platform.address)
        stub = ingest_service_pb2_grpc.IngestServiceStub(ch)
        ids = []
        for i in range(per_client):
            req = ipb.UploadSampleRequest(project_id=pid, data=envelope([[c, i], [i, c]]),
                                          options=ipb.UploadOptions(
                                              filename=f"c{c}.{i}.json",
                                              label=labels[(c + i) % 4],
                                              device_name=f"dev{c % 5}"))
            ids.append(stub.UploadSample(req, metadata=ingest.md, timeout=120).sample.id)
        ch.close()
        return ids

    with ThreadPoolExecutor(n_clients) as pool:
        ids = [i for chunk in pool.map(client, range(n_clients)) for i in chunk]
    assert len(ids) == len(set(ids)) == n_clients * per_client
    summary = ingest.summary(pid)
    assert summary.total_count == 2000
    expected = {lab: 0 for lab in labels}
    for c in range(n_clients):
        for i in range(per_client):
            expected[labels[(c + i) % 4]] += 1
    assert {e.label: e.count for e in summary.labels} == expected
    assert summary.total_duration_ms == 2000 * 2 * 10
    assert stored(platform, pid)[0] == 2000
    assert len(stored(platform, pid)[1]) == 2000  # an EI envelope is its own canonical object
    devs = ingest.stub.ListDevices(ipb.ListDevicesRequest(project_id=pid), metadata=ingest.md)
    assert sorted(d.sample_count for d in devs.devices) == [400] * 5


def test_concurrent_duplicates_store_exactly_one(ingest, tenant, platform) -> None:
    """Uploads are group-committed in batches: 24 concurrent uploads of the same content with
    disallow_duplicates store exactly one sample; the others get ALREADY_EXISTS and leave
    no row or object behind, while distinct uploads in the same batches all succeed."""
    pid = tenant.project_id
    same = envelope([[7, 7], [8, 8]])
    before = stored(platform, pid)

    def one(i: int) -> str:
        ch = grpc.insecure_channel(platform.address)
        stub = ingest_service_pb2_grpc.IngestServiceStub(ch)
        data = same if i % 2 == 0 else envelope([[i, 1000 + i], [i, i]])
        try:
            stub.UploadSample(ipb.UploadSampleRequest(
                project_id=pid, data=data, options=ipb.UploadOptions(
                    filename=f"dup{i}.json", label="dup", disallow_duplicates=True)),
                metadata=ingest.md, timeout=120)
            return "ok-same" if i % 2 == 0 else "ok-other"
        except grpc.RpcError as e:
            return e.code().name
        finally:
            ch.close()

    with ThreadPoolExecutor(48) as pool:
        outcomes = list(pool.map(one, range(48)))
    assert outcomes.count("ok-same") == 1
    assert outcomes.count("ALREADY_EXISTS") == 23
    assert outcomes.count("ok-other") == 24
    rows, objects = stored(platform, pid)
    assert rows == before[0] + 25
    assert len(objects) == len(before[1]) + 25  # one object (the original) per stored sample
