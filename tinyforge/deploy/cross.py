"""Compile, link, size and run C sources for a target architecture (used by every C format).

Flags follow the recipes verified in ENVIRONMENT.md and the model compiler's
(:mod:`tinyforge.compiler.toolchains`); ``-ffp-contract=off`` everywhere so that no compiler
fuses a multiply and an add the Python DSP does separately (that would change features in
their last bits). Emulated runs use QEMU with ``-icount shift=0`` (deterministic timing).
"""

from __future__ import annotations

from pathlib import Path

from tinyforge.compiler.toolchains import BOARD
from tinyforge.deploy.context import BuildContext
from tinyforge.deploy.sources import render, template, write
from tinyforge.deploy.targets import TargetSpec, require
from tinyforge.errors import FailedPrecondition

BASE_CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-ffp-contract=off",
               "-ffunction-sections", "-fdata-sections"]
ARCH_CFLAGS: dict[str, list[str]] = {
    "cortex-m4f": ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard",
                   "-DTF_TARGET_M4F"],
    "cortex-m7": ["-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard",
                  "-DTF_TARGET_M4F"],
    "rv32imc": ["-march=rv32imc_zicsr", "-mabi=ilp32", "--specs=picolibc.specs",
                "-DTF_TARGET_RV32"],
    "rv32imac": ["-march=rv32imac_zicsr", "-mabi=ilp32", "--specs=picolibc.specs",
                 "-DTF_TARGET_RV32"],
    "x86_64": [],
    "aarch64": [],
    "wasm32": ["--target=wasm32-wasi"],
}
#: instructions per timing tick of each runner (QEMU mps2 SysTick: 25 MHz vs 1 insn/ns)
TICK_INSTRUCTIONS = {"qemu-mps2-an386": 40, "qemu-mps2-an500": 40, "qemu-riscv32-virt": 1}
RV_FLASH, RV_RAM = 0x80000000, 0x80800000
STACK_BYTES = 0x8000

M4F_STARTUP = BOARD / "m4f_startup.c"


def compiler(target: TargetSpec) -> str:
    return target.toolchain


def size_tool(target: TargetSpec) -> str | None:
    if target.arch.startswith("cortex-m"):
        return "arm-none-eabi-size"
    if target.arch.startswith("rv32"):
        return "riscv64-unknown-elf-size"
    if target.arch == "x86_64":
        return "size"
    return None


def require_toolchain(target: TargetSpec, *, run: bool) -> None:
    """FailedPrecondition naming the Debian package when the target's tools are missing."""
    progs = [target.toolchain]
    st = size_tool(target)
    if st:
        progs.append(st)
    if run and target.emulator:
        progs.append(target.emulator)
    require(*progs)


def compile_objects(ctx: BuildContext, sources: list[Path], includes: list[Path], objdir: Path,
                    extra: list[str] | None = None, cflags: list[str] | None = None
                    ) -> list[Path]:
    """Compile ``sources`` for the context's target into ``objdir`` (one compiler process)."""
    objdir.mkdir(parents=True, exist_ok=True)
    stems = [s.stem for s in sources]
    if len(set(stems)) != len(stems):
        raise FailedPrecondition(f"two sources share a name: {sorted(stems)}", field="build")
    flags = cflags if cflags is not None else BASE_CFLAGS
    cmd = [compiler(ctx.target), *ARCH_CFLAGS[ctx.target.arch], *flags,
           *[f"-I{d}" for d in includes], *(extra or []), "-c", *[str(s) for s in sources]]
    ctx.run(cmd, cwd=objdir)
    return [objdir / f"{s}.o" for s in stems]


