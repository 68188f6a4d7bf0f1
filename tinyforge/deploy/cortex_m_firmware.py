"""``cortex-m-firmware``: a ready ELF/BIN/HEX for a Cortex-M4F/M7 board that classifies the
bundle's test windows embedded in flash and prints each result (semihosting printf).

The zip holds ``firmware.elf`` / ``.bin`` / ``.hex`` (linked for the target's flash at
0x00000000 and RAM at 0x20000000, the map of QEMU's mps2 boards and nRF52840-class parts),
the emulator's output of the verification run (``verification.txt``), ``build-info.json``
(metrics) and the sources it was built from (``source/``). The shipped ELF is exactly the
image that was verified.
"""

from __future__ import annotations

import json
import shutil

from tinyforge.deploy.context import BuildContext
from tinyforge.deploy.sources import (
    impulse_summary,
    render,
    template,
    verified_values,
    write,
    write_sources,
)
from tinyforge.deploy.targets import require
from tinyforge.deploy.verification import build_firmware
from tinyforge.errors import InvalidArgument


def build(ctx: BuildContext) -> None:
    """Fill ``ctx.stage`` with the firmware images (see module docstring)."""
    if ctx.bundle.test_windows is None:
        raise InvalidArgument("cortex-m-firmware embeds the bundle's test windows: give "
                              "test_windows", field="test_windows")
    src = write_sources(ctx, ctx.stage / "source")
    fw = build_firmware(ctx, src)
    assert fw is not None
    require("arm-none-eabi-objcopy")
    out = ctx.stage
    shutil.copy(fw.elf, out / "firmware.elf")
    ctx.run(["arm-none-eabi-objcopy", "-O", "binary", fw.elf, out / "firmware.bin"])
    ctx.run(["arm-none-eabi-objcopy", "-O", "ihex", fw.elf, out / "firmware.hex"])
    fw_src = fw.elf.parent
    for name in ("tf_main.c", "tf_samples.c", "tf_samples.h"):
        shutil.copy(fw_src / name, out / "source" / name)
    for name in ("cortex_m_startup.c", "firmware.ld"):
        if (fw_src / name).exists():
            shutil.copy(fw_src / name, out / "source" / name)
    write(out / "verification.txt", fw.output)
    write(out / "build-info.json", json.dumps(
        {"target": ctx.target.name, "labels": list(ctx.bundle.labels),
         "windows": fw.indices, "metrics": ctx.metrics}, indent=2, sort_keys=True))
    write(out / "README.md", render(template("firmware/README.md"), **impulse_summary(ctx),
                                    **verified_values(ctx),
                                    QEMU_BOARD=(ctx.target.runner or "none").removeprefix(
                                        "qemu-")))
