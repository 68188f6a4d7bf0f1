"""CLI command: ``tinyforge serve MODEL`` — a KServe model server for one impulse.

MODEL is a ``kserve`` deployment artifact (.zip) or its unpacked model directory
(``impulse.json``, ``labels.json``, ``model_int8.tflite``, ...). It answers v1
(``POST /v1/models/NAME:predict``) and v2 / open inference protocol over REST
(``/v2/models/NAME/infer``) and gRPC, with DSP in the server: send raw windows or sample files.

It listens on 127.0.0.1 by default. Stock kserve binds every interface (0.0.0.0 / [::]);
``--host 0.0.0.0`` restores that for a container (the Helm chart's ServingRuntime does so).
"""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""

    @app.command("serve")
    def serve_cmd(
        model: Path = typer.Argument(..., help="kserve artifact .zip or model directory"),
        http_port: int = typer.Option(8080, "--http-port", help="REST port (v1 + v2)"),
        grpc_port: int = typer.Option(8081, "--grpc-port", help="gRPC port (v2)"),
        name: str = typer.Option("impulse", "--name", help="model name in the URLs"),
        host: str = typer.Option("127.0.0.1", "--host",
                                 help="address to listen on (0.0.0.0 = every interface)"),
        model_type: str | None = typer.Option(None, "--model-type",
                                              help="default model: int8 | float32 "
                                                   "(default int8 when present)"),
        grpc: bool = typer.Option(True, "--grpc/--no-grpc", help="serve gRPC v2 too"),
    ) -> None:
        """Serve MODEL (DSP + int8/float model) as a KServe model server until Ctrl-C."""
        from tinyforge.errors import TinyForgeError
        from tinyforge.serving.kserve_compat import import_kserve

        for flag, port in (("--http-port", http_port), ("--grpc-port", grpc_port)):
            if not 1 <= port <= 65535:
                raise typer.BadParameter(f"{flag} {port} must be in 1..65535")
        if model_type not in (None, "int8", "float32"):
            raise typer.BadParameter("--model-type must be int8 or float32")
        kserve = import_kserve()
        from tinyforge.serving.server import serve

        try:
            serve(model, name=name, host=host, http_port=http_port, grpc_port=grpc_port,
                  model_type=model_type, enable_grpc=grpc)
        except TinyForgeError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            raise typer.Exit(2) from exc
        except kserve.errors.InvalidInput as exc:
            typer.echo(f"error: {exc.reason}", err=True)
            raise typer.Exit(2) from exc
