"""Pipeline step of deployment builds (see ``hera_workflows/build.py``).

``build`` runs one build (:func:`tinyforge.deploy.builds.run_build`) in the step's process: the
pending build ``build-id`` the BuilderService created, or, with ``build-id`` 0, a new build it
plans and records itself from ``model-id`` / ``format`` / ``target`` / ... (what the retrain
pipeline's optional last stage and ``tinyforge pipeline run tinyforge-build`` do).
"""

from __future__ import annotations

import json

from tinyforge.deploy import builds
from tinyforge.errors import InvalidArgument
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
    """Outputs ``build-id`` and ``summary`` (artifact key, size, sha256 and metrics)."""
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
            platform.db, platform.objects, project_id, build_id, reporter=_BuildReporter(ctx)
        )
    finally:
        platform.close()
    ctx.output("build-id", str(build_id))
    ctx.output("summary", json.dumps(summary, sort_keys=True, default=str))
