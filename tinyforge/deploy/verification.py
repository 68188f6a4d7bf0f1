"""On-target verification: run the built code on the bundle's test windows and require that
every window's prediction EQUALS the platform's int8 prediction.

:func:`build_firmware` is the path of every bare-metal and host C build: it compiles the
library once, links a footprint image (flash and static RAM from ``size``, checked against the
target), embeds as many test windows as the target's flash leaves room for, links the
classifying firmware (``templates/firmware/tf_main.c``), runs it on the target's emulator or
natively and compares. :func:`compare_predictions` is shared with the formats that verify
through their own front end (Linux CLI, WASM + JS wrapper, TFLite files).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyforge.deploy import cross
from tinyforge.deploy.context import BuildContext
from tinyforge.deploy.sources import (
    CSources,
    check_fits,
    label_indices,
    sample_bytes_per_window,
    samples_source,
    template,
    write,
)
from tinyforge.errors import FailedPrecondition, InvalidArgument

#: flash kept free for the C library start-up and stdio of the firmware image (bytes)
FIRMWARE_OVERHEAD = 96 * 1024
_LINE = re.compile(r"^tf: window (\d+) label (-?\d+) pred (\d+) dsp (\d+) nn (\d+)", re.M)


@dataclass
class Firmware:
    """The linked, verified firmware image and the windows it embeds."""

    elf: Path
    indices: list[int]
    output: str
    lib_objs: list[Path]


def platform_predictions(ctx: BuildContext) -> list[int]:
    """The bundle's platform predictions, computed with the Python path when absent."""
    b = ctx.bundle
    if b.platform_int8_predictions is not None:
        return [int(p) for p in b.platform_int8_predictions]
    from tinyforge.deploy.reference import platform_predictions as compute

    ctx.log("bundle has no platform predictions: computing them (Python DSP + LiteRT int8)")
    ctx.metrics["platform_predictions"] = "computed"
    return list(compute(b.impulse, b.model_int8, np.asarray(b.test_windows)))


def max_windows(ctx: BuildContext) -> int:
    """``options['verify_windows']`` (default: all test windows)."""
    n = len(ctx.bundle.test_windows) if ctx.bundle.test_windows is not None else 0
    raw = ctx.options.get("verify_windows")
    if raw is None:
        return n
    try:
        k = int(raw)
    except ValueError:
        raise InvalidArgument(f"verify_windows {raw!r} must be an integer >= 1",
                              field="options.verify_windows") from None
    if k < 1:
        raise InvalidArgument("verify_windows must be >= 1", field="options.verify_windows")
    return min(n, k)


def compare_predictions(ctx: BuildContext, indices: list[int], on_target: list[int],
                        where: str) -> None:
    """FailedPrecondition naming the first window whose on-target prediction differs from the
    platform's; otherwise record accuracy metrics (``compared`` windows)."""
    b = ctx.bundle
    platform = platform_predictions(ctx)
    if len(on_target) != len(indices):
        raise FailedPrecondition(f"{where} classified {len(on_target)} windows, expected "
                                 f"{len(indices)}", field="verification")
    diff = [(k, p) for k, p in zip(indices, on_target, strict=True) if platform[k] != p]
    if diff:
        k, p = diff[0]
        q = platform[k]
        raise FailedPrecondition(
            f"on-target verification failed on {where}: test sample {k} was classified as "
            f"{b.labels[p]!r} (class {p}) on the target but {b.labels[q]!r} (class {q}) by the "
            f"platform's int8 model ({len(diff)} of {len(indices)} windows differ)",
            field="verification")
    ctx.metrics["compared"] = len(indices)
    ctx.metrics["verified_on"] = where
    if b.test_labels is not None:
        truth = [b.labels.index(b.test_labels[k]) for k in indices]
        acc = float(np.mean([t == p for t, p in zip(truth, on_target, strict=True)]))
        pacc = float(np.mean([t == platform[k] for t, k in zip(truth, indices, strict=True)]))
        ctx.metrics["on_target_accuracy"] = acc
        ctx.metrics["platform_accuracy"] = pacc
    ctx.log(f"verified on {where}: {len(indices)} windows, predictions equal the platform's")


