"""Object store tests: one suite, run against both backends (``object_store`` fixture):
the local directory and the MinIO code path talking to a real S3 API server (moto)."""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import random
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tinyforge.config import Settings
from tinyforge.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    TinyForgeError,
)
from tinyforge.store import objects as objects_module
from tinyforge.store.objects import (
    LocalObjectStore,
    MinioObjectStore,
    ObjectInfo,
    ObjectStore,
    make_object_store,
)

MiB = 1024 * 1024


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _random_stream(total: int, chunk: int, seen: hashlib._Hash | None = None) -> Iterator[bytes]:
    """``total`` random bytes in chunks of ``chunk``; the test's own hash in ``seen``."""
    left = total
    while left:
        c = os.urandom(min(chunk, left))
        if seen is not None:
            seen.update(c)
        left -= len(c)
        yield c


def _nothing_left(store: ObjectStore) -> None:
    """Assert the store holds no visible object and no leftover of an aborted write."""
    assert list(store.list("")) == []
    if isinstance(store, LocalObjectStore):
        leftovers = [p for p in store.root.rglob("*") if p.is_file()]
        assert leftovers == [], f"files left behind: {leftovers}"
    else:
        s3 = _boto(store)
        raw = s3.list_objects_v2(Bucket=store.bucket).get("Contents", [])
        assert raw == [], f"objects left in the bucket (incl. staging): {raw}"
        uploads = s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
        assert uploads == [], f"multipart uploads not aborted: {uploads}"


def _boto(store: MinioObjectStore):  # an independent S3 client to look behind the store's back
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=f"http://{store.endpoint}",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        region_name="us-east-1",
    )


# --------------------------------------------------------------------------- basics


def test_put_get_roundtrip(object_store: ObjectStore) -> None:
    data = random.Random(1).randbytes(100_000)
    info = object_store.put_bytes("projects/1/raw/7", data, content_type="audio/wav")
    assert info == ObjectInfo("projects/1/raw/7", len(data), _sha(data), "audio/wav", {})
    assert object_store.get_bytes("projects/1/raw/7") == data
    assert object_store.stat("projects/1/raw/7") == info
    assert object_store.exists("projects/1/raw/7")
    assert b"".join(object_store.iter_chunks("projects/1/raw/7")) == data


def test_empty_object(object_store: ObjectStore) -> None:
    info = object_store.put_bytes("a/empty", b"")
    assert (info.size, info.sha256) == (0, _sha(b""))
    assert object_store.get_bytes("a/empty") == b""
    assert object_store.stat("a/empty").content_type == "application/octet-stream"


@pytest.mark.parametrize("kind", ["iterable", "file", "mixed-types"])
def test_put_stream_sources_and_sha256(
    object_store: ObjectStore, tmp_path: Path, kind: str
) -> None:
    rng = random.Random(2)
    parts = [rng.randbytes(rng.randint(0, 70_000)) for _ in range(20)]
    whole = b"".join(parts)
    if kind == "iterable":
        source = iter(parts)
    elif kind == "file":
        (tmp_path / "src.bin").write_bytes(whole)
        source = open(tmp_path / "src.bin", "rb")  # noqa: SIM115
    else:
        source = [bytearray(parts[0]), memoryview(parts[1]), *parts[2:]]
    info = object_store.put_stream("p/s", source, metadata={"n": "20"})
    assert (info.size, info.sha256) == (len(whole), _sha(whole))
    assert object_store.stat("p/s") == info
    assert object_store.get_bytes("p/s") == whole


def test_multipart_sized_stream(object_store: ObjectStore) -> None:
    """Over one part (5 MiB on the MinIO leg), arriving in odd-sized chunks."""
    seen = hashlib.sha256()
    info = object_store.put_stream("big/odd", _random_stream(11 * MiB + 123, 777_777, seen))
    assert (info.size, info.sha256) == (11 * MiB + 123, seen.hexdigest())
    assert object_store.stat("big/odd") == info
    back = hashlib.sha256()
    for c in object_store.iter_chunks("big/odd"):
        back.update(c)
    assert back.hexdigest() == seen.hexdigest()


