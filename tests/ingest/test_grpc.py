"""IngestService through gRPC: formats, queries, edits, split, summary, dedup, devices."""

from __future__ import annotations

import hashlib
import io
import json
import wave

import cbor2
import grpc
import numpy as np
import pytest
from PIL import Image

from tests.ingest.conftest import envelope, stored
from tinyforge.v1 import ingest_service_pb2 as ipb

TRAIN, TEST = ipb.SAMPLE_CATEGORY_TRAINING, ipb.SAMPLE_CATEGORY_TESTING


def wav16(values: list[int], rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.array(values, dtype="<i2").tobytes())
    return buf.getvalue()


def png(w: int = 32, h: int = 24) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (10, 200, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_every_format_is_stored_with_original_and_canonical(ingest, tenant, platform) -> None:
    pid = tenant.project_id
    cbor_env = cbor2.dumps({"protected": {"ver": "v1", "alg": "none"}, "signature": "0" * 64,
                            "payload": {"device_name": "dev-1", "device_type": "NANO",
                                        "interval_ms": 5, "sensors": [{"name": "x",
                                                                       "units": "g"}],
                                        "values": [1, 2, 3, 4]}})
    files = {
        "a.json": envelope([[1, 2, 3], [4, 5, 6]], interval_ms=16),
        "b.cbor": cbor_env,
        "c.csv": b"timestamp,x,y\n0,1,2\n10,3,4\n20,5,6\n",
        "d.wav": wav16([0, 100, -100, 32767, -32768] * 20),
        "e.png": png(),
    }
    got = {n: ingest.upload(pid, d, filename=n, label="l") for n, d in files.items()}
    assert got["a.json"].length == 2 and got["a.json"].interval_ms == 16
    assert [a.name for a in got["a.json"].axes] == ["a0", "a1", "a2"]
    assert got["b.cbor"].format == "ei-cbor" and got["b.cbor"].device_name == "dev-1"
    assert got["c.csv"].interval_ms == 10 and got["c.csv"].length == 3
    assert got["d.wav"].kind == "audio" and got["d.wav"].interval_ms == pytest.approx(0.125)
    assert got["d.wav"].duration_ms == pytest.approx(100 * 0.125)
    assert (got["e.png"].width, got["e.png"].height) == (32, 24)
    assert not got["e.png"].has_canonical and got["d.wav"].has_canonical
    for name, s in got.items():
        assert s.sha256 == hashlib.sha256(files[name]).hexdigest()
        # the original comes back byte for byte
        chunks = list(ingest.stub.DownloadSample(ipb.DownloadSampleRequest(
            project_id=pid, sample_id=s.id), metadata=ingest.md))
        assert chunks[0].sample.id == s.id
        assert b"".join(c.chunk for c in chunks) == files[name]
    # the canonical array is the decoded signal
    chunks = ingest.stub.DownloadSample(ipb.DownloadSampleRequest(
        project_id=pid, sample_id=got["d.wav"].id, canonical=True), metadata=ingest.md)
    npz = np.load(io.BytesIO(b"".join(c.chunk for c in chunks)))
    pcm = np.array([0, 100, -100, 32767, -32768] * 20, dtype=np.float32)
    assert npz["values"].shape == (100, 1)
    # stored exactly as the data library derives it ...
    from tinyforge.data.formats import parse_upload

    np.testing.assert_array_equal(npz["values"], parse_upload(files["d.wav"]).series.values)
    # ... which is the PCM signal up to the library's choice of scale
    scale = npz["values"][3, 0] / 32767.0
    np.testing.assert_allclose(npz["values"][:, 0], pcm * scale, rtol=1e-4, atol=abs(scale))
    # an EI envelope is its own canonical object too: the .npz is derived from it on request
    for name in ("a.json", "b.cbor"):
        chunks = ingest.stub.DownloadSample(ipb.DownloadSampleRequest(
            project_id=pid, sample_id=got[name].id, canonical=True), metadata=ingest.md)
        npz = np.load(io.BytesIO(b"".join(c.chunk for c in chunks)))
        want = parse_upload(files[name], allow_unsigned=True).series
        np.testing.assert_array_equal(npz["values"], want.values)
    rows, keys = stored(platform, pid)
    assert rows == 5
    assert sorted(keys) == sorted(
        [f"projects/{pid}/raw/{s.id}/original" for s in got.values()]
        + [f"projects/{pid}/raw/{s.id}/canonical.npz" for n, s in got.items()
           if n.endswith(".csv")]), "WAV and EI envelopes are their own canonical object"


def test_list_filters_and_paging(ingest, tenant) -> None:
    pid = tenant.project_id
    for i in range(7):
        ingest.upload(pid, envelope([[i, 1], [2, 3]]), filename=f"walk.{i}.json",
                      label="walk" if i % 2 else "idle", metadata={"run": str(i % 3)},
                      category=TEST if i == 6 else TRAIN, device_name=f"dev{i % 2}")
    ingest.upload(pid, envelope([[9, 9]]), filename="nolabel.json")
    assert len(ingest.list(pid)) == 8
    assert {s.filename for s in ingest.list(pid, label="walk")} == {
        "walk.1.json", "walk.3.json", "walk.5.json"}
    assert [s.filename for s in ingest.list(pid, label="")] == ["nolabel.json"]
    assert len(ingest.list(pid, category=TEST)) == 1
    assert {s.filename for s in ingest.list(pid, metadata={"run": "0"})} == {
        "walk.0.json", "walk.3.json", "walk.6.json"}
    assert len(ingest.list(pid, device="dev1")) == 3
    assert [s.filename for s in ingest.list(pid, search="LK.4")] == ["walk.4.json"]
    pages, token = [], ""
    while True:
        r = ingest.stub.ListSamples(ipb.ListSamplesRequest(project_id=pid, page_size=3,
                                                           page_token=token), metadata=ingest.md)
        assert r.total_count == 8
        pages.append([s.id for s in r.samples])
        token = r.next_page_token
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 2]
    flat = [i for p in pages for i in p]
    assert flat == sorted(flat) and len(set(flat)) == 8


