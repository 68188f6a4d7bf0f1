"""Serve ONE service per process (cluster mode): ``python -m services.serve NAME [--port N]``.

Each Deployment of the Helm chart runs this (through ``tinyforge service run NAME``) with the
same servicer code embedded mode runs all together. Settings come from ``TINYFORGE_*``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading

from services.common.runtime import freeze_startup_objects
from services.common.server import PlatformServer, load_registrars
from tinyforge.config import Settings
from tinyforge.context import PlatformContext
from tinyforge.telemetry import configure_telemetry, shutdown_telemetry

#: Service name → the packages whose ``register`` add its servicers.
SERVICE_MODULES: dict[str, list[str]] = {
    # The api Deployment also serves the org-scoped block registry (small, same clients).
    "api": ["services.api", "services.blocks", "services.pipelines"],
    "ingest": ["services.ingest"],
    "dsp": ["services.dsp"],
    "train": ["services.train"],
    "blocks": ["services.blocks"],
    "builder": ["services.builder"],
}


def main(argv: list[str] | None = None) -> int:
    """Run the named service until SIGINT/SIGTERM; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="tinyforge service run")
    parser.add_argument("name", choices=sorted(SERVICE_MODULES))
    parser.add_argument("--host", default=None, help="listen address (default TINYFORGE_GRPC_HOST)")
    parser.add_argument(
        "--port", type=int, default=None, help="gRPC port (default TINYFORGE_GRPC_PORT)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("TINYFORGE_LOG_LEVEL", "INFO").upper())
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    provider = configure_telemetry(f"tinyforge-{args.name}")
    ctx = PlatformContext.create(Settings.from_env(), tracer_provider=provider)
    server = PlatformServer(
        ctx, load_registrars(SERVICE_MODULES[args.name]), host=args.host, port=args.port
    )
    # A service with an HTTP side (ingest: the Edge-Impulse-compatible API) exposes start_http.
    starters = [
        getattr(importlib.import_module(m), "start_http", None) for m in SERVICE_MODULES[args.name]
    ]
    https = [start(ctx) for start in starters if start is not None]
    server.start()
    freeze_startup_objects()
    logging.getLogger("tinyforge").info("%s service listening on port %s", args.name, server.port)
    stop.wait()
    for http in https:
        http.stop()
    server.stop(grace=5.0)
    ctx.close()
    shutdown_telemetry()
    return 0


if __name__ == "__main__":
    sys.exit(main())