def test_put_bytes_large(object_store: ObjectStore) -> None:
    data = os.urandom(12 * MiB)
    info = object_store.put_bytes("big/bytes", data, metadata={"k": "v"})
    assert info.sha256 == _sha(data)
    assert object_store.stat("big/bytes") == info
    assert object_store.get_bytes("big/bytes") == data


def test_metadata_and_content_type_roundtrip(object_store: ObjectStore) -> None:
    meta = {"label": "yes", "device-id": "abc_123", "note": "a=b; c d!", "x": "0"}
    put = object_store.put_bytes("m/1", b"x", content_type="image/jpeg", metadata=meta)
    assert put.metadata == meta and put.content_type == "image/jpeg"
    assert object_store.stat("m/1") == put
    assert list(object_store.list("m/")) == [put]
    big = object_store.put_stream(
        "m/2", _random_stream(6 * MiB, MiB), content_type="text/csv", metadata=meta
    )
    assert object_store.stat("m/2") == big and big.metadata == meta


# --------------------------------------------------------------------------- immutability


def test_objects_are_immutable(object_store: ObjectStore) -> None:
    first = object_store.put_bytes("k/1", b"first", metadata={"v": "1"})
    with pytest.raises(AlreadyExists) as e:
        object_store.put_bytes("k/1", b"second")
    assert e.value.field == "key" and "k/1" in e.value.message
    with pytest.raises(AlreadyExists):
        object_store.put_stream("k/1", iter([b"third"]))
    assert object_store.get_bytes("k/1") == b"first"
    assert object_store.stat("k/1") == first
    new = object_store.put_bytes("k/1", b"replaced", overwrite=True)
    assert object_store.get_bytes("k/1") == b"replaced"
    assert object_store.stat("k/1") == new and new.metadata == {}


def test_rejected_stream_is_not_consumed_when_key_exists(object_store: ObjectStore) -> None:
    object_store.put_bytes("k/2", b"x")
    pulled = []

    def source() -> Iterator[bytes]:
        pulled.append(1)
        yield b"y"

    with pytest.raises(AlreadyExists):
        object_store.put_stream("k/2", source())
    assert pulled == []


def test_concurrent_writers_same_key_exactly_one_wins(local_store: LocalObjectStore) -> None:
    """Local backend: os.link makes the sidecar commit exclusive (S3 has a documented race)."""
    n = 8
    barrier = threading.Barrier(n)
    payloads = [bytes([i]) * 300_000 for i in range(n)]

    def write(i: int) -> str:
        barrier.wait()
        try:
            local_store.put_bytes("race/key", payloads[i])
            return "won"
        except AlreadyExists:
            return "lost"

    with ThreadPoolExecutor(n) as ex:
        results = list(ex.map(write, range(n)))
    assert results.count("won") == 1, results
    winner = payloads[results.index("won")]
    assert local_store.get_bytes("race/key") == winner
    assert local_store.stat("race/key").sha256 == _sha(winner)
    blobs = list((local_store.root / "race" / "key").glob(".blob-*"))
    assert len(blobs) == 1, "losers must remove their blobs"


# --------------------------------------------------------------------------- bad input


BAD_KEYS = [
    "", "/a", "a//b", "a/", "a/../b", "..", "../x", "a\\b", ".hidden", "a/.x", "a b",
    "a/b\n", "é", "x" * 1025, "a/" + "y" * 201,
]  # fmt: skip


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys_rejected(object_store: ObjectStore, key: str) -> None:
    calls: list[Callable[[], object]] = [
        lambda: object_store.put_bytes(key, b"x"),
        lambda: object_store.put_stream(key, [b"x"]),
        lambda: object_store.get_bytes(key),
        lambda: object_store.stat(key),
        lambda: object_store.iter_chunks(key),
        lambda: object_store.delete(key),
    ]
    for call in calls:
        with pytest.raises(InvalidArgument) as e:
            call()
        assert e.value.field == "key"
    assert list(object_store.list("")) == []


