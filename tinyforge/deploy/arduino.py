"""``arduino``: an Arduino library (``library.properties``, ``src/``, ``examples/``).

All C sources sit flat in ``src/`` (the Arduino builder adds only ``src/`` to the include path)
and start with ``#pragma GCC optimize ("fp-contract=off")``: Arduino cores compile with
``-std=gnu11``, where GCC fuses multiply-adds, and the library cannot pass its own flags.

Check here: the shipped ``src/`` is compiled with Arduino-style flags for the Cortex-M target
and classifies the bundle's test windows on the emulator (predictions equal to the
platform's); the example sketch is compiled as C++ with a tiny Arduino-core stand-in, linked
with the library and run once: its printed prediction must equal the platform's for the
sketch's window.
"""

from __future__ import annotations

import re
import shutil

from tinyforge.deploy import cross
from tinyforge.deploy.context import BuildContext
from tinyforge.deploy.sources import (
    CSources,
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

#: what Arduino's ARM cores pass (-Os, GNU dialects, sections; warnings shown, not errors)
ARDUINO_CFLAGS = ["-Os", "-std=gnu11", "-Wall", "-ffunction-sections", "-fdata-sections"]
ARDUINO_CXXFLAGS = ["-Os", "-std=gnu++17", "-Wall", "-fno-exceptions", "-fno-rtti",
                    "-fno-threadsafe-statics", "-ffunction-sections", "-fdata-sections"]
PRAGMA = '#pragma GCC optimize ("fp-contract=off") /* keep float results exact */\n'


def build(ctx: BuildContext) -> None:
    """Fill ``ctx.stage`` with the Arduino library (see module docstring)."""
    name = ctx.bundle.name
    lib = f"{name}_inferencing"
    ctx.zip_root = lib
    root = ctx.stage
    gen = write_sources(ctx, ctx.work / "gen")
    src = root / "src"
    src.mkdir(parents=True)
    for d in gen.include_dirs:
        for p in sorted(d.iterdir()):
            text = p.read_text()
            write(src / p.name, PRAGMA + text if p.suffix == ".c" else text)
    write(src / f"{lib}.h", render(template("arduino/library.h"), NAME=name,
                                   GUARD=f"{lib.upper()}_H"))
    example = root / "examples" / f"{name}_classify"
    write(example / f"{name}_classify.ino", render(template("arduino/example.ino"), NAME=name))
    write(example / "sample.h", example_sample_header(ctx))
    flat = CSources(root=root, c_files=sorted(src.glob("*.c")), include_dirs=[src],
                    compiled=gen.compiled, impulse=gen.impulse)
    fw = build_firmware(ctx, flat, cflags=ARDUINO_CFLAGS)
    if fw is not None and ctx.target.runner:
        _run_sketch(ctx, fw.lib_objs, src, example)
    summary = impulse_summary(ctx)
    write(root / "library.properties", render(
        template("arduino/library.properties"), **summary, **verified_values(ctx),
        LABELS_PLAIN=", ".join(ctx.bundle.labels)))
    write(root / "README.md", render(template("arduino/README.md"), **summary,
                                     **verified_values(ctx)))


def _run_sketch(ctx: BuildContext, lib_objs, src, example) -> None:
    """Compile the .ino as the Arduino builder does (C++, Arduino.h first), link it with the
    library and the core stand-in, run it on the emulator and check its prediction."""
    gxx = ctx.target.toolchain.replace("gcc", "g++")
    require(gxx)
    name = ctx.bundle.name
    work = ctx.work / "sketch"
    shim = work / "shim"
    for f in ("Arduino.h", "shim_main.cpp"):
        write(shim / f, template(f"arduino_shim/{f}"))
    ino = example / f"{name}_classify.ino"
    cpp = write(work / f"{name}_classify.ino.cpp", '#include "Arduino.h"\n' + ino.read_text())
    arch = cross.ARCH_CFLAGS[ctx.target.arch]
    objs = []
    for s in (cpp, shim / "shim_main.cpp"):
        o = work / (s.name + ".o")
        ctx.run([gxx, *arch, *ARDUINO_CXXFLAGS, f"-I{shim}", f"-I{src}", f"-I{example}", "-c",
                 s, "-o", o])
        objs.append(o)
    elf = cross.link(ctx, [*lib_objs, *objs], work / "sketch.elf", semihosting=True)
    out = cross.run_binary(ctx, elf)
    m = re.search(r"^prediction: (.*)$", out, re.M)
    if not m or "sketch: done" not in out:
        raise FailedPrecondition(f"the example sketch printed no prediction: {out[-500:]}",
                                 field="verification")
    label = m.group(1).strip()
    if label not in ctx.bundle.labels:
        raise FailedPrecondition(f"the example sketch printed an unknown label {label!r}",
                                 field="verification")
    saved = dict(ctx.metrics)
    compare_predictions(ctx, [0], [ctx.bundle.labels.index(label)], "the example sketch")
    ctx.metrics.clear()
    ctx.metrics.update(saved)
    ctx.metrics["example_check"] = "sketch compiled, run on the emulator: prediction equals " \
                                   "the platform's"
    shutil.rmtree(work, ignore_errors=True)
