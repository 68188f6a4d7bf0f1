"""A transformation job in one process: what the ``inprocess`` engine runs.

The same work as the ``tinyforge-transform`` pipeline (plan → run-block → ingest, staging keys
removed at the end whatever happens), with the block run by
:func:`tinyforge.blocks.run.run_block`: its image under podman when podman works here, else
its local command from the stored source (when local commands are allowed).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tinyforge.context import PlatformContext
from tinyforge.jobs import JobContext
from tinyforge.transform.ingest import cleanup_staging, ingest_outputs
from tinyforge.transform.source import parse_request
from tinyforge.transform.stage import plan_transform
from tinyforge.workflows.artifacts import ObjectStoreArtifacts


def run_transform(
    ctx: PlatformContext, job: JobContext, project_id: int, parameters: Mapping[str, Any]
) -> dict[str, Any]:
    """Run transformation job ``job`` on project ``project_id``; returns the job summary.

    ``parameters`` are the pipeline's (``block``, ``source``, ``parameters``, ``category``,
    ``label``, ``frequency``; see :mod:`tinyforge.transform.source`). Raises InvalidArgument /
    NotFound / FailedPrecondition for a bad request, the :mod:`tinyforge.blocks.errors` classes
    (with the block's log tail) when the block fails or its output cannot be ingested,
    Cancelled when the job is cancelled. Nothing is ingested unless everything is.
    """
    from tinyforge.blocks.registered import choose_engine, resolved_block
    from tinyforge.blocks.run import run_block

    request = parse_request(project_id, parameters)
    objects = ctx.objects
    artifacts = ObjectStoreArtifacts(objects)
    try:
        job.progress(0.05, "staging the input")
        plan = plan_transform(ctx.db, objects, project_id, job.job_id, request)
        job.log(f"block {plan.block_ref} on {plan.inputs} input file(s)")
        engine = choose_engine(plan.block)
        block = resolved_block(plan.block, objects, engine)
        with tempfile.TemporaryDirectory(prefix="tf-transform-") as tmp:
            in_dir, out_dir = Path(tmp) / "in", Path(tmp) / "out"
            artifacts.fetch(plan.in_key, in_dir)
            job.check_cancelled()
            job.progress(0.1, f"running block {plan.block_ref} with {engine}")
            result = run_block(
                block,
                in_dir,
                out_dir,
                params=plan.params,
                engine=engine,
                log=job.log,
                cancelled=lambda: job.cancelled,
            )
            artifacts.store(out_dir, plan.out_key)
        job.check_cancelled()
        job.progress(0.8, f"ingesting {len(result.files)} output file(s)")
        return ingest_outputs(
            ctx.db,
            objects,
            project_id,
            job.job_id,
            request,
            output_key=plan.out_key,
            block_ref=plan.block_ref,
            inputs=plan.inputs,
            log_tail=result.log_tail,
            log=job.log,
        )
    finally:
        cleanup_staging(objects, project_id, job.job_id)
