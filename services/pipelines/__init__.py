"""The pipeline service: PipelineService (list the pipelines of ``hera_workflows/`` and run one
by name as a job) — a thin gRPC layer over :mod:`hera_workflows` (DESIGN.md §1).

``register(server, ctx)`` adds the servicer and binds the ``pipelines.run`` job kind: the
pipeline's Hera definition run by the local runner in embedded mode, submitted to Argo in
cluster mode (``TINYFORGE_WORKFLOW_ENGINE=argo``).
"""

from __future__ import annotations

import grpc

from tinyforge.context import PlatformContext


def register(server: grpc.Server, ctx: PlatformContext) -> list[str]:
    """Add the PipelineService servicer; returns its full service name."""
    from services.pipelines import jobs, servicer

    jobs.bind(ctx)
    return servicer.register(server, ctx)
