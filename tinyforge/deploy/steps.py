"""Pipeline steps of deployment builds (see ``hera_workflows/build.py``).

``build`` runs one build (:func:`tinyforge.deploy.builds.run_build`) in the step's process: the
pending build ``build-id`` the BuilderService created, or, with ``build-id`` 0, a new build it
plans and records itself from ``model-id`` / ``format`` / ``target`` / ... (what the retrain
pipeline's optional last stage and ``tinyforge pipeline run tinyforge-build`` do). A built-in
format is built completely (output ``custom`` false); a custom deploy block build stops once
the block's input is staged (output ``custom`` true, and the block step's ``image``,
``pod-spec-patch``, ``in-key``, ``out-key``): the block then runs as the ``deploy-block`` step
of its own image.

``build-finish`` outputs the job result: for a custom build it first checks and stores what
the block wrote (:func:`tinyforge.deploy.builds.finish_block_build`). ``build-cleanup`` (exit
handler) removes the staged block keys of the job's builds and fails any build the pipeline
left unfinished, naming the block and quoting its last output lines from the job log.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tinyforge.deploy import builds
from tinyforge.errors import InvalidArgument, TinyForgeError
from tinyforge.store.models import Build
from tinyforge.workflows.platform_env import step_platform
from tinyforge.workflows.steps import StepContext, StepReporter, step


class _BuildReporter(StepReporter):
    """A step reporter with the ``cancelled`` flag builds poll: a cancelled step is stopped
    from outside (SIGTERM, which also kills the child build's process group)."""

    cancelled = False


def _options(ctx: StepContext) -> dict[str, str]:
    raw = ctx.json_arg("options", {})
    if not isinstance(raw, dict):
        raise InvalidArgument(f"options must be a JSON object, got {raw!r}", field="options")
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


def _timeout(ctx: StepContext) -> float:
    raw = ctx.arg("timeout-s", "0")
    try:
        return float(raw)
    except ValueError:
        raise InvalidArgument(
            f"timeout-s must be a number of seconds (0 = the default), got {raw!r}",
            field="timeout-s",
        ) from None


@step("build", help="Build a deployment artifact of a model (a pending build, or a new one).")
def build(ctx: StepContext) -> None:
    """Outputs ``build-id``, ``summary`` (artifact key, size, sha256 and metrics; for a custom
    build what was staged), ``custom`` (``true`` / ``false``) and the deploy block step's
    ``image``, ``pod-spec-patch``, ``in-key`` and ``out-key`` (empty for built-in formats)."""
    project_id = ctx.int_arg("project-id")
    build_id = ctx.int_arg("build-id", 0)
    job_id = ctx.int_arg("job-id", 0) or None
    platform = step_platform()
    try:
        if build_id <= 0:
            with platform.db.session() as s:
                plan = builds.plan_build(
                    s,
                    project_id,
                    model_id=ctx.int_arg("model-id", 0),
                    fmt=ctx.arg("format", ""),  # "" → InvalidArgument listing the formats
                    target=ctx.arg("target", ""),
                    precision=ctx.arg("precision", "int8"),
                    options=_options(ctx),
                    timeout_s=_timeout(ctx),
                )
                build_id = builds.create_build(s, project_id, plan, job_id=job_id).id
            ctx.log(f"build {build_id}: model {plan.model_id} as {plan.format} for {plan.target}")
        summary = builds.run_build(
            platform.db,
            platform.objects,
            project_id,
            build_id,
            reporter=_BuildReporter(ctx),
            stage_block=True,
        )
    finally:
        platform.close()
    custom = bool(summary.get("custom"))
    ctx.output("build-id", str(build_id))
    ctx.output("custom", "true" if custom else "false")
    for name in BLOCK_OUTPUTS:
        ctx.output(name, str(summary.pop(name.replace("-", "_"), "")))
    ctx.output("summary", json.dumps(summary, sort_keys=True, default=str))


#: Outputs of ``build`` the deploy block step takes (``hera_workflows.common.BLOCK_STEP_INPUTS``).
BLOCK_OUTPUTS = ("image", "pod-spec-patch", "in-key", "out-key")


@step("build-finish", help="Store a deploy block step's output as the build's artifact.")
def finish(ctx: StepContext) -> None:
    """Output ``summary``: the job result (as ``build`` gives it for built-in formats). With
    ``custom`` true the deploy block's output is checked and stored first; when the block's
    step did not succeed (``block-status``) the build fails, naming the block and quoting its
    last output lines from the job log."""
    project_id, build_id = ctx.int_arg("project-id"), ctx.int_arg("build-id")
    block_status = ctx.arg("block-status", "Succeeded")
    platform = step_platform()
    try:
        if ctx.arg("custom", "false") == "true" and block_status != "Succeeded":
            with platform.db.session() as s:
                ref = builds.block_reference(builds.get_build(s, project_id, build_id))
            err = _block_error(
                platform, ctx.int_arg("job-id", 0), ref, f"its step ended {block_status}"
            )
            builds.fail_build(
                platform.db, platform.objects, project_id, build_id,
                f"{type(err).__name__}: {err.message}",
            )  # fmt: skip
            raise err
        if ctx.arg("custom", "false") == "true":
            summary = builds.finish_block_build(
                platform.db, platform.objects, project_id, build_id, reporter=_BuildReporter(ctx)
            )
        else:
            with platform.db.session() as s:
                row = builds.get_build(s, project_id, build_id)
                if row.state != builds.READY:
                    raise InvalidArgument(
                        f"build {build_id} is {row.state}, not ready", field="build-id"
                    )
                summary = builds.build_summary(row)
    finally:
        platform.close()
    ctx.output("summary", json.dumps(summary, sort_keys=True, default=str))


#: The job log lines a step's output and events are written as (see hera_workflows/jobs.py).
_BLOCK_TASK = "deploy-block"
_EVENT = re.compile(rf"^step {_BLOCK_TASK}(?:\(\d+\))?: (?:Failed|Error)(?: - (?P<msg>.*))?$")
_OUTPUT = re.compile(rf"^\[{_BLOCK_TASK}(?:\(\d+\))?\] (?P<line>.*)$")
_RUNNER_LINES = ("input artifact ", "output artifact ", "retry ")
#: How many of the job's last log lines are searched for the block's output.
_LOG_WINDOW = 5000


def _block_log(platform: Any, job_id: int) -> tuple[str, list[str]]:
    """(the deploy block step's failure message, its last output lines) from the job log."""
    jobs = getattr(platform, "jobs", None)
    if jobs is None or job_id <= 0:
        return "", []
    try:
        count = jobs.log_line_count(job_id)
        rows = jobs.logs(job_id, offset=max(0, count - _LOG_WINDOW), limit=_LOG_WINDOW)
    except Exception:  # the log only adds detail: never let it stop failing the build
        return "", []
    message, tail = "", []
    for row in rows:
        for line in str(row.line).splitlines():
            if m := _EVENT.match(line):
                message = m.group("msg") or message
            elif (m := _OUTPUT.match(line)) and not m.group("line").startswith(_RUNNER_LINES):
                tail.append(m.group("line"))
    return message, tail


def _block_error(platform: Any, job_id: int, ref: str, fallback: str) -> TinyForgeError:
    """BlockFailed for deploy block ``ref``'s step: the step's failure message from the job
    log (else ``fallback``) and the block's last output lines (where the log has them)."""
    from tinyforge.blocks.errors import BlockFailed

    message, tail = _block_log(platform, job_id)
    return BlockFailed(f"deploy block {ref} failed: {message or fallback}", log_tail=tail)


@step("build-cleanup", help="Remove a build job's staged block keys; fail unfinished builds.")
def cleanup(ctx: StepContext) -> None:
    """Runs on exit whatever the outcome (``status`` = ``{{workflow.status}}``): a build the
    pipeline left pending or running (cancelled, a step lost or past its deadline) fails."""
    from tinyforge.deploy import custom_block

    project_id, job_id = ctx.int_arg("project-id"), ctx.int_arg("job-id", 0)
    status = ctx.arg("status", "")
    platform = step_platform()
    try:
        ids = builds.job_builds(platform.db, project_id, job_id, ctx.int_arg("build-id", 0))

        def reason(row: Build) -> str:
            if not custom_block.is_custom_format(row.format):
                return f"the build pipeline ended {status} before build {row.id} finished"
            err = _block_error(
                platform,
                job_id,
                builds.block_reference(row),
                f"the pipeline ended {status} before its output was stored",
            )
            return f"{type(err).__name__}: {err.message}"

        failed = []
        if status != "Succeeded":
            failed = builds.abandon_builds(platform.db, platform.objects, project_id, ids, reason)
        removed = sum(builds.remove_block_staging(platform.objects, project_id, b) for b in ids)
    finally:
        platform.close()
    if failed:
        ctx.log(f"failed unfinished build(s) {', '.join(map(str, failed))}")
    ctx.log(f"removed {removed} staged object(s) of build(s) {', '.join(map(str, ids)) or '-'}")
