"""Pipeline steps of feature generation: plan shards, compute one shard, publish.

The Argo pipeline (``hera_workflows/features.py``) fans the samples still to process out over
parallel ``features-shard`` steps, each writing content-addressed cache packs, then one
``features-publish`` step assembles and publishes the matrices (finding everything cached).
Custom DSP blocks run as ``custom-dsp`` steps of their own image between the shards and the
publish step (:mod:`tinyforge.features.custom_steps`), when the steps are given the plan's
``custom-steps``; without that argument a shard runs them in its own process.
"""

from __future__ import annotations

import json
from typing import Any

from tinyforge.errors import InvalidArgument
from tinyforge.features.custom_steps import (
    CustomStep,
    cleanup_staging,
    parse_steps,
    plan_features,
)
from tinyforge.features.generate import generate_features
from tinyforge.workflows.platform_env import step_platform
from tinyforge.workflows.steps import StepContext, StepReporter, cleanup_step, step


def _ids(ctx: StepContext) -> tuple[int, int, int]:
    return ctx.int_arg("project-id"), ctx.int_arg("impulse-id"), ctx.int_arg("version", 0)


@step("features-plan", help="Validate the dataset and split the samples to process into shards.")
def plan(ctx: StepContext) -> None:
    """Outputs ``shards``: a JSON list of ``{"index", "count"}``, at least one;
    ``custom-steps``: a JSON list of custom block steps (:class:`CustomStep` items), maybe
    empty."""
    project_id, impulse_id, version = _ids(ctx)
    platform = step_platform()
    try:
        plan = plan_features(
            platform.db,
            platform.objects,
            project_id,
            impulse_id,
            version,
            ctx.int_arg("job-id", 0),
            max_shards=ctx.int_arg("max-shards", 8),
            per_shard=ctx.int_arg("min-samples-per-shard", 200),
        )
    finally:
        platform.close()
    ctx.log(f"{plan.todo} samples to process in {plan.shards} shard(s)")
    for st in plan.steps:
        ctx.log(f"custom block {st.block_name} ({st.block_type}) runs as a step for shard "
                f"{st.shard}: image {st.image}")
    ctx.output("shards", [{"index": i, "count": plan.shards} for i in range(plan.shards)])
    ctx.output("custom-steps", [st.to_item() for st in plan.steps])


def _custom_steps(ctx: StepContext) -> list[CustomStep] | None:
    """The plan's custom block steps, or None (no ``custom-steps`` argument: run in-process)."""
    if "custom-steps" not in ctx.args:
        return None
    return parse_steps(ctx.json_arg("custom-steps"))


@step("features-shard", help="Compute the features of one shard of samples into the cache.")
def shard(ctx: StepContext) -> None:
    project_id, impulse_id, version = _ids(ctx)
    spec: Any = ctx.json_arg("shard")
    try:
        index, count = int(spec["index"]), int(spec["count"])
    except (TypeError, KeyError, ValueError):
        raise InvalidArgument(
            f'shard must be {{"index": i, "count": n}}, got {spec!r}', field="shard"
        ) from None
    platform = step_platform()
    try:
        result = generate_features(
            platform.db,
            platform.objects,
            project_id,
            impulse_id,
            version,
            reporter=StepReporter(ctx),
            shard=(index, count),
            custom_steps=_custom_steps(ctx),
        )
    finally:
        platform.close()
    ctx.log(f"shard {index + 1}/{count}: {result['processed_samples']} samples processed")


@step("features-publish", help="Assemble and publish the feature matrices of an impulse.")
def publish(ctx: StepContext) -> None:
    """Output ``summary``: the generation summary (per block: shape, windows, manifest). With
    ``custom-steps``, reads the custom blocks' step outputs first and then removes the job's
    staging keys."""
    project_id, impulse_id, version = _ids(ctx)
    job_id = ctx.int_arg("job-id", 0) or None
    steps = _custom_steps(ctx)
    platform = step_platform()
    try:
        summary = generate_features(
            platform.db,
            platform.objects,
            project_id,
            impulse_id,
            version,
            reporter=StepReporter(ctx),
            job_id=job_id,
            custom_steps=steps,
        )
        if steps is not None and job_id is not None:
            cleanup_staging(platform.objects, project_id, job_id)
    finally:
        platform.close()
    ctx.output("summary", json.dumps(summary, sort_keys=True))


cleanup_step("features-cleanup", "feature", cleanup_staging)
