"""Run a pipeline job with the configured engine (``TINYFORGE_WORKFLOW_ENGINE``).

A service's job function calls :func:`run_pipeline_job` with the pipeline's name, its
parameters and the plain library call that does the same work; the engine decides:

- ``inprocess`` (embedded default): the library call, in the job manager's thread;
- ``local``: the pipeline's Hera definition walked by the local runner
  (:func:`hera_workflows.local.run_pipeline`), each step a local process, step logs and
  progress into the job, cancellation stopping the step processes;
- ``argo``: a Workflow referencing the pipeline's WorkflowTemplate is submitted to the Argo
  Server and watched (:mod:`tinyforge.workflows.argo`): status, progress and step logs flow
  into the job; cancelling the job stops the workflow.

Every engine returns the same result dict (for the Hera engines: the pipeline's result output,
see ``RESULT`` in its module) and ends a job the same way: the dict → SUCCEEDED, Cancelled →
CANCELLED, PipelineFailed (or a library error) → FAILED.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from tinyforge.context import PlatformContext
from tinyforge.errors import Cancelled, TinyForgeError
from tinyforge.jobs import JobContext

#: ``progress F message`` lines steps print (tinyforge.features.steps), prefixed by the node.
_PROGRESS = re.compile(r"^\[(?P<node>[^\]]+)\] progress (?P<f>[0-9.]+)\s*(?P<msg>.*)$")


class PipelineFailed(TinyForgeError):
    """The pipeline's workflow ended Failed/Error; the message names the failing steps."""

    code = "ABORTED"
    http_status = 409


def result_output(pipeline: str) -> tuple[str, str]:
    """(task, output parameter) holding the JSON result of ``pipeline``'s job."""
    from hera_workflows import RESULTS

    if pipeline not in RESULTS:
        raise TinyForgeError(f"pipeline {pipeline!r} declares no job result", field="pipeline")
    return RESULTS[pipeline]


def required_parameters(pipeline: str) -> list[str]:
    """The workflow parameters of ``pipeline`` that have no default (the caller must give)."""
    from hera_workflows import PIPELINES

    spec = PIPELINES[pipeline]().to_dict()["spec"]
    return [
        p["name"]
        for p in spec.get("arguments", {}).get("parameters", [])
        if "value" not in p and "default" not in p
    ]


def run_pipeline_job(
    job: JobContext,
    ctx: PlatformContext,
    pipeline: str,
    parameters: Mapping[str, Any],
    *,
    inprocess: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """Run job ``job`` as pipeline ``pipeline`` on the engine of ``ctx.settings``.

    ``parameters`` are the pipeline's own (``job-id`` and ``project-id`` are added from the
    job); ``inprocess`` is the equivalent library call, used by the ``inprocess`` engine.
    """
    engine = ctx.settings.workflow_engine
    if engine == "inprocess":
        return inprocess()
    params = {
        "job-id": str(job.job_id),
        "project-id": str(job.project_id),
        **{k: str(v) for k, v in parameters.items()},
    }
    if engine == "local":
        return _run_local(job, ctx, pipeline, params)
    if engine == "argo":
        return _run_argo(job, ctx, pipeline, params)
    raise TinyForgeError(f"unknown workflow engine {engine!r}", field="workflow_engine")


def _parse_result(pipeline: str, text: str | None) -> dict[str, Any]:
    task, output = result_output(pipeline)
    if text is None:
        raise PipelineFailed(f"pipeline {pipeline!r} succeeded but {task}.{output} is missing")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PipelineFailed(f"{task}.{output} of {pipeline!r} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise PipelineFailed(f"{task}.{output} of {pipeline!r} is not a JSON object")
    return value


# ----------------------------------------------------------------------------- local runner


class _StepProgress:
    """Job log + progress from the runner's ``[node] line`` output.

    Steps print ``progress F message``; the job's fraction is the mean over the steps that
    reported (never going back), below 1 until the pipeline ended.
    """

    def __init__(self, job: JobContext) -> None:
        self._job = job
        self._nodes: dict[str, float] = {}
        self._fraction = 0.0

    def line(self, line: str) -> None:
        self._job.log(line)
        m = _PROGRESS.match(line)
        if not m:
            return
        try:
            f = min(max(float(m.group("f")), 0.0), 1.0)
        except ValueError:
            return
        self._nodes[m.group("node")] = f
        mean = sum(self._nodes.values()) / len(self._nodes)
        self._fraction = max(self._fraction, min(mean, 0.99))
        self._job.progress(self._fraction, f"{m.group('node')}: {m.group('msg')}"[:1024])


def _run_local(
    job: JobContext, ctx: PlatformContext, pipeline: str, params: dict[str, str]
) -> dict[str, Any]:
    from hera_workflows.local import run_pipeline

    tracker = _StepProgress(job)
    job.log(f"running pipeline {pipeline} with the local runner")
    run = run_pipeline(ctx, pipeline, params, log=tracker.line, cancelled=lambda: job.cancelled)
    if job.cancelled:
        job.check_cancelled()  # raises Cancelled with the job's reason
    if run.phase != "Succeeded":
        raise PipelineFailed(f"pipeline {pipeline} {run.phase.lower()}: {run.message}")
    task, output = result_output(pipeline)
    return _parse_result(pipeline, run.node(task).outputs.get(output))


# ----------------------------------------------------------------------------- Argo


def _job_lines(ctx: PlatformContext, job_id: int) -> list[str]:
    lines: list[str] = []
    while True:
        batch = ctx.jobs.logs(job_id, offset=len(lines), limit=5000)
        lines.extend(r.line for r in batch)
        if len(batch) < 5000:
            return lines


def _run_argo(
    job: JobContext, ctx: PlatformContext, pipeline: str, params: dict[str, str]
) -> dict[str, Any]:
    from tinyforge.workflows.argo import ArgoClient, WorkflowWatcher, check_parameters, job_workflow

    check_parameters(required_parameters(pipeline), params, pipeline)
    client = ArgoClient.from_settings(ctx.settings)

    def wait(seconds: float) -> None:
        # wake early on a cancel so the workflow is stopped at once (then poll at the pace)
        end = time.monotonic() + seconds
        cancelled_before = job.cancelled
        while time.monotonic() < end:
            if not cancelled_before and job.cancelled:
                return
            time.sleep(min(0.1, max(0.0, end - time.monotonic())))

    try:
        name = client.find_job_workflow(job.job_id)  # this job submitted one already: follow it
        resumed = name is not None
        if name is None:
            if job.cancelled:
                job.check_cancelled()
            wf = job_workflow(
                pipeline,
                params,
                job_id=job.job_id,
                project_id=job.project_id,
                namespace=client.namespace,
            )
            name = client.submit(wf)
            job.log(f"submitted Argo workflow {client.namespace}/{name}")
        else:
            job.log(f"following Argo workflow {client.namespace}/{name} (submitted earlier)")
        watcher = WorkflowWatcher(
            client,
            name,
            log=job.log,
            progress=job.progress,
            cancelled=lambda: job.cancelled,
            wait=wait,
            poll_interval=ctx.settings.argo_poll_interval,
        )
        if resumed:
            watcher.resume_from(_job_lines(ctx, job.job_id), client.get(name))
        outcome = watcher.run()
    finally:
        client.close()
    if outcome.cancelled:
        job.check_cancelled()
        raise Cancelled("cancelled by request")
    if not outcome.succeeded:
        raise PipelineFailed(
            f"workflow {name} {outcome.state.phase.lower()}: {outcome.state.failure()}"
        )
    task, output = result_output(pipeline)
    return _parse_result(pipeline, outcome.state.output(task, output))
