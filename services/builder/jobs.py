"""The ``builder.build`` job kind: one deployment build (:func:`tinyforge.deploy.builds.run_build`),
in-process or as the ``tinyforge-build`` pipeline per ``TINYFORGE_WORKFLOW_ENGINE`` (see
:mod:`hera_workflows.jobs`): the pipeline's ``build`` step runs the same pending build (a custom
deploy block then runs as a step of its own). A failed pipeline fails the job with the build's
recorded reason when it has one.

The platform context (DB, object store) is the one bound to the job manager running the job,
so several platforms in one process (tests) each run their own builds.
"""

from __future__ import annotations

from typing import Any

from hera_workflows.build import NAME as BUILD_PIPELINE
from hera_workflows.jobs import PipelineFailed, run_pipeline_job
from tinyforge.context import PlatformContext
from tinyforge.deploy.builds import FAILED, run_build
from tinyforge.errors import InvalidArgument
from tinyforge.jobs import JobContext, register_job_kind
from tinyforge.store.models import Build

BUILD = "builder.build"


def bind(ctx: PlatformContext) -> None:
    """Register the job kind (jobs reach their platform through ``job.platform``)."""
    register_job_kind(BUILD, _build_job, replace=True)


def _build_job(job: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx = job.platform
    try:
        build_id = int(params["build_id"])
    except (KeyError, TypeError, ValueError):
        raise InvalidArgument("job params need build_id", field="params") from None
    try:
        return run_pipeline_job(
            job,
            ctx,
            BUILD_PIPELINE,
            {"build-id": build_id},
            inprocess=lambda: run_build(
                ctx.db, ctx.objects, job.project_id, build_id, reporter=job
            ),
        )
    except PipelineFailed as exc:
        # the build's own reason (e.g. which deploy block failed, with its last output lines)
        # says more than which step failed; the pipeline's message stays in the job log
        with ctx.db.session() as s:
            row = s.get(Build, build_id)
            error = row.error if row is not None and row.state == FAILED else ""
        if not error:
            raise
        job.log(exc.message)
        raise PipelineFailed(error, field=exc.field) from None
