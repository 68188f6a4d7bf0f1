"""Pipeline steps of ``tinyforge-transform`` (``hera_workflows/transform.py``).

``transform-plan`` resolves the block, checks its parameters and stages the input;
the block itself runs as the ``run-block`` step (its own image, or its local command in the
local runner); ``transform-ingest`` ingests its output as samples, all or nothing; the exit
handler's ``transform-cleanup`` removes the job's staging keys whatever happened.
"""

from __future__ import annotations

from tinyforge.transform.ingest import cleanup_staging, ingest_outputs
from tinyforge.transform.source import parse_request
from tinyforge.transform.stage import plan_transform
from tinyforge.workflows.platform_env import step_platform
from tinyforge.workflows.steps import StepContext, cleanup_step, step

#: Workflow parameters describing the job (see tinyforge.transform.source).
REQUEST_ARGS = ("block", "source", "parameters", "category", "label", "frequency")


def _request_args(ctx: StepContext) -> dict[str, str]:
    return {k: ctx.args[k] for k in REQUEST_ARGS if k in ctx.args}


@step("transform-plan", help="Resolve the transform block, check its parameters, stage input.")
def plan(ctx: StepContext) -> None:
    """Outputs ``image``, ``pod-spec-patch``, ``in-key``, ``out-key``, ``block`` (NAME@VERSION
    that runs) and ``inputs`` (number of input files)."""
    project_id, job_id = ctx.int_arg("project-id"), ctx.int_arg("job-id")
    request = parse_request(project_id, _request_args(ctx))
    platform = step_platform()
    try:
        p = plan_transform(platform.db, platform.objects, project_id, job_id, request)
    finally:
        platform.close()
    ctx.log(f"block {p.block_ref} ({p.image}) on {p.inputs} input file(s) from {p.in_key}")
    ctx.log("block arguments: " + " ".join(p.args))
    ctx.output("image", p.image)
    ctx.output("pod-spec-patch", p.pod_spec_patch)
    ctx.output("in-key", p.in_key)
    ctx.output("out-key", p.out_key)
    ctx.output("block", p.block_ref)
    ctx.output("inputs", str(p.inputs))


@step("transform-ingest", help="Ingest a transform block's output as samples, all or nothing.")
def ingest(ctx: StepContext) -> None:
    """Output ``summary``: the job result (samples ingested, labels, categories)."""
    project_id, job_id = ctx.int_arg("project-id"), ctx.int_arg("job-id")
    request = parse_request(project_id, _request_args(ctx))
    platform = step_platform()
    try:
        summary = ingest_outputs(
            platform.db,
            platform.objects,
            project_id,
            job_id,
            request,
            output_key=ctx.arg("out-key"),
            block_ref=ctx.arg("block"),
            inputs=ctx.int_arg("inputs", 0),
            log=ctx.log,
        )
        cleanup_staging(platform.objects, project_id, job_id)
    finally:
        platform.close()
    ctx.log(f"ingested {summary['samples']} sample(s): labels {summary['labels']}")
    ctx.output("summary", summary)


cleanup_step("transform-cleanup", "transformation", cleanup_staging)