def test_update_move_delete(ingest, tenant, platform) -> None:
    pid = tenant.project_id
    img = ingest.upload(pid, png(100, 50), filename="img.png", label="cat")
    ts = ingest.upload(pid, envelope([[1], [2], [3], [4]]), filename="t.json", label="x")
    md = ingest.md
    upd = ingest.stub.UpdateSample(ipb.UpdateSampleRequest(
        project_id=pid, sample_id=img.id, label="dog", set_metadata=True,
        metadata={"k": "v"}, set_bounding_boxes=True,
        bounding_boxes=[ipb.BoundingBox(label="dog", x=10, y=5, width=20, height=30)],
        enabled=False), metadata=md).sample
    assert (upd.label, dict(upd.metadata), upd.enabled) == ("dog", {"k": "v"}, False)
    assert [(b.label, b.x, b.width) for b in upd.bounding_boxes] == [("dog", 10, 20)]
    upd = ingest.stub.UpdateSample(ipb.UpdateSampleRequest(
        project_id=pid, sample_id=ts.id, set_structured_labels=True,
        structured_labels=[ipb.LabelRange(start=0, end=1, label="a"),
                           ipb.LabelRange(start=2, end=3, label="b")]), metadata=md).sample
    assert [(r.start, r.end, r.label) for r in upd.structured_labels] == [(0, 1, "a"),
                                                                         (2, 3, "b")]
    with pytest.raises(grpc.RpcError) as e:  # box outside the 100x50 image
        ingest.stub.UpdateSample(ipb.UpdateSampleRequest(
            project_id=pid, sample_id=img.id, set_bounding_boxes=True,
            bounding_boxes=[ipb.BoundingBox(label="d", x=90, y=0, width=50, height=10)]),
            metadata=md)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    got = ingest.stub.GetSample(ipb.GetSampleRequest(project_id=pid, sample_id=img.id),
                                metadata=md).sample
    assert got.label == "dog" and len(got.bounding_boxes) == 1
    moved = ingest.stub.MoveSamples(ipb.MoveSamplesRequest(
        project_id=pid, sample_ids=[img.id, ts.id], category=ipb.SAMPLE_CATEGORY_ANOMALY),
        metadata=md)
    assert moved.moved == 2 and len(ingest.list(pid, category=ipb.SAMPLE_CATEGORY_ANOMALY)) == 2
    with pytest.raises(grpc.RpcError) as e:  # all-or-nothing: one unknown id, nothing deleted
        ingest.stub.DeleteSamples(ipb.DeleteSamplesRequest(project_id=pid,
                                                           sample_ids=[img.id, 10**9]),
                                  metadata=md)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert stored(platform, pid)[0] == 2
    d = ingest.stub.DeleteSamples(ipb.DeleteSamplesRequest(project_id=pid, sample_ids=[img.id]),
                                  metadata=md)
    assert d.deleted == 1
    rows, keys = stored(platform, pid)
    assert rows == 1 and all(f"/raw/{img.id}/" not in k for k in keys)
    with pytest.raises(grpc.RpcError) as e:
        ingest.stub.GetSample(ipb.GetSampleRequest(project_id=pid, sample_id=img.id),
                              metadata=md)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def _test_side(sha: str, fraction: float = 0.2) -> bool:
    return int(sha[:16], 16) / 2.0**64 < fraction


