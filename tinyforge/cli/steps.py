"""CLI: ``tinyforge step NAME --arg k=v`` — the entrypoint of every pipeline step container."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``step`` command (and ``step-list``) to the root app."""

    @app.command("step", help="Run one pipeline step (what workflow containers execute).")
    def step_cmd(
        name: str = typer.Argument(..., help="step name, see `tinyforge step-list`"),
        arg: list[str] = typer.Option([], "--arg", help="KEY=VALUE, repeatable"),
    ) -> None:
        from tinyforge.errors import TinyForgeError
        from tinyforge.workflows.steps import main_exit_code, parse_args

        try:
            args = parse_args(arg)
        except TinyForgeError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            raise typer.Exit(2) from None
        raise typer.Exit(main_exit_code(name, args))

    @app.command("step-list", help="List the pipeline steps this installation provides.")
    def step_list() -> None:
        from tinyforge.workflows.steps import steps

        for name, d in sorted(steps().items()):
            typer.echo(f"{name:28} {d.help}")
