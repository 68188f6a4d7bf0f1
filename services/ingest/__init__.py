"""The ingest service: gRPC IngestService plus the Edge-Impulse-compatible HTTP ingestion API.

``register(server, ctx)`` adds the gRPC servicer; :class:`services.ingest.http_api.IngestHttpServer`
serves ``POST /api/{category}/files|data`` at the root of ``Settings.ingestion_port``. Both store
samples through :class:`tinyforge.data.samples.SampleStore`.
"""

from __future__ import annotations

import grpc

from tinyforge.context import PlatformContext


def register(server: grpc.Server, ctx: PlatformContext) -> list[str]:
    """Add the IngestService servicer to ``server``; returns its full service name."""
    from services.ingest import servicer

    return servicer.register(server, ctx)