def test_split_and_rebalance_are_deterministic_by_hash(ingest, tenant) -> None:
    pid = tenant.project_id
    first = [ingest.upload(pid, envelope([[i, i + 1]]), filename=f"s{i}.json", label="a",
                           category=ipb.SAMPLE_CATEGORY_SPLIT) for i in range(60)]
    for s in first:
        assert (s.category == TEST) == _test_side(s.sha256)
    n_test = sum(s.category == TEST for s in first)
    assert 3 <= n_test <= 25  # ~20 % of 60
    ids = [s.id for s in first[:10]]
    ingest.stub.MoveSamples(ipb.MoveSamplesRequest(project_id=pid, sample_ids=ids,
                                                   category=TEST), metadata=ingest.md)
    r = ingest.stub.RebalanceSplit(ipb.RebalanceSplitRequest(project_id=pid), metadata=ingest.md)
    assert r.moved == sum(not _test_side(s.sha256) for s in first[:10])
    assert (r.training, r.testing) == (60 - n_test, n_test)
    # more data: old samples stay where they were
    for i in range(60, 90):
        ingest.upload(pid, envelope([[i, i + 1]]), filename=f"s{i}.json", label="a")
    r2 = ingest.stub.RebalanceSplit(ipb.RebalanceSplitRequest(project_id=pid), metadata=ingest.md)
    after = {s.id: s.category for s in ingest.list(pid)}
    assert all(after[s.id] == s.category for s in first)
    assert r2.training + r2.testing == 90


def test_summary_counts_and_durations(ingest, tenant) -> None:
    pid = tenant.project_id
    for i in range(3):
        ingest.upload(pid, envelope([[i]] * 50, interval_ms=20), filename=f"a{i}.json",
                      label="a")
    ingest.upload(pid, wav16([1] * 800), filename="w.wav", label="b", category=TEST)
    ingest.upload(pid, png(), filename="p.png")
    s = ingest.summary(pid)
    assert s.total_count == 5
    assert s.total_duration_ms == pytest.approx(3 * 50 * 20 + 100)
    labels = {(e.category, e.label): (e.count, e.duration_ms) for e in s.labels}
    assert labels == {(TRAIN, "a"): (3, pytest.approx(3000)), (TEST, "b"): (1, 100.0),
                      (TRAIN, ""): (1, 0.0)}
    cats = {e.category: e.count for e in s.categories}
    assert cats == {TRAIN: 4, TEST: 1}