def parse_firmware_output(text: str) -> tuple[list[int], list[int], list[int], int | None]:
    """(predictions, dsp ticks, nn ticks, stack bytes) from tf_main.c's output."""
    rows = [tuple(int(g) for g in m.groups()) for m in _LINE.finditer(text)]
    stack = re.search(r"^tf: stack (\d+)$", text, re.M)
    err = re.search(r"^tf: error (-?\d+) on window (\d+)", text, re.M)
    if err:
        raise FailedPrecondition(f"run_classifier returned {err.group(1)} on test sample "
                                 f"{err.group(2)}", field="verification")
    return ([r[2] for r in rows], [r[3] for r in rows], [r[4] for r in rows],
            int(stack.group(1)) if stack else None)


def build_firmware(ctx: BuildContext, src: CSources, *, extra_sources: list[Path] | None = None,
                   extra_includes: list[Path] | None = None, cflags: list[str] | None = None,
                   verify: bool = True) -> Firmware | None:
    """Footprint + firmware build of ``src`` for ``ctx.target``, verified when it can run.

    Returns the firmware (None when the bundle has no test windows). Records ``flash_bytes``,
    ``static_ram_bytes``, ``stack_bytes``, ``ram_bytes`` (static + stack) and, on emulated
    cores, ``dsp_instructions`` / ``nn_instructions`` per inference (median over windows).
    """
    t = ctx.target
    runs = verify and t.runner is not None
    cross.require_toolchain(t, run=runs)
    work = ctx.work / f"build-{t.arch}"
    includes = [*src.include_dirs, *(extra_includes or [])]
    lib_objs = cross.compile_objects(ctx, [*src.c_files, *(extra_sources or [])], includes,
                                     work / "lib", cflags=cflags)
    fp_flash = 0
    if t.is_mcu:
        fp_main = write(work / "fp" / "tf_footprint.c", template("firmware/tf_footprint.c"))
        fp_obj = cross.compile_objects(ctx, [fp_main], includes, work / "fp", cflags=cflags)
        fp = cross.link(ctx, [*lib_objs, *fp_obj], work / "fp" / "footprint.elf",
                        semihosting=False)
        sz = cross.section_sizes(ctx, fp)
        fp_flash = sz["text"] + sz["data"]
        ctx.metrics["flash_bytes"] = fp_flash
        ctx.metrics["static_ram_bytes"] = sz["data"] + sz["bss"]
        check_fits(ctx, sz["data"] + sz["bss"], fp_flash, stage="footprint build")
    b = ctx.bundle
    if b.test_windows is None:
        ctx.metrics["verified_on"] = "no test windows in the bundle"
        return None
    windows = np.asarray(b.test_windows)
    n = max_windows(ctx)
    if t.is_mcu:  # the firmware must still fit the target's flash with its windows
        room = t.flash_bytes - fp_flash - FIRMWARE_OVERHEAD
        n = min(n, max(0, room // sample_bytes_per_window(windows)))
        if n < 1:
            raise FailedPrecondition(f"no test window fits the {t.flash_bytes} B flash of "
                                     f"{t.name} beside the {fp_flash} B classifier",
                                     field="verification")
    indices = list(range(n))
    labels = label_indices(ctx)
    c_text, h_text = samples_source(windows[indices], [labels[k] for k in indices])
    fw_dir = work / "fw"
    srcs = [write(fw_dir / "tf_samples.c", c_text),
            write(fw_dir / "tf_main.c", template("firmware/tf_main.c"))]
    write(fw_dir / "tf_samples.h", h_text)
    fw_objs = cross.compile_objects(ctx, srcs, [*includes, fw_dir], fw_dir / "obj",
                                    cflags=cflags)
    elf = cross.link(ctx, [*lib_objs, *fw_objs],
                     fw_dir / ("firmware.wasm" if t.arch == "wasm32" else "firmware.elf"),
                     semihosting=True)
    if not runs:
        ctx.metrics["verified_on"] = "build-only (no emulator for this target here)"
        return Firmware(elf=elf, indices=indices, output="", lib_objs=lib_objs)
    text = cross.run_binary(ctx, elf)
    preds, dsp, nn, stack = parse_firmware_output(text)
    compare_predictions(ctx, indices, preds, t.runner)
    scale = cross.TICK_INSTRUCTIONS.get(t.runner)
    if scale:
        ctx.metrics["dsp_instructions"] = int(np.median(dsp)) * scale
        ctx.metrics["nn_instructions"] = int(np.median(nn)) * scale
    if stack is not None:
        ctx.metrics["stack_bytes"] = stack
        ram = int(ctx.metrics.get("static_ram_bytes", 0)) + stack
        ctx.metrics["ram_bytes"] = ram
        check_fits(ctx, ram, fp_flash, stage="measured on the emulator")
    return Firmware(elf=elf, indices=indices, output=text, lib_objs=lib_objs)
