"""In-memory uploads are one group-committed operation each (``_IngestOp``): concurrent
uploads share one transaction and write their objects in parallel, and a failure inside a
batch fails only its own upload and leaves no row and no object of it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tinyforge.accounts.bootstrap import ensure_defaults
from tinyforge.data.samples import READY, SampleStore, UploadOptions, raw_key
from tinyforge.store.db import Database
from tinyforge.store.models import Sample
from tinyforge.store.objects import LocalObjectStore

N = 8


def envelope(i: int) -> bytes:
    """A small unsigned Edge Impulse JSON envelope, distinct for each ``i``."""
    return json.dumps({"protected": {"ver": "v1", "alg": "none"}, "signature": "0" * 64,
                       "payload": {"device_name": f"dev-{i % 2}", "device_type": "TEST",
                                   "interval_ms": 10,
                                   "sensors": [{"name": "x", "units": "g"}],
                                   "values": [[i], [i + 1], [i + 2]]}}).encode()


class SpyObjects(LocalObjectStore):
    """A local store recording which thread wrote each key. An object whose bytes are
    ``fail_data`` is written, then the write fails (a disk error after the data landed)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.writers: dict[str, str] = {}
        self.fail_data: bytes | None = None

    def put_bytes(self, key: str, data: bytes, **kw: Any) -> Any:  # type: ignore[override]
        self.writers[key] = threading.current_thread().name
        info = super().put_bytes(key, data, **kw)
        if data == self.fail_data:
            raise OSError(28, "No space left on device (test)")
        return info


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[SampleStore, SpyObjects, int]]:
    db = Database(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    with db.session() as s:
        project_id = ensure_defaults(s).project_id
    objects = SpyObjects(tmp_path / "objects")
    yield SampleStore(db, objects), objects, project_id
    db.dispose()


def _hold_writer(db: Database) -> threading.Event:
    """Occupy the group committer with an operation that waits for the returned event, so
    that the uploads queued meanwhile form one batch."""
    started, release = threading.Event(), threading.Event()

    def hold(_conn: sa.Connection) -> None:
        started.set()
        release.wait(30)

    threading.Thread(target=db.write, args=(hold,), daemon=True).start()
    assert started.wait(30)
    return release


def _upload_batch(store: SampleStore, project_id: int,
                  names: list[str]) -> dict[str, Any]:
    """Upload one envelope per name from its own thread while the writer is held, so all of
    them are queued before the writer takes them; returns name -> row or exception."""
    release = _hold_writer(store.db)
    out: dict[str, Any] = {}

    def one(i: int, name: str) -> None:
        try:
            out[name] = store.ingest_bytes(project_id, envelope(i),
                                           UploadOptions(filename=name, label="l"))
        except Exception as exc:
            out[name] = exc

    threads = [threading.Thread(target=one, args=(i, n)) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    # wait for the state, not a time: every upload is queued behind the held operation
    pause = threading.Event()
    for _ in range(3000):
        if store.db.writer._queue.qsize() >= len(names):
            break
        pause.wait(0.01)
    assert store.db.writer._queue.qsize() == len(names)
    release.set()
    for t in threads:
        t.join(60)
    return out


def _rows(store: SampleStore, project_id: int) -> list[Sample]:
    with store.db.session() as s:
        return list(s.scalars(sa.select(Sample).where(Sample.project_id == project_id)))


def test_concurrent_uploads_share_one_commit_and_write_objects_in_parallel(env) -> None:
    store, objects, pid = env
    batches = store.db.writer.batches
    out = _upload_batch(store, pid, [f"s{i}.json" for i in range(N)])
    # the held operation's commit plus one commit for all N uploads
    assert store.db.writer.batches == batches + 2
    rows = {r.filename: r for r in _rows(store, pid)}
    assert sorted(rows) == sorted(out)
    for i in range(N):
        name = f"s{i}.json"
        row, got = rows[name], out[name]
        assert not isinstance(got, Exception), got
        assert (got.id, got.state, got.raw_key) == (row.id, READY, raw_key(pid, row.id))
        assert objects.get_bytes(row.raw_key) == envelope(i)
        assert row.length == 3 and row.label == "l"
    # a batch's objects are written by the ingest I/O threads, not one after the other by
    # the database writer
    assert {objects.writers[r.raw_key] for r in rows.values()} <= {
        f"tf-ingest-io_{k}" for k in range(N)}
    with store.db.session() as s:
        counts = dict(s.execute(sa.text("SELECT name, sample_count FROM devices")).all())
    assert counts == {"dev-0": N // 2, "dev-1": N // 2}


def test_a_failing_object_write_fails_only_its_upload_and_leaves_nothing(env) -> None:
    store, objects, pid = env
    names = [f"s{i}.json" for i in range(N - 1)] + ["bad.json"]
    objects.fail_data = envelope(N - 1)  # the bytes of bad.json
    out = _upload_batch(store, pid, names)
    assert isinstance(out["bad.json"], OSError)
    assert all(not isinstance(out[n], Exception) for n in names[:-1])
    rows = _rows(store, pid)
    assert sorted(r.filename for r in rows) == sorted(names[:-1])
    assert all(r.state == READY for r in rows)  # no pending row left either
    stored = {info.key for info in objects.list(f"projects/{pid}/raw/")}
    assert stored == {r.raw_key for r in rows}  # the failed upload's object was removed
    for r in rows:
        assert objects.get_bytes(r.raw_key) == envelope(int(r.filename[1:-5]))
