"""Model store bookkeeping: half-written models left by a crashed process are cleaned up,
and never visible meanwhile."""

from __future__ import annotations

from tests.train_service.conftest import synthetic_impulse
from tinyforge.errors import NotFound
from tinyforge.impulse_store import create_impulse
from tinyforge.store.models import Job, JobStatus, Model
from tinyforge.training.store import (
    cleanup_stale_models,
    get_model_row,
    list_model_rows,
    load_model_files,
    model_prefix,
)


def test_pending_models_are_invisible_and_cleaned_up(platform, tenant) -> None:
    ctx, pid = platform.ctx, tenant.project_id
    with ctx.db.session() as s:
        imp = create_impulse(s, pid, "crash", synthetic_impulse())
        dead = Job(project_id=pid, kind="train.train_model", status=JobStatus.FAILED)
        live = Job(project_id=pid, kind="train.train_model", status=JobStatus.RUNNING)
        s.add_all([dead, live])
        s.flush()
        rows = [Model(project_id=pid, impulse_id=imp.impulse_id, impulse_version=1,
                      learn_block="nn", block_type="classifier", job_id=j.id) for j in (dead, live)]
        s.add_all(rows)
        s.flush()
        crashed, running = rows[0].id, rows[1].id
    for mid in (crashed, running):
        ctx.objects.put_bytes(model_prefix(pid, mid) + "model_int8.tflite", b"partial")
    with ctx.db.session() as s:
        assert list_model_rows(s, pid) == []
        for mid in (crashed, running):
            try:
                get_model_row(s, pid, mid)
                raise AssertionError("a pending model was visible")
            except NotFound:
                pass
    try:  # no manifest: the files of an unfinished model are never read
        load_model_files(ctx.objects, pid, crashed)
        raise AssertionError("load_model_files read an unfinished model")
    except NotFound:
        pass
    assert cleanup_stale_models(ctx.db, ctx.objects) >= 1
    with ctx.db.session() as s:
        assert s.get(Model, crashed) is None
        assert s.get(Model, running) is not None  # its job still runs: left alone
    assert list(ctx.objects.list(model_prefix(pid, crashed))) == []
    assert len(list(ctx.objects.list(model_prefix(pid, running)))) == 1