def test_non_string_key_rejected(object_store: ObjectStore) -> None:
    with pytest.raises(InvalidArgument) as e:
        object_store.put_bytes(5, b"x")  # type: ignore[arg-type]
    assert e.value.field == "key"


@pytest.mark.parametrize(
    "metadata",
    [{"Upper": "x"}, {"sha256": "x"}, {"a b": "x"}, {"k": "é"}, {"k": " pad"}, {"k": 1},
     {"k": "v" * 2100}, ["not", "a", "dict"]],
)  # fmt: skip
def test_invalid_metadata_rejected(object_store: ObjectStore, metadata: object) -> None:
    with pytest.raises(InvalidArgument) as e:
        object_store.put_bytes("m/bad", b"x", metadata=metadata)  # type: ignore[arg-type]
    assert e.value.field == "metadata"
    assert not object_store.exists("m/bad")


@pytest.mark.parametrize("ct", ["", "wav", "a/b\r\nx: y", "text/plain; x\r\ny", "a b/c", 7])
def test_invalid_content_type_rejected(object_store: ObjectStore, ct: object) -> None:
    with pytest.raises(InvalidArgument) as e:
        object_store.put_bytes("c/bad", b"x", content_type=ct)  # type: ignore[arg-type]
    assert e.value.field == "content_type"


def test_content_type_with_parameters(object_store: ObjectStore) -> None:
    info = object_store.put_bytes("c/ok", b"x", content_type="text/csv; charset=utf-8")
    assert object_store.stat("c/ok").content_type == info.content_type == "text/csv; charset=utf-8"


def test_put_bytes_rejects_non_bytes(object_store: ObjectStore) -> None:
    with pytest.raises(InvalidArgument) as e:
        object_store.put_bytes("c/str", "text")  # type: ignore[arg-type]
    assert e.value.field == "data"


def test_invalid_source_chunks_rejected(object_store: ObjectStore) -> None:
    with pytest.raises(InvalidArgument) as e:
        object_store.put_stream("s/bad", iter([b"ok", "text"]))  # type: ignore[list-item]
    assert e.value.field == "source"
    with pytest.raises(InvalidArgument):
        object_store.put_stream("s/bad", 42)  # type: ignore[arg-type]
    _nothing_left(object_store)


def test_not_found(object_store: ObjectStore, tmp_path: Path) -> None:
    for call in (
        lambda: object_store.get_bytes("no/such"),
        lambda: object_store.stat("no/such"),
        lambda: object_store.iter_chunks("no/such"),  # raised by the call, not on iteration
        lambda: object_store.download_to("no/such", tmp_path / "out"),
    ):
        with pytest.raises(NotFound) as e:
            call()
        assert "no/such" in e.value.message
    assert not object_store.exists("no/such")
    assert not (tmp_path / "out").exists()
    object_store.delete("no/such")  # idempotent
    assert object_store.delete_prefix("no/") == 0


# --------------------------------------------------------------------------- streaming limits


def test_large_stream_bounded_memory(object_store: ObjectStore, tmp_path: Path) -> None:
    _large_roundtrip(object_store, tmp_path, 48 * MiB)


@pytest.mark.slow
def test_very_large_stream_bounded_memory(object_store: ObjectStore, tmp_path: Path) -> None:
    _large_roundtrip(object_store, tmp_path, 256 * MiB)


def _large_roundtrip(store: ObjectStore, tmp_path: Path, total: int) -> None:
    part = getattr(store, "part_size", MiB)
    bound = 4 * part + 4 * MiB  # a few parts in flight, independent of the object size
    assert bound <= total / 2
    seen = hashlib.sha256()
    tracemalloc.start()
    try:
        info = store.put_stream("big/stream", _random_stream(total, MiB, seen))
        _, peak_put = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        back = hashlib.sha256()
        n = 0
        for c in store.iter_chunks("big/stream", chunk_size=MiB):
            assert len(c) <= MiB
            back.update(c)
            n += len(c)
        _, peak_get = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        out = store.download_to("big/stream", tmp_path / "dl" / "big.bin")
        _, peak_dl = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (info.size, info.sha256) == (total, seen.hexdigest())
    assert (n, back.hexdigest()) == (total, seen.hexdigest())
    assert out == info and (tmp_path / "dl" / "big.bin").stat().st_size == total
    for what, peak in (("put", peak_put), ("get", peak_get), ("download", peak_dl)):
        assert peak < bound, f"{what} peaked at {peak / MiB:.1f} MiB for {total / MiB:.0f} MiB"