def test_disallow_duplicates_and_devices(ingest, tenant, platform) -> None:
    pid = tenant.project_id
    data = envelope([[1, 2]], device_name="aa:bb")
    first = ingest.upload(pid, data, filename="x.json", disallow_duplicates=True)
    with pytest.raises(grpc.RpcError) as e:
        ingest.upload(pid, data, filename="y.json", disallow_duplicates=True)
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert str(first.id) in e.value.details()
    assert stored(platform, pid)[0] == 1
    ingest.upload(pid, data, filename="z.json")  # allowed when not asked
    ingest.upload(pid, envelope([[3, 4]]), filename="w.json", device_name="gw-2",
                  device_type="LINUX")
    devs = ingest.stub.ListDevices(ipb.ListDevicesRequest(project_id=pid),
                                   metadata=ingest.md).devices
    by_name = {d.name: d for d in devs}
    assert by_name["aa:bb"].sample_count == 2 and by_name["aa:bb"].device_type == "TEST"
    assert by_name["gw-2"].sample_count == 1 and by_name["gw-2"].device_type == "LINUX"
    assert by_name["aa:bb"].first_seen.ToDatetime() <= by_name["aa:bb"].last_seen.ToDatetime()


def test_upload_stream_large_file(ingest, tenant) -> None:
    pid = tenant.project_id
    values = (np.arange(3_000_000) % 2000 - 1000).astype("<i2")
    data = wav16(values.tolist(), rate=16000)
    digest = hashlib.sha256(data).hexdigest()

    def messages():
        yield ipb.UploadStreamRequest(header=ipb.UploadStreamHeader(
            project_id=pid, size_bytes=len(data),
            options=ipb.UploadOptions(filename="long.wav", label="hum")))
        for i in range(0, len(data), 1 << 20):
            yield ipb.UploadStreamRequest(chunk=data[i:i + (1 << 20)])

    s = ingest.stub.UploadStream(messages(), metadata=ingest.md).sample
    assert s.sha256 == digest and s.length == 3_000_000 and s.label == "hum"
    body = b"".join(c.chunk for c in ingest.stub.DownloadSample(
        ipb.DownloadSampleRequest(project_id=pid, sample_id=s.id), metadata=ingest.md))
    assert body == data


def test_sdk_streams_large_files(tenant, tmp_path) -> None:
    """Client.upload_file sends files over STREAM_THRESHOLD through UploadStream with its own
    message encoding; the stored bytes are the file's."""
    client = tenant.client()
    data = wav16((np.arange(3_000_000) % 3000 - 1500).astype("<i2").tolist(), rate=16000)
    assert len(data) > client.STREAM_THRESHOLD
    path = tmp_path / "long.wav"
    path.write_bytes(data)
    s = client.upload_file(path, project_id=tenant.project_id, label="hum")
    assert s.sha256 == hashlib.sha256(data).hexdigest() and s.length == 3_000_000
    assert s.filename == "long.wav" and s.label == "hum"
    assert client.download_sample(s.id, tenant.project_id)[1] == data


def _stream(ingest, pid: int, data: bytes, name: str, piece: int = 4096) -> ipb.Sample:
    def messages():
        yield ipb.UploadStreamRequest(header=ipb.UploadStreamHeader(
            project_id=pid, size_bytes=len(data), options=ipb.UploadOptions(filename=name)))
        for i in range(0, len(data), piece):
            yield ipb.UploadStreamRequest(chunk=data[i:i + piece])

    return ingest.stub.UploadStream(messages(), metadata=ingest.md).sample


