"""CLI commands: jobs (placeholder until its issue fills it)."""

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
