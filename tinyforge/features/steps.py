"""Pipeline steps of feature generation: plan shards, compute one shard, publish.

The Argo pipeline (``hera_workflows/features.py``) fans the samples still to process out over
parallel ``features-shard`` steps, each writing content-addressed cache packs, then one
``features-publish`` step assembles and publishes the matrices (finding everything cached).
"""

from __future__ import annotations

import json
import math
from typing import Any

from tinyforge.errors import InvalidArgument
from tinyforge.features.generate import generate_features, samples_to_process
from tinyforge.workflows.platform_env import step_platform
from tinyforge.workflows.steps import StepContext, StepReporter, step


def _ids(ctx: StepContext) -> tuple[int, int, int]:
    return ctx.int_arg("project-id"), ctx.int_arg("impulse-id"), ctx.int_arg("version", 0)


@step("features-plan", help="Validate the dataset and split the samples to process into shards.")
def plan(ctx: StepContext) -> None:
    """Output ``shards``: a JSON list of ``{"index", "count"}``, at least one."""
    project_id, impulse_id, version = _ids(ctx)
    max_shards = ctx.int_arg("max-shards", 8)
    per_shard = ctx.int_arg("min-samples-per-shard", 200)
    if max_shards < 1 or per_shard < 1:
        raise InvalidArgument("max-shards and min-samples-per-shard must be >= 1", field="shards")
    platform = step_platform()
    try:
        todo = samples_to_process(platform.db, platform.objects, project_id, impulse_id, version)
    finally:
        platform.close()
    count = max(1, min(max_shards, math.ceil(todo / per_shard)))
    ctx.log(f"{todo} samples to process in {count} shard(s)")
    ctx.output("shards", [{"index": i, "count": count} for i in range(count)])


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
        )
    finally:
        platform.close()
    ctx.log(f"shard {index + 1}/{count}: {result['processed_samples']} samples processed")


@step("features-publish", help="Assemble and publish the feature matrices of an impulse.")
def publish(ctx: StepContext) -> None:
    """Output ``summary``: the generation summary (per block: shape, windows, manifest)."""
    project_id, impulse_id, version = _ids(ctx)
    job_id = ctx.int_arg("job-id", 0) or None
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
        )
    finally:
        platform.close()
    ctx.output("summary", json.dumps(summary, sort_keys=True))
