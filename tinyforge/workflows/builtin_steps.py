"""Steps every pipeline shares: the exit handler that records a job's final state."""

from __future__ import annotations

from tinyforge.config import Settings
from tinyforge.errors import InvalidArgument
from tinyforge.store.db import Database
from tinyforge.workflows.job_status import record_workflow_result
from tinyforge.workflows.steps import StepContext, step

# Argo's {{workflow.status}} values.
_WORKFLOW_STATUSES = {"Succeeded", "Failed", "Error"}


@step("record-status", help="Exit handler: store the workflow's final status on its job.")
def record_status(ctx: StepContext) -> None:
    """Write the workflow's outcome onto job ``job-id`` (runs as the pipeline's exit handler)."""
    job_id = ctx.int_arg("job-id")
    status = ctx.arg("status")
    if status not in _WORKFLOW_STATUSES:
        raise InvalidArgument(
            f"status {status!r} is not one of {sorted(_WORKFLOW_STATUSES)}", field="status"
        )
    db = Database(Settings.from_env().database_url)
    try:
        record_workflow_result(db, job_id, status, ctx.args.get("message", ""))
    finally:
        db.dispose()
    ctx.log(f"job {job_id}: workflow {status}")
