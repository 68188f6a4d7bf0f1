"""Catalog of deployment targets: memory, clock, toolchain and the emulator that verifies them.

Each :class:`TargetSpec` names an ``arch`` (how code is compiled: ``cortex-m4f``,
``cortex-m7``, ``rv32imc``, ``rv32imac``, ``x86_64``, ``aarch64``, ``wasm32``) and, when it can
be run here, a ``runner`` (``qemu-mps2-an386``, ``qemu-mps2-an500``, ``qemu-riscv32-virt``,
``native``, ``node``). Targets without a runner are built but not verified; the build result
says so (``verified = "build-only"``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from tinyforge.errors import FailedPrecondition, InvalidArgument

KB = 1024
MB = 1024 * 1024


@dataclass(frozen=True)
class TargetSpec:
    """One device class: ``ram_bytes`` / ``flash_bytes`` available to the application."""

    name: str
    description: str
    arch: str
    clock_mhz: float
    ram_bytes: int
    flash_bytes: int
    toolchain: str          # the compiler program
    emulator: str | None    # the program that runs the verification build (None: build-only)
    runner: str | None      # how the verification build runs (see module docstring)

    @property
    def is_mcu(self) -> bool:
        """Bare-metal target (static RAM/flash limits apply, firmware formats build for it)."""
        return self.arch not in ("x86_64", "aarch64", "wasm32")


TARGETS: dict[str, TargetSpec] = {t.name: t for t in (
    TargetSpec("cortex-m4f-80mhz", "Generic Cortex-M4F, 80 MHz (reference: QEMU mps2-an386)",
               "cortex-m4f", 80, 256 * KB, 1 * MB, "arm-none-eabi-gcc", "qemu-system-arm",
               "qemu-mps2-an386"),
    TargetSpec("cortex-m7", "Generic Cortex-M7, 216 MHz (verified on QEMU mps2-an500)",
               "cortex-m7", 216, 512 * KB, 2 * MB, "arm-none-eabi-gcc", "qemu-system-arm",
               "qemu-mps2-an500"),
    TargetSpec("nrf52840", "Nordic nRF52840 (Cortex-M4F, 64 MHz; same core and memory map "
               "as the mps2-an386 reference)", "cortex-m4f", 64, 256 * KB, 1 * MB,
               "arm-none-eabi-gcc", "qemu-system-arm", "qemu-mps2-an386"),
    TargetSpec("esp32-c3", "Espressif ESP32-C3 (RV32IMC, 160 MHz; verified on QEMU riscv32 "
               "virt)", "rv32imc", 160, 400 * KB, 4 * MB, "riscv64-unknown-elf-gcc",
               "qemu-system-riscv32", "qemu-riscv32-virt"),
    TargetSpec("esp32-c6", "Espressif ESP32-C6 (RV32IMAC, 160 MHz; verified on QEMU riscv32 "
               "virt)", "rv32imac", 160, 512 * KB, 4 * MB, "riscv64-unknown-elf-gcc",
               "qemu-system-riscv32", "qemu-riscv32-virt"),
    TargetSpec("linux-x86_64", "Linux on x86_64 (native executable)", "x86_64", 0, 0, 0,
               "gcc", None, "native"),
    TargetSpec("linux-aarch64", "Linux on aarch64 (cross-compiled; build-only here)",
               "aarch64", 0, 0, 0, "aarch64-linux-gnu-gcc", None, None),
    TargetSpec("wasm", "WebAssembly (wasm32-wasi; browsers and node)", "wasm32", 0, 0, 0,
               "clang", "node", "node"),
)}

#: the Debian package that provides each program (installed by `make install`)
DEBIAN_PACKAGES: dict[str, str] = {
    "gcc": "gcc",
    "size": "binutils",
    "make": "make",
    "cmake": "cmake",
    "arm-none-eabi-gcc": "gcc-arm-none-eabi (+ libnewlib-arm-none-eabi)",
    "arm-none-eabi-size": "binutils-arm-none-eabi",
    "arm-none-eabi-nm": "binutils-arm-none-eabi",
    "arm-none-eabi-objcopy": "binutils-arm-none-eabi",
    "qemu-system-arm": "qemu-system-arm",
    "riscv64-unknown-elf-gcc": "gcc-riscv64-unknown-elf (+ picolibc-riscv64-unknown-elf)",
    "riscv64-unknown-elf-size": "binutils-riscv64-unknown-elf",
    "riscv64-unknown-elf-objcopy": "binutils-riscv64-unknown-elf",
    "qemu-system-riscv32": "qemu-system-misc",
    "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu",
    "clang": "clang (+ lld, wasi-libc, libclang-rt-dev-wasm32)",
    "node": "nodejs",
}


def get_target(name: str) -> TargetSpec:
    """The target called ``name``; InvalidArgument listing the valid targets otherwise."""
    try:
        return TARGETS[name]
    except (KeyError, TypeError):
        raise InvalidArgument(f"unknown target {name!r}; valid targets: {', '.join(TARGETS)}",
                              field="target") from None


#: programs `make install` does not install (optional targets)
OPTIONAL = ("aarch64-linux-gnu-gcc",)


def require(*programs: str) -> None:
    """Raise FailedPrecondition naming the Debian package of the first missing program."""
    for prog in programs:
        if shutil.which(prog) is None:
            pkg = DEBIAN_PACKAGES.get(prog, prog)
            how = ("optional, not part of `make install`: apt-get install it" if prog in OPTIONAL
                   else "`make install` installs it")
            raise FailedPrecondition(f"toolchain program {prog!r} is not installed: it comes "
                                     f"with the Debian package {pkg} ({how})",
                                     field="toolchain")
