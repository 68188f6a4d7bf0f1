"""The shortcuts of the upload hot path give the same results as the general code they skip:
zero-copy stream decoding, the in-memory multipart split and header parsing, the auth/project
cache (and its invalidation), and the driver-level writes of the group committer."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from google.protobuf.message import DecodeError

from services.ingest.http_api import _fast_headers, _split_multipart, parse_multipart
from tinyforge.accounts import apikeys, members
from tinyforge.auth import authenticate, cache
from tinyforge.data.stream_wire import encode_chunk, encode_header, parse_stream_part
from tinyforge.errors import Unauthenticated
from tinyforge.store.db import Database
from tinyforge.store.models import AuditLog, Organization, Project, Role
from tinyforge.v1 import ingest_service_pb2 as ipb

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ UploadStream decoding
def _messages() -> list[ipb.UploadStreamRequest]:
    header = ipb.UploadStreamHeader(project_id=7, size_bytes=123,
                                    options=ipb.UploadOptions(filename="a.wav", label="x"))
    return [
        ipb.UploadStreamRequest(header=header),
        ipb.UploadStreamRequest(chunk=b""),
        ipb.UploadStreamRequest(chunk=b"\x00\x01\xff" * 1000),
        ipb.UploadStreamRequest(chunk=bytes(range(256)) * 700),  # multi-byte length varint
        ipb.UploadStreamRequest(),
    ]


@pytest.mark.parametrize("msg", _messages(), ids=lambda m: m.WhichOneof("part") or "empty")
def test_stream_part_matches_protobuf(msg: ipb.UploadStreamRequest) -> None:
    data = msg.SerializeToString()
    part = parse_stream_part(data)
    assert part.WhichOneof("part") == msg.WhichOneof("part")
    assert bytes(part.chunk) == msg.chunk
    assert part.header == msg.header
    if msg.WhichOneof("part") == "chunk" and msg.chunk:
        assert isinstance(part.chunk, memoryview) and part.chunk.readonly  # no copy


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16383, 16384, 300_000])
def test_encoded_stream_parts_are_protobuf_bytes(size: int) -> None:
    """The SDK's pre-serialized messages are byte for byte what protobuf would send (varint
    lengths of 1-3 bytes included), from bytes or a memoryview."""
    chunk = bytes(range(256)) * (size // 256 + 1)
    chunk = chunk[:size]
    expect = ipb.UploadStreamRequest(chunk=chunk).SerializeToString()
    assert encode_chunk(chunk) == expect
    assert encode_chunk(memoryview(chunk)) == expect
    header = ipb.UploadStreamHeader(project_id=9, size_bytes=size, options=ipb.UploadOptions(
        filename="x" * size if size < 20_000 else "big.wav", label="é"))
    assert encode_header(header) == ipb.UploadStreamRequest(header=header).SerializeToString()
    assert parse_stream_part(encode_header(header)).header == header


def test_stream_part_unusual_input_goes_through_protobuf() -> None:
    chunk = ipb.UploadStreamRequest(chunk=b"abc").SerializeToString()
    header = ipb.UploadStreamRequest(header=ipb.UploadStreamHeader(project_id=3))
    # the last member of a oneof wins, as in protobuf
    both = header.SerializeToString() + chunk
    assert parse_stream_part(both).WhichOneof("part") == "chunk"
    assert bytes(parse_stream_part(both).chunk) == b"abc"
    # unknown fields are skipped like protobuf does
    unknown = b"\x18\x05" + b"\x25\x01\x02\x03\x04" + chunk  # field 3 varint, field 4 fixed32
    assert bytes(parse_stream_part(unknown).chunk) == b"abc"
    # truncated messages raise the generated parser's error
    for bad in (chunk[:-1], b"\x12", b"\x12\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"):
        with pytest.raises(DecodeError):
            ipb.UploadStreamRequest.FromString(bad)
        with pytest.raises(DecodeError):
            parse_stream_part(bad)


# ------------------------------------------------------------------ multipart and headers
def _multipart(boundary: str, parts: list[tuple[str, str | None, str | None, bytes]]) -> bytes:
    out = b""
    for name, filename, ctype, data in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n".encode()
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def test_multipart_split_matches_streaming_parser(monkeypatch) -> None:
    from services.ingest import http_api

    boundary = "b0undary-7"
    body = _multipart(boundary, [
        ("data", "a.json", "application/json", b'{"x": 1}\r\n--b0undar'),
        ("data", "b.bin", None, bytes(range(256)) * 9),
        ("data", "empty.csv", "text/csv", b""),
        ("other", None, None, b"value"),
    ])
    fast = parse_multipart(io.BytesIO(body), len(body), boundary.encode(), 1 << 20)
    assert all(isinstance(p.file, io.BytesIO) for p in fast)  # the in-memory split ran
    monkeypatch.setattr(http_api, "SMALL_BODY", -1)  # every body through the streaming parser
    slow = parse_multipart(io.BytesIO(body), len(body), boundary.encode(), 1 << 20)
    assert not any(isinstance(p.file, io.BytesIO) for p in slow)
    assert [(p.name, p.filename, p.content_type, p.size, p.file.read()) for p in fast] == \
        [(p.name, p.filename, p.content_type, p.size, p.file.read()) for p in slow]
    assert len(fast) == 4
    assert _split_multipart(b"preamble\r\n" + body, boundary.encode()) is None


def test_multipart_limits_and_malformed_bodies() -> None:
    from tinyforge.errors import InvalidArgument, ResourceExhausted

    body = _multipart("bnd", [("data", "big.bin", None, b"x" * 100)])
    with pytest.raises(ResourceExhausted):
        parse_multipart(io.BytesIO(body), len(body), b"bnd", 99)
    assert len(parse_multipart(io.BytesIO(body), len(body), b"bnd", 100)) == 1
    with pytest.raises(InvalidArgument):  # body shorter than announced
        parse_multipart(io.BytesIO(body[:-5]), len(body), b"bnd", 1000)
    # no closing delimiter: the split declines; the streaming parser decides
    assert _split_multipart(body[: body.rindex(b"\r\n--bnd")], b"bnd") is None


def test_fast_headers() -> None:
    h = _fast_headers([b"Host: x\r\n", b"X-Label:  a%20b \r\n", b"x-label: second\r\n",
                       b"Content-Length: 12\r\n"])
    assert h is not None
    assert h.get("x-label") == "a%20b" and h.get("X-LABEL") == "a%20b"  # first one wins
    assert h.get("content-length") == "12" and h.get("missing", "d") == "d"
    assert "HOST" in h
    # anything not plainly "Name: value" is left to email.parser
    assert _fast_headers([b"X-A: 1\r\n", b" continued\r\n"]) is None
    assert _fast_headers([b"no colon\r\n"]) is None


def test_http_folded_headers_and_http10(ingest, tenant) -> None:
    """Requests the short header path declines still work (standard parser)."""
    body = _multipart("zz", [("data", "hello.csv", "text/csv", b"t,x\n0,1\n1,2\n")])
    host, port = ingest.url.split("//")[1].split(":")
    head = (f"POST /api/training/files HTTP/1.0\r\nx-api-key: {ingest.http_key}\r\n"
            f"X-Comment: folded\r\n  header\r\nX-Label: ten\r\n"
            f"Content-Type: multipart/form-data; boundary=zz\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(head + body)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    status, _, rest = reply.partition(b"\r\n")
    assert status.split()[1] == b"200", reply
    assert b'"success": true' in rest and b'"label": "ten"' in rest
    # and a plain request (the short path) right after
    r = requests.post(f"{ingest.url}/api/training/files",
                      headers={"x-api-key": ingest.http_key, "x-label": "plain"},
                      files=[("data", ("b.csv", b"t,x\n0,1\n1,2\n", "text/csv"))], timeout=30)
    assert r.status_code == 200 and r.json()["files"][0]["label"] == "plain"


# ------------------------------------------------------------------ auth and project cache
def test_revocation_applies_to_the_next_call_despite_the_cache(platform, tenant) -> None:
    db = platform.ctx.db
    with db.session() as s:
        m = members.add_member(s, tenant.org_id, f"cache-{datetime.now(UTC).timestamp()}@x.io",
                               Role.MEMBER)
        key, secret = apikeys.create_api_key(s, org_id=tenant.org_id, role=Role.MEMBER,
                                             user_id=m.user_id)
    with db.session() as s:
        first = authenticate(s, secret)
    assert cache.principals.get(_hash(secret)) == first  # now served from the cache
    with db.session() as s:
        apikeys.revoke_api_key(s, key.id)
    with db.session() as s, pytest.raises(Unauthenticated):
        authenticate(s, secret)


def test_a_removed_member_loses_access_at_once(platform, tenant) -> None:
    from tinyforge.errors import PermissionDenied

    db = platform.ctx.db
    with db.session() as s:
        m = members.add_member(s, tenant.org_id, f"rm-{datetime.now(UTC).timestamp()}@x.io",
                               Role.MEMBER)
        _key, secret = apikeys.create_api_key(s, org_id=tenant.org_id, role=Role.MEMBER,
                                              user_id=m.user_id)
    with db.session() as s:
        authenticate(s, secret)
    with db.session() as s:
        members.remove_member(s, tenant.org_id, m.user_id)
    with db.session() as s, pytest.raises(PermissionDenied):
        authenticate(s, secret)


def test_project_cache_follows_setting_changes(platform, tenant) -> None:
    db = platform.ctx.db
    pid = tenant.new_project()
    with db.read() as conn:
        before = cache.project_facts(conn, pid)
    assert before is not None and cache.projects.get(pid) == before
    with db.session() as s:
        s.get(Project, pid).allow_unsigned_data = not before.allow_unsigned_data
    with db.read() as conn:
        after = cache.project_facts(conn, pid)
    assert after is not None and after.allow_unsigned_data is not before.allow_unsigned_data
    with db.read() as conn:
        assert cache.project_facts(conn, 10**9) is None  # unknown: not cached
    assert cache.projects.get(10**9) is None


def test_fill_racing_an_invalidation_is_dropped() -> None:
    c = cache._TtlCache()
    gen = c.generation
    c.clear()  # a revocation lands while a lookup is in flight
    c.put("k", "stale", gen)
    assert c.get("k") is None
    c.put("k", "fresh", c.generation)
    assert c.get("k") == "fresh"


def _hash(secret: str) -> str:
    from tinyforge.auth.keys import hash_secret

    return hash_secret(secret)


# ------------------------------------------------------------------ driver-level writes
def test_driver_writes_store_what_sqlalchemy_stores() -> None:
    """Rows inserted by the group committer's driver path read back exactly like rows
    inserted through SQLAlchemy Core (same text for datetimes, JSON, booleans)."""
    with tempfile.TemporaryDirectory() as d:
        db = Database(f"sqlite:///{Path(d) / 'x.db'}")
        with db.session() as s:
            org = Organization(name="o")
            s.add(org)
            s.flush()
            org_id = org.id
        row = {"method": "m", "status": "OK", "api_key_id": None, "user_id": None,
               "org_id": org_id, "project_id": None, "detail": "d"}
        stmt = sa.insert(AuditLog)
        db.writer.insert(stmt, dict(row))  # batch of one: driver path (SQLite)
        futs = [db.writer.insert_nowait(stmt, dict(row, detail=f"n{i}")) for i in range(5)]
        for f in futs:
            f.result()
        with db.engine.begin() as conn:  # the reference: plain SQLAlchemy Core
            conn.execute(stmt, dict(row, detail="core"))
            raw = conn.execute(sa.text("SELECT ts, detail FROM audit_log ORDER BY id")).all()
        assert len(raw) == 7
        # same stored text format for the default timestamp
        fmt = [len(ts) for ts, _ in raw]
        assert len(set(fmt)) == 1, raw
        with db.session() as s:
            read = s.scalars(sa.select(AuditLog).order_by(AuditLog.id)).all()
            assert [a.detail for a in read] == ["d", *(f"n{i}" for i in range(5)), "core"]
            assert all(a.ts.tzinfo is not None for a in read)
        db.dispose()


# ------------------------------------------------------------------ allocator
_FAULTS = """
import resource, sys, threading
from services.common.runtime import tune_malloc_for_large_messages
if sys.argv[1] == "tuned":
    assert tune_malloc_for_large_messages() and tune_malloc_for_large_messages()
