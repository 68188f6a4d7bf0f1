"""CLI commands: ``up`` (embedded platform), ``status``, ``org create/list/get``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from tinyforge.cli.common import (
    JSON_OPTION,
    fail,
    get_client,
    handles_api_errors,
    print_fields,
    print_json,
    print_table,
)

org_app = typer.Typer(help="Organizations.", no_args_is_help=True)


def up(
    data_dir: Path = typer.Option(
        None, "--data-dir", help="Data directory (default $TINYFORGE_DATA_DIR or ./.tinyforge)."
    ),
    port: int = typer.Option(None, "--port", help="gRPC port (default 4800)."),
    host: str = typer.Option(None, "--host", help="Listen address (default 127.0.0.1)."),
    ingestion_port: int = typer.Option(
        None, "--ingestion-port", help="Edge-Impulse-compatible HTTP ingestion port (default 4810)."
    ),
) -> None:
    """Start every TinyForge service locally (SQLite + local objects); Ctrl-C stops it."""
    env = dict(os.environ)
    if data_dir is not None:
        env["TINYFORGE_DATA_DIR"] = str(data_dir.expanduser().resolve())
    if port is not None:
        env["TINYFORGE_GRPC_PORT"] = str(port)
    if host is not None:
        env["TINYFORGE_GRPC_HOST"] = host
    if ingestion_port is not None:
        env["TINYFORGE_INGESTION_PORT"] = str(ingestion_port)
    # The servers live in services/, which the library never imports: replace this process
    # with the embedded server so signals (Ctrl-C, SIGTERM) reach it directly.
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "services.embedded"], env)


def status(json_out: bool = JSON_OPTION) -> None:
    """Show what runs where: address, services and their health, data dir, DB, object store."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    from tinyforge.client import ConfigError, load_client_config

    try:
        cfg = load_client_config()
    except ConfigError as exc:
        fail(f"{exc}", code=2)
        return
    extra = cfg.extra or {}
    info: dict[str, object] = {
        "address": cfg.address,
        "config": str(cfg.path) if cfg.path else None,
        "data_dir": extra.get("data_dir"),
        "database": extra.get("database"),
        "object_store": extra.get("object_store"),
        "pid": extra.get("pid"),
        "running": False,
        "services": {},
    }
    services: dict[str, str] = {}
    with grpc.insecure_channel(cfg.address) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=3)
            refl = reflection_pb2_grpc.ServerReflectionStub(channel)
            answers = refl.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
            )
            names = [s.name for a in answers for s in a.list_services_response.service]
            health = health_pb2_grpc.HealthStub(channel)
            for name in names:
                if name.startswith("grpc."):
                    continue
                resp = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
                services[name] = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
            info["running"] = True
        except (grpc.FutureTimeoutError, grpc.RpcError):
            pass
    info["services"] = services
    if json_out:
        print_json(info)
    else:
        state = "running" if info["running"] else "NOT reachable"
        typer.echo(f"TinyForge at {cfg.address}: {state}")
        for key in ("config", "data_dir", "database", "object_store", "pid"):
            typer.echo(f"  {key}: {info[key]}")
        if services:
            print_table(
                "services",
                ["service", "health", "address"],
                [(n, s, cfg.address) for n, s in sorted(services.items())],
            )
    if not info["running"]:
        raise typer.Exit(1)


@org_app.command("create")
@handles_api_errors
def org_create(name: str, json_out: bool = JSON_OPTION) -> None:
    """Create an organization (you become its admin); prints its admin key once."""
    resp = get_client().create_organization(name)
    if json_out:
        print_json(
            {
                "organization": resp.organization,
                "admin_key": resp.admin_key,
                "admin_key_secret": resp.admin_key_secret,
            }
        )
        return
    typer.echo(f"created organization {resp.organization.id} ({resp.organization.name})")
    typer.echo(f"admin API key (shown once): {resp.admin_key_secret}")


@org_app.command("list")
@handles_api_errors
def org_list(json_out: bool = JSON_OPTION) -> None:
    """Organizations visible to your API key."""
    rows = get_client().list_organizations()
    if json_out:
        print_json(rows)
    else:
        print_table("organizations", ["id", "name"], [(o.id, o.name) for o in rows])


@org_app.command("get")
@handles_api_errors
def org_get(
    org_id: int = typer.Argument(0, help="0 = your key's organization"),
    json_out: bool = JSON_OPTION,
) -> None:
    """Show one organization."""
    org = get_client().get_organization(org_id)
    if json_out:
        print_json(org)
    else:
        print_fields(org)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("up")(up)
    app.command("status")(status)
    app.add_typer(org_app, name="org")
