"""CLI commands for cluster deployments: ``service run NAME`` and ``bootstrap``.

In the cluster every service is its own Deployment running ``tinyforge service run NAME``;
``tinyforge bootstrap`` (run once, e.g. ``kubectl exec``) creates the default organization,
project and the first admin API key, printed once.
"""

from __future__ import annotations

import os
import sys

import typer

from tinyforge.cli.common import JSON_OPTION, print_json

service_app = typer.Typer(help="Run one platform service (cluster mode).", no_args_is_help=True)


@service_app.command("run")
def service_run(
    name: str = typer.Argument(..., help="service name: api, ingest (more as services land)"),
    port: int = typer.Option(None, "--port", help="gRPC port (default $TINYFORGE_GRPC_PORT)."),
    host: str = typer.Option(None, "--host", help="listen address (default $TINYFORGE_GRPC_HOST)."),
) -> None:
    """Serve one service until SIGTERM (what each Deployment of the Helm chart runs)."""
    argv = [sys.executable, "-m", "services.serve", name]
    if port is not None:
        argv += ["--port", str(port)]
    if host is not None:
        argv += ["--host", host]
    sys.stdout.flush()
    # services/ is never imported by the library: hand the process over so signals reach it.
    os.execv(sys.executable, argv)


def bootstrap(json_out: bool = JSON_OPTION) -> None:
    """Create the default org, project and first admin API key (once; idempotent)."""
    from tinyforge.accounts.bootstrap import ensure_defaults
    from tinyforge.config import Settings
    from tinyforge.store.db import Database

    settings = Settings.from_env()
    if settings.database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_url)
    try:
        with db.session() as s:
            boot = ensure_defaults(s)
    finally:
        db.dispose()
    result = {
        "org_id": boot.org_id,
        "project_id": boot.project_id,
        "api_key": boot.admin_secret,
        "created": boot.admin_secret is not None,
    }
    if json_out:
        print_json(result)
    elif boot.admin_secret:
        typer.echo(f"organization {boot.org_id}, project {boot.project_id} created")
        typer.echo(f"admin API key (shown once, store it now): {boot.admin_secret}")
    else:
        typer.echo("already bootstrapped; create further keys with `tinyforge apikey create`")


def register(app: typer.Typer) -> None:
    """Add ``service`` and ``bootstrap`` to the root app."""
    app.add_typer(service_app, name="service")
    app.command("bootstrap")(bootstrap)
