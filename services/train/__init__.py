"""The train service: TrainService (training and test jobs, stored models, model files, live
classification) — a thin gRPC layer over :mod:`tinyforge.training` (DESIGN.md §1).

``register(server, ctx)`` adds the servicer and binds the platform context for the
``train.train_model`` and ``train.test_model`` job kinds.
"""

from __future__ import annotations

import grpc

from tinyforge.context import PlatformContext


def register(server: grpc.Server, ctx: PlatformContext) -> list[str]:
    """Add the TrainService servicer; returns its full service name."""
    from services.train import jobs, servicer
    from tinyforge.training.store import cleanup_stale_models

    jobs.bind(ctx)
    # rows a crashed process left half-written (their jobs were failed by the job manager)
    cleanup_stale_models(ctx.db, ctx.objects)
    return servicer.register(server, ctx)
