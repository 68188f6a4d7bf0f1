"""Entry point of the ``tinyforge`` CLI.

Each area lives in its own module under ``tinyforge/cli/`` and adds its commands through
``register(app)``. Modules must keep heavy imports (TensorFlow, scipy) inside the command
functions so ``tinyforge --help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

# Areas, in the order their commands appear in --help.
AREAS = ["platform", "projects", "jobs", "data", "impulse", "train", "compile", "build", "blocks",
         "steps", "cluster", "serve", "pipeline"]

app = typer.Typer(
    name="tinyforge",
    help="TinyForge: self-hosted edge machine learning, driven through gRPC.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

for _area in AREAS:
    importlib.import_module(f"tinyforge.cli.{_area}").register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