def test_streamed_wav_is_checked_without_decoding_and_reads_back(ingest, tenant,
                                                                 platform) -> None:
    """Streamed WAVs are validated from header + size (float ones scanned for NaN/Inf across
    chunk boundaries); the canonical download is the same array the library decodes."""
    from tinyforge.data.formats import parse_upload
    from tinyforge.data.wav import encode_wav

    pid = tenant.project_id
    pcm = wav16([5, -7, 32767, -32768, 0] * 4000, rate=16000)
    s = _stream(ingest, pid, pcm, "p.wav", piece=333)  # odd pieces: header split across them
    assert s.length == 20000 and s.interval_ms == pytest.approx(1000 / 16000)
    assert s.has_canonical and s.kind == "audio"
    npz = np.load(io.BytesIO(b"".join(c.chunk for c in ingest.stub.DownloadSample(
        ipb.DownloadSampleRequest(project_id=pid, sample_id=s.id, canonical=True),
        metadata=ingest.md))))
    np.testing.assert_array_equal(npz["values"], parse_upload(pcm).series.values)
    before = stored(platform, pid)
    sig = np.sin(np.arange(50_000) / 10.0)[:, None] * 0.5
    floats = bytearray(encode_wav(sig, 8000, bits=32, float_format=True))
    ok = _stream(ingest, pid, bytes(floats), "f.wav", piece=1001)
    assert ok.length == 50_000
    floats[-400:-396] = np.array([np.nan], dtype="<f4").tobytes()  # in the last chunk
    with pytest.raises(grpc.RpcError) as e:
        _stream(ingest, pid, bytes(floats), "nan.wav", piece=1001)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "NaN" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        _stream(ingest, pid, pcm[:-3], "cut.wav")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "truncated" in e.value.details()
    rows, keys = stored(platform, pid)
    assert rows == before[0] + 1 and len(keys) == len(before[1]) + 1, "rejected: nothing kept"


def test_upload_stream_needs_header_first_and_exact_size(ingest, tenant, platform) -> None:
    pid = tenant.project_id
    with pytest.raises(grpc.RpcError) as e:
        ingest.stub.UploadStream(iter([ipb.UploadStreamRequest(chunk=b"abc")]),
                                 metadata=ingest.md)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    data = envelope([[1, 2]])
    msgs = [ipb.UploadStreamRequest(header=ipb.UploadStreamHeader(
        project_id=pid, size_bytes=len(data) + 5, options=ipb.UploadOptions(filename="a.json"))),
        ipb.UploadStreamRequest(chunk=data)]
    with pytest.raises(grpc.RpcError) as e:
        ingest.stub.UploadStream(iter(msgs), metadata=ingest.md)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "announced" in e.value.details()
    assert stored(platform, pid) == (0, [])


def test_upload_stream_over_the_limit_is_refused_from_its_header(ingest, tenant,
                                                                 platform) -> None:
    """An announced size over the limit is refused from the header, naming the size."""
    pid = tenant.project_id

    def messages():
        yield ipb.UploadStreamRequest(header=ipb.UploadStreamHeader(
            project_id=pid, size_bytes=10**12, options=ipb.UploadOptions(filename="big.wav")))
        yield ipb.UploadStreamRequest(chunk=b"RIFF")

    with pytest.raises(grpc.RpcError) as e:
        ingest.stub.UploadStream(messages(), metadata=ingest.md)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "announces 1000000000000 bytes" in e.value.details()
    assert stored(platform, pid) == (0, [])


def test_unsigned_json_is_refused_when_project_requires_signatures(ingest, tenant) -> None:
    from tinyforge.v1 import project_service_pb2 as ppb
    from tinyforge.v1 import project_service_pb2_grpc

    pid = tenant.new_project()
    channel = grpc.insecure_channel(tenant.platform.address)
    projects = project_service_pb2_grpc.ProjectServiceStub(channel)
    projects.UpdateProject(ppb.UpdateProjectRequest(project_id=pid, allow_unsigned_data=False),
                           metadata=ingest.md)
    with pytest.raises(grpc.RpcError) as e:
        ingest.upload(pid, envelope([[1, 2]]), filename="a.json")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unsigned" in e.value.details()
    key = projects.GetProjectHmacKey(ppb.GetProjectHmacKeyRequest(project_id=pid),
                                     metadata=ingest.md).hmac_key
    body = json.dumps({"protected": {"ver": "v1", "alg": "HS256"}, "signature": "0" * 64,
                       "payload": {"device_type": "T", "interval_ms": 1,
                                   "sensors": [{"name": "x", "units": "g"}],
                                   "values": [[1], [2]]}}).encode()
    import hmac as hmac_mod

    sig = hmac_mod.new(key.encode(), body, hashlib.sha256).hexdigest()
    signed = body.replace(b"0" * 64, sig.encode())
    s = ingest.upload(pid, signed, filename="s.json")
    assert s.signed
    channel.close()