@pytest.mark.parametrize("size", [100_000, 12 * MiB], ids=["single-part", "multipart"])
def test_source_exception_leaves_nothing(object_store: ObjectStore, size: int) -> None:
    def failing() -> Iterator[bytes]:
        yield from _random_stream(size, MiB // 4)
        raise RuntimeError("device disconnected")

    with pytest.raises(RuntimeError, match="device disconnected"):
        object_store.put_stream("abort/x", failing())
    assert not object_store.exists("abort/x")
    _nothing_left(object_store)


@pytest.mark.parametrize("size", [100_000, 12 * MiB], ids=["single-part", "multipart"])
def test_max_bytes_exceeded_leaves_nothing(object_store: ObjectStore, size: int) -> None:
    with pytest.raises(ResourceExhausted) as e:
        object_store.put_stream("limit/x", _random_stream(size, MiB // 4), max_bytes=size - 1)
    assert str(size - 1) in e.value.message
    _nothing_left(object_store)
    info = object_store.put_stream("limit/x", _random_stream(size, MiB // 4), max_bytes=size)
    assert info.size == size  # exactly at the limit is fine


@pytest.mark.parametrize("announced", [3 * MiB, 2 * MiB, MiB + 1, 0])
def test_size_hint_never_changes_the_object(object_store: ObjectStore, announced: int) -> None:
    """Whatever size is announced (more, exact, less, none), the object is the stream: the
    local store's reserved space beyond it is given back."""
    seen = hashlib.sha256()
    info = object_store.put_stream("hint/x", _random_stream(2 * MiB, MiB // 3, seen),
                                   size_hint=announced or None)
    assert (info.size, info.sha256) == (2 * MiB, seen.hexdigest())
    data = object_store.get_bytes("hint/x")
    assert len(data) == 2 * MiB and _sha(data) == seen.hexdigest()
    if isinstance(object_store, LocalObjectStore):
        blobs = [p for p in (object_store.root / "hint" / "x").iterdir()
                 if p.name.startswith(".blob-")]
        assert [p.stat().st_size for p in blobs] == [2 * MiB]


def test_full_disk_is_reported_before_the_stream_is_read(
        local_store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reservation the disk cannot hold fails with ResourceExhausted naming the size,
    before one chunk is consumed, and leaves nothing behind."""
    def no_space(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(objects_module.os, "posix_fallocate", no_space)
    pulled: list[int] = []

    def source() -> Iterator[bytes]:
        pulled.append(1)
        yield b"x" * MiB

    with pytest.raises(ResourceExhausted) as e:
        local_store.put_stream("full/x", source(), size_hint=50 * MiB)
    assert e.value.field == "size_bytes" and str(50 * MiB) in e.value.message
    assert "No space left" in e.value.message and pulled == []
    _nothing_left(local_store)


def test_object_invisible_while_streaming(object_store: ObjectStore) -> None:
    """Looked at from inside the source, mid-upload (after a whole part went out on S3)."""
    observed = []

    def source() -> Iterator[bytes]:
        for i, c in enumerate(_random_stream(13 * MiB, MiB)):
            if i in (1, 11):
                observed.append(
                    (object_store.exists("vis/x"), [o.key for o in object_store.list("")])
                )
            yield c

    object_store.put_stream("vis/x", source())
    assert observed == [(False, []), (False, [])]
    assert [o.key for o in object_store.list("")] == ["vis/x"]


# --------------------------------------------------------------------------- listing, deletion


def test_list_sorted_with_prefixes_and_delete(object_store: ObjectStore) -> None:
    keys = [
        "projects/1/raw/b", "projects/1/raw/a", "projects/1/features/3/mfcc/0",
        "projects/10/raw/a", "projects/2/raw/a", "projects/1/raw/a-2", "projects/1/raw/a/sub",
    ]  # fmt: skip
    infos = {}
    for k in random.Random(3).sample(keys, len(keys)):
        infos[k] = object_store.put_bytes(k, k.encode(), metadata={"k": k.replace("/", "_")})
    listed = list(object_store.list(""))
    assert [i.key for i in listed] == sorted(keys)
    assert listed == [infos[k] for k in sorted(keys)]
    p1 = sorted(k for k in keys if k.startswith("projects/1/"))
    assert [i.key for i in object_store.list("projects/1/")] == p1
    # plain string prefix, as in S3
    assert [i.key for i in object_store.list("projects/1")] == sorted(
        k for k in keys if k.startswith("projects/1")
    )
    assert [i.key for i in object_store.list("projects/1/raw/a")] == [
        "projects/1/raw/a", "projects/1/raw/a-2", "projects/1/raw/a/sub",
    ]  # fmt: skip
    assert list(object_store.list("nothing/")) == []

    with pytest.raises(InvalidArgument) as e:
        object_store.delete_prefix("projects/1")  # would also hit projects/10
    assert e.value.field == "prefix"
    with pytest.raises(InvalidArgument):
        object_store.delete_prefix("")
    with pytest.raises(InvalidArgument):
        list(object_store.list("../"))

    assert object_store.delete_prefix("projects/1/") == len(p1)
    assert [i.key for i in object_store.list("")] == ["projects/10/raw/a", "projects/2/raw/a"]
    object_store.delete("projects/2/raw/a")
    object_store.delete("projects/2/raw/a")
    assert [i.key for i in object_store.list("")] == ["projects/10/raw/a"]
    assert object_store.get_bytes("projects/10/raw/a") == b"projects/10/raw/a"
    # a deleted key can be written again
    object_store.put_bytes("projects/1/raw/a", b"again")
    assert object_store.get_bytes("projects/1/raw/a") == b"again"


def test_key_that_is_also_a_folder(object_store: ObjectStore) -> None:
    object_store.put_bytes("f/a", b"1")
    object_store.put_bytes("f/a/b", b"2")
    assert object_store.get_bytes("f/a") == b"1" and object_store.get_bytes("f/a/b") == b"2"
    object_store.delete("f/a")
    assert [i.key for i in object_store.list("f/")] == ["f/a/b"]


def test_concurrent_writers_distinct_keys(object_store: ObjectStore) -> None:
    def write(i: int) -> tuple[str, bytes]:
        data = random.Random(i).randbytes(20_000 + i)
        key = f"projects/9/raw/{i:03d}"
        if i % 2:
            object_store.put_stream(key, iter([data[:7000], data[7000:]]))
        else:
            object_store.put_bytes(key, data)
        return key, data

    with ThreadPoolExecutor(8) as ex:
        written = dict(ex.map(write, range(32)))
    listed = list(object_store.list("projects/9/"))
    assert [i.key for i in listed] == sorted(written)
    for info in listed:
        assert info.sha256 == _sha(written[info.key])
        assert object_store.get_bytes(info.key) == written[info.key]


def test_download_to_replaces_atomically(object_store: ObjectStore, tmp_path: Path) -> None:
    data = random.Random(4).randbytes(300_000)
    info = object_store.put_bytes("d/1", data, content_type="audio/wav")
    target = tmp_path / "sub" / "out.wav"
    assert object_store.download_to("d/1", target) == info
    assert target.read_bytes() == data
    assert [p.name for p in target.parent.iterdir()] == ["out.wav"]  # no temp left


def test_iter_chunks_respects_chunk_size(object_store: ObjectStore) -> None:
    data = random.Random(5).randbytes(10_000)
    object_store.put_bytes("c/1", data)
    chunks = list(object_store.iter_chunks("c/1", chunk_size=1000))
    assert b"".join(chunks) == data and max(map(len, chunks)) <= 1000
    with pytest.raises(InvalidArgument) as e:
        object_store.iter_chunks("c/1", chunk_size=0)
    assert e.value.field == "chunk_size"


# --------------------------------------------------------------------------- backend specifics


def test_local_corruption_detected(local_store: LocalObjectStore) -> None:
    big = b"hello world" * (local_store.inline_max // 11 + 1)  # over inline_max: a blob file
    local_store.put_bytes("x/1", big)
    (blob,) = (local_store.root / "x" / "1").glob(".blob-*")
    blob.write_bytes(big.replace(b"world", b"WORLD", 1))
    with pytest.raises(TinyForgeError, match="corrupt"):
        local_store.get_bytes("x/1")


def test_local_small_objects_inline_and_corruption_detected(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "o")
    store.put_bytes("x/2", b"hello world", metadata={"a": "b"})
    kdir = tmp_path / "o" / "x" / "2"
    assert sorted(p.name for p in kdir.iterdir()) == [".object.json"], "one file, no blob"
    again = LocalObjectStore(tmp_path / "o")  # a restart reads it back
    assert again.get_bytes("x/2") == b"hello world"
    assert again.stat("x/2").metadata == {"a": "b"}
    doc = json.loads((kdir / ".object.json").read_text())
    doc["inline"] = base64.b64encode(b"hello WORLD").decode()
    (kdir / ".object.json").write_text(json.dumps(doc))
    with pytest.raises(TinyForgeError, match="corrupt"):
        again.get_bytes("x/2")
    again.delete("x/2")
    assert not again.exists("x/2") and not kdir.exists()


def test_local_store_survives_restart(tmp_path: Path) -> None:
    a = LocalObjectStore(tmp_path / "o")
    info = a.put_bytes("r/1", b"persist", metadata={"a": "b"})
    b = LocalObjectStore(tmp_path / "o")
    assert b.stat("r/1") == info and b.get_bytes("r/1") == b"persist"


def test_minio_records_sha256_in_object_metadata(minio_store: MinioObjectStore) -> None:
    small = b"abc" * 1000
    big = os.urandom(7 * MiB)
    minio_store.put_bytes("s/small", small, metadata={"label": "up"})
    minio_store.put_stream("s/big", iter([big[: 3 * MiB], big[3 * MiB :]]))
    s3 = _boto(minio_store)
    head = s3.head_object(Bucket=minio_store.bucket, Key="s/small")
    assert head["Metadata"] == {"sha256": _sha(small), "label": "up"}
    head = s3.head_object(Bucket=minio_store.bucket, Key="s/big")
    assert head["Metadata"]["sha256"] == _sha(big)
    assert head["ContentLength"] == len(big)
    # the staging copy of the multipart upload is gone
    raw = [o["Key"] for o in s3.list_objects_v2(Bucket=minio_store.bucket)["Contents"]]
    assert sorted(raw) == ["s/big", "s/small"]


def test_minio_bucket_created_on_first_write(minio_store: MinioObjectStore) -> None:
    s3 = _boto(minio_store)
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert minio_store.bucket not in names
    assert list(minio_store.list("")) == []  # reads of a missing bucket: empty / NotFound
    with pytest.raises(NotFound):
        minio_store.stat("a/b")
    minio_store.delete("a/b")
    minio_store.put_bytes("a/b", b"1")
    assert minio_store.bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_minio_sweep_staging_removes_only_old_staging(minio_store: MinioObjectStore) -> None:
    assert minio_store.sweep_staging(0) == 0  # no bucket yet
    minio_store.put_bytes("keep/me", b"1")
    s3 = _boto(minio_store)
    s3.put_object(Bucket=minio_store.bucket, Key=".staging/crashed", Body=b"half")
    assert minio_store.sweep_staging(older_than_s=3600) == 0  # too recent
    assert minio_store.sweep_staging(older_than_s=0) == 1
    raw = [o["Key"] for o in s3.list_objects_v2(Bucket=minio_store.bucket)["Contents"]]
    assert raw == ["keep/me"]


def test_minio_rejects_small_part_size(s3_server) -> None:
    with pytest.raises(InvalidArgument) as e:
        MinioObjectStore(s3_server.endpoint, "a", "b", "bkt", part_size=MiB)
    assert e.value.field == "part_size"


# --------------------------------------------------------------------------- factory


def test_make_object_store_local(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="sqlite://")
    store = make_object_store(settings)
    assert isinstance(store, LocalObjectStore) and store.root == settings.objects_dir
    store.put_bytes("a/b", b"1")
    assert (settings.objects_dir / "a" / "b" / ".object.json").is_file()


def test_make_object_store_minio(minio_settings: Settings) -> None:
    store = make_object_store(minio_settings)
    assert isinstance(store, MinioObjectStore) and store.bucket == minio_settings.s3_bucket
    store.put_bytes("a/b", b"1")
    assert store.get_bytes("a/b") == b"1"


def test_make_object_store_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as e:
        make_object_store(Settings(data_dir=tmp_path, database_url="", object_store="s4"))
    assert e.value.field == "object_store"
    with pytest.raises(InvalidArgument) as e:
        make_object_store(Settings(data_dir=tmp_path, database_url="", object_store="minio"))
    assert e.value.field == "s3_endpoint"
    bad = Settings(
        data_dir=tmp_path, database_url="", object_store="minio", s3_endpoint="http://h:1/x"
    )
    with pytest.raises(InvalidArgument) as e:
        make_object_store(bad)
    assert e.value.field == "s3_endpoint"


def _direct_io_works(dirpath: Path) -> bool:
    """Whether the file system under ``dirpath`` takes O_DIRECT (tmpfs does not)."""
    from tinyforge.store.direct_io import enable_direct

    probe = dirpath / ".direct-probe"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        return enable_direct(fd)
    finally:
        os.close(fd)
        probe.unlink()


@pytest.mark.parametrize("announced_extra", [0, 3 * MiB + 5], ids=["exact", "more"])
def test_large_announced_stream_is_written_past_the_page_cache(
        local_store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch,
        announced_extra: int) -> None:
    """Objects announced at _DIRECT_MIN or more go through DirectWriter (O_DIRECT) where the
    file system allows it; the stored object is the stream exactly, unaligned tail included,
    whatever chunk sizes arrive."""
    used: list[object] = []

    class Spy(objects_module.DirectWriter):
        def __init__(self, fd: int) -> None:
            super().__init__(fd)
            used.append(self)

    monkeypatch.setattr(objects_module, "DirectWriter", Spy)
    size = objects_module._DIRECT_MIN + MiB + 777
    seen = hashlib.sha256()
    info = local_store.put_stream("direct/x", _random_stream(size, MiB // 3 + 1, seen),
                                  size_hint=size + announced_extra)
    assert (info.size, info.sha256) == (size, seen.hexdigest())
    data = local_store.get_bytes("direct/x")
    assert len(data) == size and _sha(data) == seen.hexdigest()
    blobs = [p for p in (local_store.root / "direct" / "x").iterdir()
             if p.name.startswith(".blob-")]
    assert [p.stat().st_size for p in blobs] == [size]
    assert len(used) == (1 if _direct_io_works(local_store.root) else 0)
    # below the threshold, or without an announced size: the page cache path
    local_store.put_stream("direct/small", _random_stream(MiB, MiB // 3),
                           size_hint=objects_module._DIRECT_MIN - 1)
    local_store.put_stream("direct/unannounced", _random_stream(size, MiB))
    assert len(used) == (1 if _direct_io_works(local_store.root) else 0)


def test_direct_stream_failing_midway_leaves_nothing(local_store: LocalObjectStore) -> None:
    """A source that breaks after several O_DIRECT buffers went to disk: the error reaches
    the caller, the helper thread is stopped and no file is left."""
    def failing() -> Iterator[bytes]:
        yield from _random_stream(objects_module._DIRECT_MIN + 2 * MiB, MiB)
        raise RuntimeError("device disconnected")

    with pytest.raises(RuntimeError, match="device disconnected"):
        local_store.put_stream("direct/broken", failing(),
                               size_hint=objects_module._DIRECT_MIN + 4 * MiB)
    _nothing_left(local_store)
    assert not [t for t in threading.enumerate() if t.name.startswith("tf-direct-io")]