def receive():  # what a server thread does per streamed chunk: a fresh multi-MiB buffer
    for i in range(40):
        chunk = b"x" * ((4 << 20) + i * 4096)
        del chunk
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
threads = [threading.Thread(target=receive) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="glibc malloc tuning (Linux only)")
def test_malloc_tuning_reuses_pages_for_large_chunks() -> None:
    """With the server's malloc settings, multi-MiB buffers allocated in threads reuse warm
    pages instead of faulting in fresh ones for every chunk."""
    def faults(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True,
                             text=True, timeout=120, check=True, cwd=REPO)
        return int(out.stdout)

    default, tuned = faults("default"), faults("tuned")
    assert tuned * 5 < default, (default, tuned)


def test_startup_objects_are_frozen_and_new_cycles_still_collected() -> None:
    code = (
        "import gc, weakref\n"
        "from services.common.runtime import freeze_startup_objects\n"
        "before = gc.get_freeze_count()\n"
        "freeze_startup_objects()\n"
        "assert gc.get_freeze_count() > before + 1000, gc.get_freeze_count()\n"
        "class Node: pass\n"
        "a, b = Node(), Node()\n"
        "a.other, b.other = b, a\n"
        "gone = weakref.ref(a)\n"
        "del a, b\n"
        "gc.collect()\n"
        "assert gone() is None\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True, cwd=REPO)
    assert out.stdout.strip() == "ok"
