"""The ``pipelines.run`` job kind: a pipeline's Hera definition run by name
(:func:`hera_workflows.jobs.run_pipeline_definition`: the local runner in embedded mode, an
Argo Workflow with ``TINYFORGE_WORKFLOW_ENGINE=argo``). The result is the pipeline's declared
result output (``RESULTS`` of its module)."""

from __future__ import annotations

from typing import Any

from hera_workflows.jobs import run_pipeline_definition
from tinyforge.context import PlatformContext
from tinyforge.errors import InvalidArgument
from tinyforge.jobs import JobContext, register_job_kind

RUN_PIPELINE = "pipelines.run"


def bind(ctx: PlatformContext) -> None:
    """Register the job kind (jobs reach their platform through ``job.platform``)."""
    register_job_kind(RUN_PIPELINE, _run_job, replace=True)


def _run_job(job: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    name, parameters = params.get("pipeline"), params.get("parameters") or {}
    if not isinstance(name, str) or not isinstance(parameters, dict):
        raise InvalidArgument("job params need pipeline (and parameters)", field="params")
    job.progress(0.0, f"running pipeline {name}")
    return run_pipeline_definition(job, job.platform, name, parameters)
