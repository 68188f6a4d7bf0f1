"""Jobs: progress, logs, results, failures, cancellation and WatchJob streams over gRPC."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tinyforge.client import ApiError
from tinyforge.errors import InvalidArgument
from tinyforge.jobs import JobContext, JobManager, register_job_kind
from tinyforge.store.db import Database
from tinyforge.store.models import Job, JobStatus, Project
from tinyforge.v1 import common_pb2

_started: dict[str, threading.Event] = {}


def _steps(job: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    n = int(params["n"])
    for i in range(n):
        job.check_cancelled()
        job.log(f"step {i} of {n}")
        job.progress((i + 1) / n, f"step {i + 1}/{n}")
    return {"steps": n, "project": job.project_id}


def _fails(job: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    job.log("reading sensor")
    raise ValueError(f"bad sensor {params['sensor']}")


def _waits(job: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    job.log("waiting")
    _started[params["token"]].set()
    job.sleep(120)  # wakes as soon as the job is cancelled
    return {}


def _bad_progress(job: JobContext, params: dict[str, Any]) -> None:
    job.progress(1.5)


register_job_kind("test_steps", _steps, replace=True)
register_job_kind("test_fails", _fails, replace=True)
register_job_kind("test_waits", _waits, replace=True)
register_job_kind("test_bad_progress", _bad_progress, replace=True)

SUCCEEDED, FAILED, CANCELLED = (
    common_pb2.JOB_STATUS_SUCCEEDED,
    common_pb2.JOB_STATUS_FAILED,
    common_pb2.JOB_STATUS_CANCELLED,
)


def test_watch_streams_progress_and_logs_until_the_job_finishes(platform, tenant) -> None:
    client = tenant.client()
    job_id = platform.ctx.jobs.submit(tenant.project_id, "test_steps", {"n": 5})
    events = list(client.watch_job(job_id))  # returns only because the stream ends

    logs = [e.log for e in events if e.HasField("log")]
    assert [(entry.offset, entry.line) for entry in logs] == [
        (i, f"step {i} of 5") for i in range(5)
    ]
    snapshots = [e.job for e in events if e.HasField("job")]
    progress = [s.progress for s in snapshots]
    assert progress == sorted(progress)
    final = snapshots[-1]
    assert events[-1].HasField("job")
    assert final.status == SUCCEEDED and final.progress == 1.0
    assert dict(final.result) == {"steps": 5.0, "project": float(tenant.project_id)}
    assert final.log_line_count == 5 and final.start_time.seconds and final.finish_time.seconds

    got = client.get_job(job_id)
    assert got.status == SUCCEEDED and got.kind == "test_steps" and got.log_line_count == 5


def test_watch_resumes_from_a_log_offset(platform, tenant) -> None:
    client = tenant.client()
    job_id = platform.ctx.jobs.submit(tenant.project_id, "test_steps", {"n": 6})
    client.wait_job(job_id)
    resumed = [e.log for e in client.watch_job(job_id, log_offset=4) if e.HasField("log")]
    assert [(x.offset, x.line) for x in resumed] == [(4, "step 4 of 6"), (5, "step 5 of 6")]
    with pytest.raises(ApiError) as err:
        list(client.watch_job(job_id, log_offset=-1))
    assert err.value.code == "INVALID_ARGUMENT" and err.value.field == "log_offset"


def test_failure_records_the_error_and_traceback(platform, tenant) -> None:
    client = tenant.client()
    job_id = platform.ctx.jobs.submit(tenant.project_id, "test_fails", {"sensor": 7})
    job = client.wait_job(job_id)
    assert job.status == FAILED
    assert job.error == "ValueError: bad sensor 7"
    events = list(client.watch_job(job_id))  # watched after it finished
    assert events[0].HasField("job") and events[-1].HasField("job")
    assert events[-1].job.status == FAILED and events[-1].job.log_line_count == len(events) - 2
    lines = [e.log.line for e in events if e.HasField("log")]
    assert lines[0] == "reading sensor"
    assert any("ValueError: bad sensor 7" in line for line in lines[1:])


def test_invalid_progress_fails_the_job_naming_the_field(platform, tenant) -> None:
    job = tenant.client().wait_job(platform.ctx.jobs.submit(tenant.project_id, "test_bad_progress"))
    assert job.status == FAILED and "fraction" in job.error and "1.5" in job.error


def test_cancel_a_running_job(platform, tenant) -> None:
    client = tenant.client()
    _started["run"] = threading.Event()
    job_id = platform.ctx.jobs.submit(tenant.project_id, "test_waits", {"token": "run"})
    assert _started["run"].wait(30), "job never started"
    assert client.get_job(job_id).status == common_pb2.JOB_STATUS_RUNNING
    resp = client.cancel_job(job_id)
    assert resp.cancel_requested
    job = client.wait_job(job_id)
    assert job.status == CANCELLED and job.error == "cancelled by request"
    with pytest.raises(ApiError) as err:
        client.cancel_job(job_id)
    assert err.value.code == "FAILED_PRECONDITION" and "already finished" in err.value.message


def test_cancel_a_pending_job_is_immediate(platform, tenant) -> None:
    with platform.ctx.db.session() as s:  # created but never queued: stays PENDING
        job_id = platform.ctx.jobs.create(s, tenant.project_id, "test_steps", {"n": 1}).id
    client = tenant.client()
    assert client.get_job(job_id).status == common_pb2.JOB_STATUS_PENDING
    job = client.cancel_job(job_id)
    assert job.status == CANCELLED and job.error == "cancelled before it started"


def test_list_jobs_newest_first_with_filter_and_pages(platform, tenant) -> None:
    client = tenant.client()
    ids = [platform.ctx.jobs.submit(tenant.project_id, "test_steps", {"n": 1}) for _ in range(3)]
    failed = platform.ctx.jobs.submit(tenant.project_id, "test_fails", {"sensor": 1})
    for job_id in [*ids, failed]:
        client.wait_job(job_id)
    assert [j.id for j in client.list_jobs(tenant.project_id)] == [failed, *reversed(ids)]
    from tinyforge.v1 import job_service_pb2

    page = client.call(
        client.jobs.ListJobs,
        job_service_pb2.ListJobsRequest(project_id=tenant.project_id, page_size=2),
    )
    assert [j.id for j in page.jobs] == [failed, ids[2]] and page.next_page_token
    page2 = client.call(
        client.jobs.ListJobs,
        job_service_pb2.ListJobsRequest(
            project_id=tenant.project_id, page_size=2, page_token=page.next_page_token
        ),
    )
    assert [j.id for j in page2.jobs] == [ids[1], ids[0]] and not page2.next_page_token
    only_failed = client.call(
        client.jobs.ListJobs,
        job_service_pb2.ListJobsRequest(project_id=tenant.project_id, status=FAILED),
    )
    assert [j.id for j in only_failed.jobs] == [failed]


def test_unknown_kind_and_bad_params_are_rejected(platform, tenant) -> None:
    with pytest.raises(InvalidArgument) as err:
        platform.ctx.jobs.submit(tenant.project_id, "no_such_kind")
    assert err.value.field == "kind" and "test_steps" in err.value.message
    with pytest.raises(InvalidArgument) as err:
        platform.ctx.jobs.submit(tenant.project_id, "test_steps", {"n": object()})
    assert err.value.field == "params"


def test_another_process_sees_progress_through_the_db(platform, tenant) -> None:
    """A second manager on the same DB (as another service process would be) watches a job
    run by the platform's workers: its condition variable is never notified, so it relies on
    the DB alone."""
    other = JobManager(Database(platform.ctx.settings.database_url), workers=1, poll_interval=0.05)
    job_id = platform.ctx.jobs.submit(tenant.project_id, "test_steps", {"n": 3})
    events = list(other.watch(job_id))
    assert [e.log_line for e in events if e.is_log] == [f"step {i} of 3" for i in range(3)]
    assert events[-1].job is not None and events[-1].job.status == JobStatus.SUCCEEDED
    other.db.dispose()


def test_restart_fails_interrupted_jobs_and_reruns_pending_ones(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'jobs.db'}")
    from tinyforge.accounts.orgs import create_org
    from tinyforge.accounts.projects import create_project

    with db.session() as s:
        org = create_org(s, "o")
        project: Project = create_project(s, org.id, "p")
        running = Job(project_id=project.id, kind="test_steps", status=JobStatus.RUNNING)
        pending = Job(project_id=project.id, kind="test_steps", params={"n": 2})
        s.add_all([running, pending])
    manager = JobManager(db, workers=1)
    manager.start()
    try:
        assert manager.wait(pending.id, timeout=30).status == JobStatus.SUCCEEDED
        interrupted = manager.get(running.id)
        assert interrupted.status == JobStatus.FAILED and "interrupted" in interrupted.error
    finally:
        manager.stop()
        db.dispose()


def test_jobs_of_a_live_process_survive_a_restart_until_their_heartbeat_stops(
    tmp_path: Path,
) -> None:
    """Several processes share one DB in the cluster: a starting manager must not fail a job
    another live process runs (fresh heartbeat), only one whose heartbeat stopped."""
    from datetime import UTC, datetime

    from tinyforge.accounts.orgs import create_org
    from tinyforge.accounts.projects import create_project

    db = Database(f"sqlite:///{tmp_path / 'jobs.db'}")
    with db.session() as s:
        org = create_org(s, "o")
        project: Project = create_project(s, org.id, "p")
        alive = Job(
            project_id=project.id,
            kind="elsewhere",
            status=JobStatus.RUNNING,
            heartbeat_at=datetime.now(UTC),
        )
        s.add(alive)
    manager = JobManager(db, workers=1, heartbeat_interval=0.05, stale_after=1.0)
    manager.start()
    try:
        assert manager.get(alive.id).status == JobStatus.RUNNING  # not failed at start
        # Nobody refreshes its heartbeat, so the sweep fails it once it is stale.
        finished = manager.wait(alive.id, timeout=30)
        assert finished.status == JobStatus.FAILED
        assert "process running the job stopped" in finished.error
    finally:
        manager.stop()
        db.dispose()
