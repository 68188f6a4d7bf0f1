"""The ``dsp.generate_features`` job kind: runs :func:`tinyforge.features.generate_features`,
in-process or as the feature-generation pipeline, per ``TINYFORGE_WORKFLOW_ENGINE`` (see
:mod:`hera_workflows.jobs`).

Job functions reach the DB and object store through ``job.platform``: the platform whose job
manager runs the job, so several platforms in one process (tests) each run their own jobs.
"""

from __future__ import annotations

from typing import Any

from hera_workflows.features import NAME as FEATURES_PIPELINE
from hera_workflows.jobs import run_pipeline_job
from tinyforge.context import PlatformContext
from tinyforge.errors import InvalidArgument
from tinyforge.features.generate import generate_features
from tinyforge.jobs import JobContext, register_job_kind

GENERATE_FEATURES = "dsp.generate_features"


def bind(ctx: PlatformContext) -> None:
    """Register the job kind (jobs reach their platform through ``job.platform``)."""
    register_job_kind(GENERATE_FEATURES, _generate_features_job, replace=True)


def _generate_features_job(job: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    try:
        impulse_id, version = int(params["impulse_id"]), int(params.get("version", 0))
    except (KeyError, TypeError, ValueError):
        raise InvalidArgument("job params need impulse_id (and version)", field="params") from None
    ctx = job.platform
    job.progress(0.0, f"generating features of impulse {impulse_id} v{version}")
    return run_pipeline_job(
        job,
        ctx,
        FEATURES_PIPELINE,
        {"impulse-id": impulse_id, "version": version},
        inprocess=lambda: generate_features(
            ctx.db,
            ctx.objects,
            job.project_id,
            impulse_id,
            version,
            reporter=job,
            job_id=job.job_id,
        ),
    )
