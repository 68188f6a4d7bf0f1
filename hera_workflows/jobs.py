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

:func:`run_pipeline_definition` always runs the Hera definition (the PipelineService's jobs):
Argo with engine ``argo``, the local runner otherwise.

Both Hera engines write a *step event* into the job log as each step starts and ends:
``step NODE: PHASE`` or ``step NODE: PHASE - MESSAGE`` (PHASE one of :data:`STEP_PHASES`;
NODE the step's node as its log lines are prefixed, ``[NODE] ...``), which clients such as
``tinyforge pipeline run`` turn into live step progress.
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
#: Phases a step event reports (Argo's node phases).
STEP_PHASES = ("Running", "Succeeded", "Failed", "Error", "Skipped", "Omitted")
STEP_EVENT = re.compile(
    r"^step (?P<node>.+?): (?P<phase>" + "|".join(STEP_PHASES) + r")(?: - (?P<message>.*))?$"
)
# What the local runner's step executors log (as "[node] MARK ...") for the tracker to turn into
# step events; never stored.
_START_MARK = "\x00tinyforge-step-start"
_END_MARK = "\x00tinyforge-step-end "


def step_event(node: str, phase: str, message: str = "") -> str:
    """The job log line saying step ``node`` reached ``phase`` (first line of ``message``)."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    return f"step {node}: {phase}" + (f" - {first}" if first else "")


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
    params = _job_parameters(job, parameters)
    if engine == "local":
        return _run_local(job, ctx, pipeline, params)
    if engine == "argo":
        return _run_argo(job, ctx, pipeline, params)
    raise TinyForgeError(f"unknown workflow engine {engine!r}", field="workflow_engine")


def run_pipeline_definition(
    job: JobContext, ctx: PlatformContext, pipeline: str, parameters: Mapping[str, Any]
) -> dict[str, Any]:
    """Run job ``job`` as pipeline ``pipeline``'s Hera definition whatever the service-jobs
    engine: submitted to Argo with engine ``argo`` (cluster mode), else the local runner."""
    params = _job_parameters(job, parameters)
    if ctx.settings.workflow_engine == "argo":
        return _run_argo(job, ctx, pipeline, params)
    return _run_local(job, ctx, pipeline, params)


def _job_parameters(job: JobContext, parameters: Mapping[str, Any]) -> dict[str, str]:
    return {
        "job-id": str(job.job_id),
        "project-id": str(job.project_id),
        **{k: str(v) for k, v in parameters.items()},
    }


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
        if line.startswith("[") and "] \x00" in line:  # a step executor's start/end mark
            node, _, mark = line[1:].partition("] ")
            if mark == _START_MARK:
                self._job.log(step_event(node, "Running"))
            elif mark.startswith(_END_MARK):
                phase, _, message = mark[len(_END_MARK) :].partition(" ")
                self._job.log(step_event(node, phase, message))
            return
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


class _EventExecutor:
    """Wraps a step executor: marks each attempt's start and end in the node's log (the
    tracker turns the marks into step events)."""

    def __init__(self, inner: Any) -> None:
        from tinyforge.workflows.podman import PodmanExecutor

        self._inner = inner
        # the runner hands container paths to executors that mount them (podman) unchanged
        self.mounts_natively = isinstance(inner, PodmanExecutor) or bool(
            getattr(inner, "mounts_natively", False)
        )

    def run(self, command: Any, *, log: Callable[[str], None], **kw: Any) -> Any:
        from tinyforge.workflows.executors import StepCancelled, StepTimedOut

        log(_START_MARK)
        try:
            proc = self._inner.run(command, log=log, **kw)
        except StepCancelled:
            log(f"{_END_MARK}Failed cancelled")
            raise
        except StepTimedOut as exc:
            log(f"{_END_MARK}Failed {exc}")
            raise
        except OSError as exc:
            log(f"{_END_MARK}Error cannot start step: {exc}")
            raise
        if proc.exit_code == 0:
            log(f"{_END_MARK}Succeeded")
        else:
            last = proc.tail[-1] if proc.tail else ""
            log(f"{_END_MARK}Failed exit code {proc.exit_code}" + (f": {last}" if last else ""))
        return proc


def _run_local(
    job: JobContext, ctx: PlatformContext, pipeline: str, params: dict[str, str]
) -> dict[str, Any]:
    from hera_workflows.local import run_pipeline
    from tinyforge.workflows.runner import OMITTED, SKIPPED

    tracker = _StepProgress(job)
    job.log(f"running pipeline {pipeline} with the local runner")
    run = run_pipeline(
        ctx,
        pipeline,
        params,
        log=tracker.line,
        cancelled=lambda: job.cancelled,
        wrap_executor=_EventExecutor,
    )
    for node in run.root.walk():  # steps that never started: say why
        if node.phase in (SKIPPED, OMITTED) and not node.children:
            job.log(step_event(node.name.split(".", 1)[-1], node.phase, node.message))
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


class _ArgoStepEvents:
    """Step events from successive workflow snapshots: a node's phase changes are logged."""

    _KINDS = frozenset({"Pod", "Skipped"})

    def __init__(self, log: Callable[[str], None], already: list[str] | None = None) -> None:
        self._log = log
        self._phase: dict[str, str] = {}
        for line in already or []:  # a resumed watch: what the job's log already says
            m = STEP_EVENT.match(line)
            if m:
                self._phase[m.group("node")] = m.group("phase")

    def see(self, state: Any) -> None:
        nodes = sorted((n for n in state.nodes if n.type in self._KINDS), key=lambda n: n.name)
        for n in nodes:
            if n.phase not in STEP_PHASES or self._phase.get(n.display_name) == n.phase:
                continue
            self._phase[n.display_name] = n.phase
            message = "" if n.phase == "Running" else n.message
            self._log(step_event(n.display_name, n.phase, message))


class _EventingClient:
    """An ArgoClient whose status reads also feed :class:`_ArgoStepEvents`."""

    def __init__(self, client: Any, events: _ArgoStepEvents) -> None:
        self._client, self._events = client, events

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get(self, name: str) -> Any:
        state = self._client.get(name)
        self._events.see(state)
        return state


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
        events = _ArgoStepEvents(job.log, _job_lines(ctx, job.job_id) if resumed else None)
        watcher = WorkflowWatcher(
            _EventingClient(client, events),  # type: ignore[arg-type]
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
