"""Embedded mode: every TinyForge service in one local process (``tinyforge up``).

Run as ``python -m services.embedded``; settings come from ``TINYFORGE_*`` variables. On first
start it creates the data dir, the default organization/project, an admin user and an
organization-admin API key, prints the key once and saves ``client.json`` (mode 600) for the
CLI and SDK. SIGINT/SIGTERM stop it cleanly (exit code 0).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from services.common.runtime import freeze_startup_objects
from services.common.server import PlatformServer, load_registrars
from services.ingest import start_http
from tinyforge.accounts.apikeys import create_api_key
from tinyforge.accounts.bootstrap import ensure_defaults
from tinyforge.config import Settings
from tinyforge.context import PlatformContext
from tinyforge.errors import TinyForgeError
from tinyforge.store.models import Role
from tinyforge.telemetry import configure_telemetry, shutdown_telemetry

# The services served in embedded mode; adding a service is one line here.
SERVICES = [
    "services.api",
    "services.ingest",
    "services.dsp",
    "services.train",
    "services.blocks",
    "services.builder",
    "services.pipelines",
]

log = logging.getLogger("tinyforge.embedded")


def redacted_db_url(url: str) -> str:
    """The database URL without its password, for display."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def write_client_config(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON readable by the owner only (temp file + rename: never partial)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".client-", suffix=".json")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def run(settings: Settings, *, out: Any = sys.stdout) -> int:
    """Start the platform, block until SIGINT/SIGTERM, stop; returns the exit code."""
    stop = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    tracer_provider = configure_telemetry("tinyforge-embedded")
    ctx = PlatformContext.create(settings, tracer_provider=tracer_provider)
    http = None
    try:
        with ctx.db.session() as s:
            boot = ensure_defaults(s)
        previous = _read_json(settings.client_config_path)
        secret = boot.admin_secret or previous.get("api_key")
        if secret is None:
            # client.json was lost: the stored hash cannot give the key back, so make a new one.
            with ctx.db.session() as s:
                _key, secret = create_api_key(
                    s,
                    org_id=boot.org_id,
                    role=Role.ADMIN,
                    user_id=boot.admin_user_id or None,
                    name="admin (client.json recreated)",
                )
            boot_secret_new = True
        else:
            boot_secret_new = boot.admin_secret is not None
        _ = ctx.objects  # fail early on a broken object store configuration
        server = PlatformServer(ctx, load_registrars(SERVICES))
        http = start_http(ctx)
        server.start()
        freeze_startup_objects()
        write_client_config(
            settings.client_config_path,
            {
                "address": server.address,
                "api_key": secret,
                "org_id": boot.org_id,
                "project_id": boot.project_id,
                "data_dir": str(settings.data_dir),
                "database": redacted_db_url(settings.database_url),
                "object_store": settings.object_store,
                "services": server.service_names,
                "ingestion_url": http.url,
                "pid": os.getpid(),
            },
        )
        print(f"TinyForge is running on {server.address}", file=out)
        print(f"  data dir:     {settings.data_dir}", file=out)
        print(f"  database:     {redacted_db_url(settings.database_url)}", file=out)
        print(f"  object store: {settings.object_store}", file=out)
        print(f"  services:     {', '.join(server.service_names)}", file=out)
        print(f"  ingestion:    {http.url} (Edge-Impulse-compatible HTTP)", file=out)
        if boot_secret_new:
            print("", file=out)
            print("Admin API key (shown once; saved in client.json for the CLI):", file=out)
            print(f"  {secret}", file=out)
        print(f"Client config: {settings.client_config_path}. Ctrl-C stops.", file=out, flush=True)
        stop.wait()
        print("stopping…", file=out, flush=True)
        http.stop()
        server.stop(grace=3.0)
    except TinyForgeError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        if http is not None:
            http.stop()  # idempotent; here for the error paths
        ctx.close()
        shutdown_telemetry()
    print("stopped", file=out, flush=True)
    return 0


def main() -> None:
    """Entry point of ``python -m services.embedded``."""
    logging.basicConfig(
        level=os.environ.get("TINYFORGE_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    sys.exit(run(Settings.from_env()))


if __name__ == "__main__":
    main()
