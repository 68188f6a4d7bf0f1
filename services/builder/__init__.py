"""The builder service: BuilderService (target/format catalog, build jobs, artifacts) — a thin
gRPC layer over :mod:`tinyforge.deploy` (DESIGN.md §1).

``register(server, ctx)`` adds the servicer and binds the platform context for the
``builder.build`` job kind.
"""

from __future__ import annotations

import grpc

from tinyforge.context import PlatformContext


def register(server: grpc.Server, ctx: PlatformContext) -> list[str]:
    """Add the BuilderService servicer; returns its full service name."""
    from services.builder import jobs, servicer

    jobs.bind(ctx)
    return servicer.register(server, ctx)
