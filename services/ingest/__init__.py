"""The ingest service: gRPC IngestService plus the Edge-Impulse-compatible HTTP ingestion API.

``register(server, ctx)`` adds the gRPC servicer; :class:`services.ingest.http_api.IngestHttpServer`
serves ``POST /api/{category}/files|data`` at the root of ``Settings.ingestion_port``. Both store
samples through :class:`tinyforge.data.samples.SampleStore`.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc

from tinyforge.context import PlatformContext

log = logging.getLogger(__name__)


def register(server: grpc.Server, ctx: PlatformContext) -> list[str]:
    """Add the IngestService servicer to ``server``; returns its full service name."""
    from services.ingest import servicer

    return servicer.register(server, ctx)


def start_http(ctx: PlatformContext) -> Any:
    """Start the EI-compatible HTTP ingestion API on ``settings.ingestion_port`` (after
    removing what crashed uploads left behind); returns the server (``.stop()``)."""
    from services.ingest.http_api import IngestHttpServer
    from services.ingest.servicer import sample_store
    from tinyforge.errors import FailedPrecondition

    store = sample_store(ctx)
    try:
        removed = store.cleanup_stale_uploads()
        if removed:
            log.warning("removed %d unfinished uploads left by a previous run", removed)
    except Exception:
        log.exception("cleanup of unfinished uploads failed")
    try:
        http = IngestHttpServer(ctx, store)
    except OSError as exc:
        raise FailedPrecondition(
            f"cannot listen on {ctx.settings.grpc_host}:{ctx.settings.ingestion_port} for the "
            f"ingestion API: {exc}",
            field="ingestion_port",
        ) from exc
    http.start()
    return http
