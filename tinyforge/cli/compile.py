"""CLI command: ``tinyforge compile MODEL.tflite -o DIR`` (int8 TFLite -> plain C, verified)."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""

    @app.command("compile")
    def compile_cmd(
        model: Path = typer.Argument(..., help="int8 .tflite model"),
        out: Path = typer.Option(..., "-o", "--out", help="output directory for model.c/.h"),
        target: str = typer.Option("host", "--target",
                                   help="host | cortex-m4f | rv32imc | wasm"),
        verify_n: int = typer.Option(0, "--verify", help="verify N random inputs on target"),
        inputs: Path | None = typer.Option(None, "--inputs",
                                           help=".npy of extra real inputs to verify"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
        plan: bool = typer.Option(False, "--plan", help="include the memory plan in JSON"),
    ) -> None:
        """Compile MODEL into interpreter-free C; with --verify, prove it bit-exact on TARGET."""
        import numpy as np

        from tinyforge.compiler import toolchains
        from tinyforge.compiler.verify import compile_model, verify
        from tinyforge.errors import TinyForgeError

        try:
            if target not in toolchains.TARGETS:
                raise typer.BadParameter(f"--target must be one of {', '.join(toolchains.TARGETS)}")
            extra = np.load(inputs, allow_pickle=False) if inputs else None
            if verify_n > 0 or extra is not None:
                rep = verify(model, out, target=target, n_random=verify_n, inputs=extra)
                result = rep.as_dict(with_plan=plan)
            else:
                c = compile_model(model, out, target)
                result = {"target": target, "bit_exact": None, "compared": 0,
                          "arena_bytes": c.plan.arena_bytes, "ram_bytes": None,
                          "flash_bytes": None, "instructions": None, "macs": c.macs,
                          "ops": c.ops, "weight_bytes": c.weight_bytes}
                if plan:
                    result["plan"] = c.plan.as_dict()
        except TinyForgeError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            raise typer.Exit(2) from exc
        if as_json:
            typer.echo(json.dumps(result))
        else:
            for k, v in result.items():
                if k != "plan":
                    typer.echo(f"{k}: {v}")
        if result.get("bit_exact") is False:
            raise typer.Exit(1)
