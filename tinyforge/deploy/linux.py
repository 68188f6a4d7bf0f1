"""``linux``: a native executable (x86_64; aarch64 with ``gcc-aarch64-linux-gnu``) that reads
WAV or CSV files and prints one JSON object per window.

Verification (x86_64): each test window is written as a CSV file (float32 values printed with
9 significant digits, which ``strtof`` reads back exactly) and the shipped executable itself
classifies them; every prediction must equal the platform's. aarch64 is build-only here.
"""

from __future__ import annotations

import json
import os

import numpy as np

from tinyforge.deploy import cross
from tinyforge.deploy.context import BuildContext
from tinyforge.deploy.sources import (
    impulse_summary,
    render,
    template,
    verified_values,
    write,
    write_sources,
)
from tinyforge.deploy.verification import compare_predictions, max_windows
from tinyforge.errors import FailedPrecondition


def build(ctx: BuildContext) -> None:
    """Fill ``ctx.stage`` with ``bin/<name>``, ``source/`` and the README."""
    name = ctx.bundle.name
    t = ctx.target
    runs = t.runner == "native"
    cross.require_toolchain(t, run=runs)
    src = write_sources(ctx, ctx.stage / "source")
    main = write(src.root / "main.c", render(template("linux/main.c"), NAME=name))
    write(src.root / "Makefile", render(template("linux/Makefile"), NAME=name))
    objs = cross.compile_objects(ctx, [main, *src.c_files], src.include_dirs,
                                 ctx.work / "obj")
    exe = cross.link(ctx, objs, ctx.work / name, semihosting=False)
    (ctx.stage / "bin").mkdir()
    shipped = ctx.stage / "bin" / name
    shipped.write_bytes(exe.read_bytes())
    os.chmod(shipped, 0o755)
    ctx.metrics["binary_bytes"] = shipped.stat().st_size
    if runs and ctx.bundle.test_windows is not None:
        _verify(ctx, shipped)
    elif ctx.bundle.test_windows is not None:
        ctx.metrics["verified_on"] = f"build-only ({t.arch} cannot run here)"
    write(ctx.stage / "README.md", render(template("linux/README.md"), **impulse_summary(ctx),
                                          **verified_values(ctx)))


def _verify(ctx: BuildContext, exe) -> None:
    windows = np.asarray(ctx.bundle.test_windows, dtype=np.float32)
    indices = list(range(max_windows(ctx)))
    d = ctx.work / "csv"
    d.mkdir()
    files = []
    for k in indices:
        rows = windows[k].reshape(-1, windows.shape[-1])
        p = d / f"window_{k:04d}.csv"
        np.savetxt(p, rows, fmt="%.9g", delimiter=",")
        files.append(str(p))
    out = ctx.run([exe, *files], cwd=d)
    try:
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    except ValueError as e:
        raise FailedPrecondition(f"the executable printed invalid JSON: {e}",
                                 field="verification") from None
    by_file = {r["file"]: r for r in rows}
    preds = [int(by_file[f]["index"]) for f in files if f in by_file]
    compare_predictions(ctx, indices, preds, "native (the shipped executable)")
    us = [(r["dsp_us"], r["nn_us"]) for r in rows]
    if us:
        ctx.metrics["dsp_us"] = int(np.median([u[0] for u in us]))
        ctx.metrics["nn_us"] = int(np.median([u[1] for u in us]))
