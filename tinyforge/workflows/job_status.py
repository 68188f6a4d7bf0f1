"""Recording a workflow's outcome on the job that launched it.

In the cluster, a pipeline's exit handler (step ``record-status``) is what marks the job
finished, so the outcome is stored even when no service is watching the workflow. In embedded
mode the job manager that runs the local runner owns the job's status; there the step only
logs (the runner sets :data:`JOB_MANAGED_ENV`).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from sqlalchemy import update

from tinyforge.errors import NotFound
from tinyforge.store.db import Database
from tinyforge.store.models import Job, JobLog, JobStatus

#: Set by the embedded pipeline runner: the job manager records the final state itself.
JOB_MANAGED_ENV = "TINYFORGE_JOB_MANAGED"
_FINAL = {"Succeeded": JobStatus.SUCCEEDED, "Failed": JobStatus.FAILED, "Error": JobStatus.FAILED}


def record_workflow_result(
    db: Database, job_id: int, workflow_status: str, message: str = ""
) -> None:
    """Log the workflow's status on job ``job_id`` and, unless managed locally, finish the job.

    A job that is already finished (e.g. cancelled) keeps its state; a job whose cancellation
    was requested ends CANCELLED whatever the workflow's status.
    """
    now = datetime.now(UTC)
    managed = os.environ.get(JOB_MANAGED_ENV) == "1"
    with db.session() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise NotFound(f"job {job_id} does not exist", field="job-id")
        s.add(JobLog(job_id=job_id, ts=now, line=f"workflow finished: {workflow_status}"))
        if managed or job.status.finished:
            return
        values: dict[str, object] = {"status": _FINAL[workflow_status], "finished_at": now}
        if job.cancel_requested:  # the workflow was stopped because the job was cancelled
            values.update(status=JobStatus.CANCELLED, error="cancelled by request")
        elif workflow_status == "Succeeded":
            values["progress"] = 1.0
        else:
            values["error"] = message or f"workflow {workflow_status.lower()}"
        s.execute(update(Job).where(Job.id == job_id).values(**values))
