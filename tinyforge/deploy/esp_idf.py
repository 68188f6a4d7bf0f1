"""``esp-idf``: an ESP-IDF component (``idf_component_register`` CMakeLists,
``idf_component.yml``) and an example project for ESP32 / ESP32-C3 / ESP32-C6.

ESP-IDF itself is not installed here (it lives in the builder image), so the check is: the
component's sources, compiled with the RV32 toolchain and the component's flags, classify the
bundle's test windows under ``qemu-system-riscv32`` with predictions equal to the platform's;
the example's ``main.c`` is compiled against stand-ins for ``esp_timer``/FreeRTOS, linked with
the component and run there (its prediction must equal the platform's); and ``esptool
elf2image --chip esp32c3`` (``esp32c6``) must turn that ELF into a valid image.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from tinyforge.deploy import cross
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
from tinyforge.deploy.verification import build_firmware, compare_predictions
from tinyforge.errors import FailedPrecondition

#: what ESP-IDF passes to component sources (plus the component's own -ffp-contract=off)
IDF_CFLAGS = ["-std=gnu17", "-Os", "-Wall", "-ffunction-sections", "-fdata-sections",
              "-ffp-contract=off", "-Wno-unused-function"]
CHIP = {"esp32-c3": "esp32c3", "esp32-c6": "esp32c6"}


def build(ctx: BuildContext) -> None:
    """Fill ``ctx.stage`` with the component and the example project."""
    name = ctx.bundle.name
    root = ctx.stage
    comp = root / "components" / name
    src = write_sources(ctx, comp)
    summary = impulse_summary(ctx)
    write(comp / "CMakeLists.txt", render(template("esp_idf/component_CMakeLists.txt"),
                                          NAME=name))
    write(comp / "idf_component.yml", render(template("esp_idf/idf_component.yml"), **summary,
                                             LABELS_PLAIN=", ".join(ctx.bundle.labels)))
    ex = root / "example"
    write(ex / "CMakeLists.txt", render(template("esp_idf/example_CMakeLists.txt"), NAME=name))
    write(ex / "sdkconfig.defaults", template("esp_idf/sdkconfig.defaults"))
    write(ex / "main" / "CMakeLists.txt",
          render(template("esp_idf/example_main_CMakeLists.txt"), NAME=name))
    write(ex / "main" / "main.c", render(template("esp_idf/main.c"), NAME=name))
    write(ex / "main" / "sample.h", example_sample_header(ctx))
    fw = build_firmware(ctx, src, cflags=IDF_CFLAGS)
    chip = CHIP[ctx.target.name]
    if fw is not None:
        _run_example(ctx, fw.lib_objs, src.include_dirs, ex / "main", chip)
    write(root / "README.md", render(template("esp_idf/README.md"), **summary,
                                     **verified_values(ctx), ESP_CHIP=f"--chip {chip}"))


def _run_example(ctx: BuildContext, lib_objs: list[Path], includes: list[Path], main_dir: Path,
                 chip: str) -> None:
    work = ctx.work / "idf-example"
    shim = work / "shim"
    write(shim / "esp_timer.h", template("esp_idf_shim/esp_timer.h"))
    write(shim / "freertos" / "FreeRTOS.h", template("esp_idf_shim/FreeRTOS.h"))
    write(shim / "freertos" / "task.h", template("esp_idf_shim/task.h"))
    shim_main = write(work / "shim_main.c", template("esp_idf_shim/shim_main.c"))
    objs = cross.compile_objects(ctx, [main_dir / "main.c", shim_main],
                                 [*includes, main_dir, shim], work / "obj", cflags=IDF_CFLAGS,
                                 extra=["-DTF_EXAMPLE_ONCE"])
    elf = cross.link(ctx, [*lib_objs, *objs], work / "example.elf", semihosting=True)
    out = cross.run_binary(ctx, elf)
    m = re.search(r"^prediction: (.*)$", out, re.M)
    if not m or "app_main: done" not in out or m.group(1).strip() not in ctx.bundle.labels:
        raise FailedPrecondition(f"the ESP-IDF example printed no prediction: {out[-500:]}",
                                 field="verification")
    saved = dict(ctx.metrics)
    compare_predictions(ctx, [0], [ctx.bundle.labels.index(m.group(1).strip())],
                        "the ESP-IDF example")
    ctx.metrics.clear()
    ctx.metrics.update(saved)
    image = work / "example.bin"
    ctx.run([sys.executable, "-m", "esptool", "--chip", chip, "elf2image", "--output", image,
             elf])
    info = ctx.run([sys.executable, "-m", "esptool", "image-info", image])
    if "(valid)" not in info:
        raise FailedPrecondition(f"esptool image-info does not validate the image: {info[-500:]}",
                                 field="verification")
    ctx.metrics["example_check"] = (f"example run on the emulator: prediction equals the "
                                    f"platform's; esptool elf2image --chip {chip}: valid image")
    shutil.rmtree(work, ignore_errors=True)
