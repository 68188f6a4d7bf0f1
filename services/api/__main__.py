"""Serve the API service alone (cluster mode): ``python -m services.api``."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from services.common.server import PlatformServer, load_registrars
from tinyforge.config import Settings
from tinyforge.context import PlatformContext
from tinyforge.telemetry import configure_telemetry, shutdown_telemetry


def main() -> None:
    logging.basicConfig(level=os.environ.get("TINYFORGE_LOG_LEVEL", "INFO").upper())
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    provider = configure_telemetry("tinyforge-api")
    ctx = PlatformContext.create(Settings.from_env(), tracer_provider=provider)
    server = PlatformServer(ctx, load_registrars(["services.api"]))
    server.start()
    stop.wait()
    server.stop(grace=5.0)
    ctx.close()
    shutdown_telemetry()
    sys.exit(0)


if __name__ == "__main__":
    main()
