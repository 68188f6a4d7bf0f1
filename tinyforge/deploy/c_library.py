"""``c-library``: the C SDK + compiled model + generated impulse, a Makefile, a CMakeLists.txt
and an example ``main.c`` that classifies a window given as an array (``sample.h``) or on
stdin.

Verification: the library is compiled for the target and classifies the bundle's test windows
there (QEMU for MCU targets, natively on Linux x86_64); for a native target the shipped
``Makefile`` is also run on a copy of the zip's folder and ``./example`` must predict the
platform's class for the sample window.
"""

from __future__ import annotations

import json
import shutil

from tinyforge.deploy.context import BuildContext
from tinyforge.deploy.sources import (
    example_sample_header,
    impulse_summary,
    render,
    template,
    verified_values,
    write,
    write_sources,
)
from tinyforge.deploy.targets import require
from tinyforge.deploy.verification import build_firmware, compare_predictions
from tinyforge.errors import FailedPrecondition


def build(ctx: BuildContext) -> None:
    """Fill ``ctx.stage`` with the C library (see module docstring)."""
    root = ctx.stage
    src = write_sources(ctx, root)
    name = ctx.bundle.name
    write(root / "main.c", render(template("c_library/main.c"), NAME=name))
    write(root / "sample.h", example_sample_header(ctx))
    write(root / "Makefile", render(template("c_library/Makefile"), NAME=name))
    write(root / "CMakeLists.txt", render(template("c_library/CMakeLists.txt"), NAME=name))
    ctx.check_deadline()
    build_firmware(ctx, src)
    if ctx.target.runner == "native" and ctx.bundle.test_windows is not None:
        _check_makefile(ctx)
    write(root / "README.md", render(template("c_library/README.md"), **impulse_summary(ctx),
                                     **verified_values(ctx)))


def _check_makefile(ctx: BuildContext) -> None:
    """``make`` the shipped folder as a user would and run ``./example`` on sample.h."""
    require("make", "gcc")
    copy = ctx.work / "make-check"
    shutil.copytree(ctx.stage, copy)
    ctx.run(["make", "-s", "-j2", "CC=gcc"], cwd=copy)
    out = ctx.run([str(copy / "example")], cwd=copy)
    try:
        idx = int(json.loads(out)["index"])
    except (ValueError, KeyError) as e:
        raise FailedPrecondition(f"example printed no result ({e}): {out[:300]}",
                                 field="verification") from None
    saved = dict(ctx.metrics)
    compare_predictions(ctx, [0], [idx], "the Makefile-built example")
    ctx.metrics.clear()
    ctx.metrics.update(saved)
    ctx.metrics["example_check"] = "make + ./example: prediction equals the platform's"
