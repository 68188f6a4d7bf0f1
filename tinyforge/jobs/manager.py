"""JobManager: create, run, cancel and watch jobs; everything persisted in the metadata DB.

Workers are threads of the process that owns the manager. Status, progress and log lines are
written to the DB as they happen, so :meth:`JobManager.watch` works from any process sharing
the database: in-process changes wake watchers at once (a condition variable), changes made by
other processes are seen within ``poll_interval`` seconds.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry import propagate, trace
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tinyforge.errors import (
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from tinyforge.jobs.registry import get_job_kind, job_kinds
from tinyforge.store.db import Database
from tinyforge.store.models import Job, JobLog, JobStatus

log = logging.getLogger(__name__)

MAX_LOG_LINE = 16_384  # characters; longer lines are cut
_LOG_BATCH = 500  # log lines read per DB query while watching


@dataclass(frozen=True)
class JobEvent:
    """One item of a watch stream: a job snapshot, or one log line at ``log_offset``."""

    job: Job | None = None
    log_line_count: int = 0
    log_offset: int = -1
    log_time: datetime | None = None
    log_line: str = ""

    @property
    def is_log(self) -> bool:
        return self.job is None


def _now() -> datetime:
    return datetime.now(UTC)


def _check_json(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgument(
            f"{field} must be a JSON object, got {type(value).__name__}", field=field
        )
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"{field} is not JSON-serialisable: {exc}", field=field) from exc
    return value


class JobContext:
    """Handed to a job function: report progress and logs, and notice cancellation."""

    def __init__(self, manager: JobManager, job: Job, cancel_event: threading.Event) -> None:
        self._manager = manager
        self.job_id: int = job.id
        self.project_id: int = job.project_id
        self.kind: str = job.kind
        self._cancel = cancel_event
        self._last_db_check = 0.0

    @property
    def manager(self) -> JobManager:
        """The job manager running this job."""
        return self._manager

    @property
    def platform(self) -> Any:
        """The platform (a :class:`tinyforge.context.PlatformContext`: settings, DB, object
        store) whose job manager runs this job."""
        platform = self._manager.platform
        if platform is None:
            raise FailedPrecondition(
                f"job {self.job_id} runs on a job manager with no platform bound", field="kind"
            )
        return platform

    def log(self, line: str) -> None:
        """Append ``line`` (split on newlines) to the job's log."""
        self._manager._append_log(self.job_id, str(line))

    def progress(self, fraction: float, message: str = "") -> None:
        """Record progress: ``fraction`` done in 0..1 and a short status ``message``."""
        if not 0.0 <= fraction <= 1.0:
            raise InvalidArgument(
                f"progress fraction must be between 0 and 1, got {fraction}", field="fraction"
            )
        self._manager._update(self.job_id, progress=float(fraction), message=message[:1024])

    @property
    def cancelled(self) -> bool:
        """True once cancellation was requested (from this or any other process)."""
        if self._cancel.is_set():
            return True
        now = time.monotonic()
        if now - self._last_db_check >= self._manager.poll_interval:
            self._last_db_check = now
            if self._manager._cancel_requested_in_db(self.job_id):
                self._cancel.set()
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        """Raise :class:`Cancelled` if cancellation was requested; call it between work units."""
        if self.cancelled:
            raise Cancelled(self._manager._cancel_reason(self.job_id))

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` but wake (and raise Cancelled) as soon as the job is cancelled."""
        deadline = time.monotonic() + seconds
        while True:
            self.check_cancelled()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._cancel.wait(min(left, self._manager.poll_interval))


class JobManager:
    """Creates jobs, runs them on ``workers`` threads and answers status/watch queries."""

    def __init__(
        self,
        db: Database,
        workers: int = 2,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        poll_interval: float = 0.25,
        heartbeat_interval: float = 10.0,
        stale_after: float = 60.0,
    ) -> None:
        if workers < 1:
            raise InvalidArgument(f"job workers must be >= 1, got {workers}", field="job_workers")
        self.db = db
        self.workers = workers
        self.poll_interval = poll_interval
        self.heartbeat_interval = heartbeat_interval
        self.stale_after = stale_after
        self._stop_event = threading.Event()
        self._tracer = trace.get_tracer("tinyforge.jobs", tracer_provider=tracer_provider)
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._running: dict[int, threading.Event] = {}
        self._reasons: dict[int, str] = {}
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._generation = 0
        self._stopping = False
        #: The PlatformContext owning this manager (set by PlatformContext.create); jobs reach
        #: their DB and object store through it.
        self.platform: Any = None

    # ----------------------------------------------------------------- lifecycle
    def start(self, *, recover: bool = True) -> None:
        """Start the worker threads.

        With ``recover``, RUNNING jobs whose worker stopped heart-beating (a crashed process) are
        marked FAILED and PENDING jobs of kinds registered here are queued again. Jobs other live
        processes run keep their state: their heartbeats are fresh.
        """
        if self._threads:
            return
        self._stop_event.clear()
        if recover:
            self._recover()
        for i in range(self.workers):
            t = threading.Thread(target=self._worker, name=f"tinyforge-job-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        beat = threading.Thread(target=self._heartbeat, name="tinyforge-job-heartbeat", daemon=True)
        beat.start()
        self._threads.append(beat)

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel running jobs, let them end, and stop the workers."""
        self._stopping = True
        with self._lock:
            for job_id, event in self._running.items():
                self._reasons[job_id] = "cancelled: the platform is shutting down"
                event.set()
        self._stop_event.set()
        for _ in range(self.workers):
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()

    def _fail_stale(self) -> int:
        """Fail RUNNING jobs whose heartbeat is older than ``stale_after`` (or never came)."""
        cutoff = _now() - timedelta(seconds=self.stale_after)
        with self.db.session() as s:
            failed = s.execute(
                update(Job)
                .where(
                    Job.status == JobStatus.RUNNING,
                    or_(Job.heartbeat_at.is_(None), Job.heartbeat_at < cutoff),
                )
                .values(
                    status=JobStatus.FAILED,
                    error="interrupted: the process running the job stopped",
                    finished_at=_now(),
                )
            ).rowcount
        if failed:
            self._notify()
        return failed

    def _heartbeat(self) -> None:
        """Keep this process's running jobs alive and fail jobs of processes that died."""
        while not self._stop_event.wait(self.heartbeat_interval):
            with self._lock:
                mine = list(self._running)
            try:
                if mine:
                    with self.db.session() as s:
                        s.execute(
                            update(Job)
                            .where(Job.id.in_(mine), Job.status == JobStatus.RUNNING)
                            .values(heartbeat_at=_now())
                        )
                self._fail_stale()
            except Exception:  # a DB hiccup must not end the heartbeat
                log.exception("job heartbeat failed")

    def _recover(self) -> None:
        known = set(job_kinds())
        self._fail_stale()
        with self.db.session() as s:
            pending = s.scalars(
                select(Job.id).where(Job.status == JobStatus.PENDING, Job.kind.in_(known))
            ).all()
        for job_id in pending:
            self._queue.put(job_id)

    # ----------------------------------------------------------------- create / cancel
    def create(
        self,
        session: Session,
        project_id: int,
        kind: str,
        params: dict[str, Any] | None = None,
        *,
        created_by_key_id: int | None = None,
    ) -> Job:
        """Insert a PENDING job in the caller's transaction; call :meth:`enqueue` after commit.

        The current trace context (of the API call creating the job) is stored on the job and
        restored around its execution.
        """
        get_job_kind(kind)
        params = _check_json(params or {}, "params")
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        job = Job(
            project_id=project_id,
            kind=kind,
            params=params,
            trace_context=carrier,
            created_by_key_id=created_by_key_id,
            status=JobStatus.PENDING,
        )
        session.add(job)
        session.flush()
        return job

    def enqueue(self, job_id: int) -> None:
        """Queue a committed PENDING job for the workers."""
        self._queue.put(job_id)
        self._notify()

    def submit(
        self,
        project_id: int,
        kind: str,
        params: dict[str, Any] | None = None,
        *,
        created_by_key_id: int | None = None,
    ) -> int:
        """Create a job in its own transaction, queue it, and return its id."""
        with self.db.session() as s:
            job_id = self.create(
                s, project_id, kind, params, created_by_key_id=created_by_key_id
            ).id
        self.enqueue(job_id)
        return job_id

    def cancel(self, job_id: int) -> Job:
        """Cancel a job: PENDING → CANCELLED at once, RUNNING → flagged, noticed by the job.

        FailedPrecondition if the job already finished.
        """
        now = _now()
        with self.db.session() as s:
            self._get(s, job_id)
            done = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.PENDING)
                .values(
                    status=JobStatus.CANCELLED,
                    cancel_requested=True,
                    error="cancelled before it started",
                    finished_at=now,
                )
            ).rowcount
            if not done:
                done = s.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.status == JobStatus.RUNNING)
                    .values(cancel_requested=True)
                ).rowcount
            if not done:
                job = self._get(s, job_id)
                raise FailedPrecondition(
                    f"job {job_id} already finished ({job.status.value}); nothing to cancel",
                    field="job_id",
                )
        with self._lock:
            event = self._running.get(job_id)
            self._reasons.setdefault(job_id, "cancelled by request")
        if event is not None:
            event.set()
        self._notify()
        return self.get(job_id)

    # ----------------------------------------------------------------- queries
    @staticmethod
    def _get(session: Session, job_id: int) -> Job:
        job = session.get(Job, job_id)
        if job is None:
            raise NotFound(f"job {job_id} does not exist", field="job_id")
        return job

    def get(self, job_id: int) -> Job:
        """A detached snapshot of the job row."""
        with self.db.session() as s:
            return self._get(s, job_id)

    def log_line_count(self, job_id: int) -> int:
        """Number of log lines the job has written."""
        with self.db.session() as s:
            return int(
                s.scalar(select(func.count()).select_from(JobLog).where(JobLog.job_id == job_id))
                or 0
            )

    def logs(self, job_id: int, offset: int = 0, limit: int = _LOG_BATCH) -> list[JobLog]:
        """Log lines ``offset`` .. ``offset + limit - 1`` of a job, oldest first."""
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(JobLog)
                    .where(JobLog.job_id == job_id)
                    .order_by(JobLog.id)
                    .offset(offset)
                    .limit(limit)
                )
            )

    def wait(self, job_id: int, timeout: float = 60.0) -> Job:
        """Block until the job finished; DeadlineExceeded after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            gen = self._generation
            job = self.get(job_id)
            if job.status.finished:
                return job
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeadlineExceeded(
                    f"job {job_id} still {job.status.value} after {timeout} s", field="job_id"
                )
            self._wait_change(gen, min(left, self.poll_interval))

    def watch(
        self,
        job_id: int,
        log_offset: int = 0,
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[JobEvent]:
        """Yield a job snapshot, then log lines from ``log_offset`` and a snapshot on every
        status/progress change, until the job finished and all its lines were sent.

        The first and the last event are always job snapshots (the last one final)."""
        if log_offset < 0:
            raise InvalidArgument(f"log_offset must be >= 0, got {log_offset}", field="log_offset")
        offset = log_offset
        last: tuple[Any, ...] | None = None
        while True:
            gen = self._generation
            with self.db.session() as s:
                job = self._get(s, job_id)  # read before the logs: no line is missed at the end
                lines = list(
                    s.scalars(
                        select(JobLog)
                        .where(JobLog.job_id == job_id)
                        .order_by(JobLog.id)
                        .offset(offset)
                        .limit(_LOG_BATCH)
                    )
                )
            state = (job.status, job.progress, job.message, job.cancel_requested, job.error)
            more = len(lines) == _LOG_BATCH
            if last is None:
                yield JobEvent(job=job, log_line_count=offset + len(lines))
                last = state
            for line in lines:
                yield JobEvent(log_offset=offset, log_time=line.ts, log_line=line.line)
                offset += 1
            done = job.status.finished and not more
            if state != last or (done and lines):
                yield JobEvent(job=job, log_line_count=offset)
                last = state
            if more:
                continue
            if done:
                return
            if should_stop is not None and should_stop():
                return
            self._wait_change(gen, self.poll_interval)

    # ----------------------------------------------------------------- internals
    def _notify(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def _wait_change(self, generation: int, timeout: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._generation != generation, timeout)

    def _update(self, job_id: int, **values: Any) -> None:
        with self.db.session() as s:
            s.execute(update(Job).where(Job.id == job_id).values(**values))
        self._notify()

    def _append_log(self, job_id: int, text: str) -> None:
        lines = text.splitlines() or [""]
        now = _now()
        try:
            with self.db.session() as s:
                s.add_all(JobLog(job_id=job_id, ts=now, line=ln[:MAX_LOG_LINE]) for ln in lines)
        except IntegrityError:  # the job (its project) was deleted while it ran
            log.info("job %s no longer exists; dropped %d log lines", job_id, len(lines))
            return
        self._notify()

    def _cancel_requested_in_db(self, job_id: int) -> bool:
        with self.db.session() as s:
            return bool(s.scalar(select(Job.cancel_requested).where(Job.id == job_id)))

    def _cancel_reason(self, job_id: int) -> str:
        with self._lock:
            return self._reasons.get(job_id, "cancelled by request")

    def _worker(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            if self._stopping:
                continue
            try:
                self._run(job_id)
            except Exception:  # never let one job kill the worker
                log.exception("job %s: worker error", job_id)

    def _claim(self, job_id: int) -> Job | None:
        with self.db.session() as s:
            claimed = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.PENDING)
                .values(status=JobStatus.RUNNING, started_at=_now(), heartbeat_at=_now())
            ).rowcount
            return s.get(Job, job_id) if claimed else None

    def _finish(self, job_id: int, status: JobStatus, **values: Any) -> None:
        self._update(job_id, status=status, finished_at=_now(), **values)

    def _run(self, job_id: int) -> None:
        event = threading.Event()
        with self._lock:
            self._running[job_id] = event
        try:
            job = self._claim(job_id)
            if job is None:  # cancelled while queued, or claimed elsewhere
                return
            self._notify()
            parent = propagate.extract(job.trace_context or {})
            with self._tracer.start_as_current_span(
                f"job {job.kind}",
                context=parent,
                attributes={"tinyforge.job.id": job.id, "tinyforge.project.id": job.project_id},
            ) as span:
                ctx = JobContext(self, job, event)
                try:
                    if job.cancel_requested:
                        raise Cancelled("cancelled before it started")
                    fn = get_job_kind(job.kind)
                    result = fn(ctx, dict(job.params or {})) or {}
                    _check_json(result, "result")
                except Cancelled as exc:
                    self._finish(job_id, JobStatus.CANCELLED, error=exc.message)
                except Exception as exc:
                    span.record_exception(exc)
                    span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
                    tb = traceback.format_exc(limit=8)
                    self._append_log(job_id, tb)
                    self._finish(job_id, JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
                else:
                    self._finish(job_id, JobStatus.SUCCEEDED, progress=1.0, result=result)
        finally:
            with self._lock:
                self._running.pop(job_id, None)
                self._reasons.pop(job_id, None)
            self._notify()