def link(ctx: BuildContext, objs: list[Path], out: Path, *, semihosting: bool,
         stack_bytes: int = STACK_BYTES, extra: list[str] | None = None) -> Path:
    """Link ``objs`` into ``out``: firmware (``semihosting``: printf to the host) or the
    footprint image (no C library start-up). Bare-metal links use the target's RAM/flash."""
    t = ctx.target
    cc = compiler(t)
    arch = ARCH_CFLAGS[t.arch]
    if t.arch.startswith("cortex-m"):
        ld = write(out.parent / f"{out.stem}.ld",
                   render(template("firmware/cortex_m.ld"), TARGET=t.name,
                          FLASH_BYTES=t.flash_bytes, RAM_BYTES=t.ram_bytes,
                          STACK_BYTES=stack_bytes))
        start_obj = out.parent / f"{out.stem}_startup.o"
        # the same start-up the compiler's verification builds use (one copy of it)
        start_src = write(out.parent / "cortex_m_startup.c", M4F_STARTUP.read_text())
        ctx.run([cc, *arch, *BASE_CFLAGS, *(["-DTF_SEMIHOSTING"] if semihosting else []),
                 "-c", start_src, "-o", start_obj])
        specs = ["--specs=rdimon.specs"] if semihosting else ["--specs=nano.specs",
                                                               "-nostartfiles"]
        cmd = [cc, *arch, *specs, f"-T{ld}", "-Wl,--gc-sections", *objs, start_obj,
               *(extra or []), "-lm", "-o", out]
    elif t.arch.startswith("rv32"):
        march = t.arch
        crt = ["--oslib=semihost", "--crt0=semihost"] if semihosting else ["--crt0=minimal"]
        cmd = [cc, f"-march={march}", "-mabi=ilp32", "--specs=picolibc.specs", *crt,
               f"-Wl,--defsym=__flash={RV_FLASH:#x}",
               f"-Wl,--defsym=__flash_size={t.flash_bytes:#x}",
               f"-Wl,--defsym=__ram={RV_RAM:#x}", f"-Wl,--defsym=__ram_size={t.ram_bytes:#x}",
               f"-Wl,--defsym=__stack_size={stack_bytes:#x}", "-Wl,--gc-sections", *objs,
               *(extra or []), "-lm", "-o", out]
    elif t.arch == "wasm32":
        cmd = [cc, *arch, "-Wl,--gc-sections", *objs, *(extra or []), "-lm", "-o", out]
    else:
        cmd = [cc, *arch, "-Wl,--gc-sections", *objs, *(extra or []), "-lm", "-o", out]
    ctx.run(cmd, cwd=out.parent)
    return out


def section_sizes(ctx: BuildContext, binary: Path) -> dict[str, int]:
    """text (with rodata), data and bss of an ELF."""
    tool = size_tool(ctx.target)
    if tool is None:
        return {"text": binary.stat().st_size, "data": 0, "bss": 0}
    line = ctx.run([tool, "-B", binary]).splitlines()[1].split()
    return {"text": int(line[0]), "data": int(line[1]), "bss": int(line[2])}


WASM_RUNNER = """
const { WASI } = require('node:wasi');
const fs = require('node:fs');
const wasi = new WASI({ version: 'preview1', args: process.argv.slice(2), env: {},
                        preopens: { '/': '/' } });
const mod = new WebAssembly.Module(fs.readFileSync(process.argv[2]));
const inst = new WebAssembly.Instance(mod, wasi.getImportObject());
process.exitCode = wasi.start(inst);
"""


def run_binary(ctx: BuildContext, binary: Path, args: list[str] | None = None) -> str:
    """Run ``binary`` on the target's runner (QEMU, natively, node) and return its stdout."""
    runner = ctx.target.runner
    if runner is None:
        raise FailedPrecondition(f"target {ctx.target.name} cannot be run here", field="target")
    if runner.startswith("qemu-mps2"):
        board = runner.removeprefix("qemu-")
        cmd = ["qemu-system-arm", "-M", board, "-display", "none", "-monitor", "none",
               "-serial", "none", "-chardev", "stdio,id=sh0", "-semihosting-config",
               "enable=on,target=native,chardev=sh0", "-icount", "shift=0", "-kernel", binary]
    elif runner == "qemu-riscv32-virt":
        cmd = ["qemu-system-riscv32", "-M", "virt", "-bios", "none", "-display", "none",
               "-monitor", "none", "-serial", "none", "-chardev", "stdio,id=sh0",
               "-semihosting-config", "enable=on,target=native,chardev=sh0", "-icount",
               "shift=0", "-kernel", binary]
    elif runner == "node":
        js = write(binary.parent / "run_wasi.js", WASM_RUNNER)
        cmd = ["node", js, binary, *(args or [])]
    else:
        cmd = [binary, *(args or [])]
    return ctx.run(cmd, cwd=binary.parent)
