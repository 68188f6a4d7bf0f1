"""Build and run recipes per target (host gcc, Cortex-M4F under QEMU, RV32IMC under QEMU,
wasm32 under node). Commands follow the recipes verified in ENVIRONMENT.md."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tinyforge.errors import FailedPrecondition, InvalidArgument

TARGETS = ("host", "cortex-m4f", "rv32imc", "wasm")
BOARD = Path(__file__).resolve().parent / "targets"
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off",
          "-ffunction-sections", "-fdata-sections"]
M4F = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]
RV_LINK = ["-march=rv32imc", "-mabi=ilp32", "--specs=picolibc.specs",
           "-Wl,--defsym=__flash=0x80000000", "-Wl,--defsym=__flash_size=0x200000",
           "-Wl,--defsym=__ram=0x80200000", "-Wl,--defsym=__ram_size=0x200000",
           "-Wl,--defsym=__stack_size=0x10000", "-Wl,--gc-sections"]
WASM_RUNNER = """
const { WASI } = require('node:wasi');
const fs = require('node:fs');
const wasi = new WASI({ version: 'preview1', args: [], env: {} });
const mod = new WebAssembly.Module(fs.readFileSync(process.argv[2]));
const inst = new WebAssembly.Instance(mod, wasi.getImportObject());
process.exitCode = wasi.start(inst);
"""


@dataclass
class Tool:
    cc: str
    size: str | None
    runner: list[str] | None


def tool_for(target: str) -> Tool:
    """Toolchain of ``target``; raises FailedPrecondition naming the missing program."""
    if target not in TARGETS:
        raise InvalidArgument(f"target {target!r} is not one of {', '.join(TARGETS)}",
                              field="target")
    progs = {
        "host": ("gcc", "size", None),
        "cortex-m4f": ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm"),
        "rv32imc": ("riscv64-unknown-elf-gcc", "riscv64-unknown-elf-size",
                    "qemu-system-riscv32"),
        "wasm": ("clang", None, "node"),
    }[target]
    for p in progs:
        if p and shutil.which(p) is None:
            raise FailedPrecondition(f"target {target} needs {p!r} on PATH "
                                     "(installed by `make install`)")
    runner = {
        "host": None,
        "cortex-m4f": ["qemu-system-arm", "-M", "mps2-an386", "-display", "none", "-monitor",
                       "none", "-serial", "none", "-chardev", "stdio,id=sh0",
                       "-semihosting-config", "enable=on,target=native,chardev=sh0",
                       "-icount", "shift=0", "-kernel"],
        "rv32imc": ["qemu-system-riscv32", "-M", "virt", "-bios", "none", "-display", "none",
                    "-monitor", "none", "-serial", "none", "-chardev", "stdio,id=sh0",
                    "-semihosting-config", "enable=on,target=native,chardev=sh0",
                    "-icount", "shift=0", "-kernel"],
        "wasm": ["node"],
    }[target]
    return Tool(cc=progs[0], size=progs[1], runner=runner)


def _run(cmd: list[str], cwd: Path, timeout: float = 600) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise FailedPrecondition(
            f"command failed ({proc.returncode}): {' '.join(cmd[:6])} ...\n"
            f"{proc.stderr[-4000:]}{proc.stdout[-2000:]}")
    return proc.stdout


def model_sources(src_dir: Path) -> list[str]:
    return sorted(str(p) for p in src_dir.glob("*.c"))


def build(target: str, src_dir: Path, extra: list[str], out: Path, *, app: str,
          defines: list[str] | None = None) -> Path:
    """Compile the generated model in ``src_dir`` + ``extra`` sources into ``out``.

    ``app`` is "harness" (runs stimuli, prints outputs) or "footprint" (size only).
    """
    tool = tool_for(target)
    inc = [f"-I{src_dir}"]
    defs = list(defines or [])
    srcs = model_sources(src_dir) + extra
    if target == "host":
        cmd = [tool.cc, *CFLAGS, *inc, *defs, *srcs, "-Wl,--gc-sections", "-o", str(out)]
    elif target == "cortex-m4f":
        specs = ["--specs=rdimon.specs", "-DTF_SEMIHOSTING"] if app == "harness" else \
                ["--specs=nano.specs", "-nostartfiles"]
        cmd = [tool.cc, *M4F, *CFLAGS, *inc, *defs, "-DTF_TARGET_M4F", *specs,
               f"-T{BOARD / 'm4f_board.ld'}", "-Wl,--gc-sections", *srcs,
               str(BOARD / "m4f_startup.c"), "-o", str(out)]
    elif target == "rv32imc":
        objs = []
        for s in srcs:
            o = out.parent / (Path(s).stem + ".rv.o")
            _run([tool.cc, "-march=rv32imc_zicsr", "-mabi=ilp32", "--specs=picolibc.specs",
                  *CFLAGS, *inc, *defs, "-DTF_TARGET_RV32", "-c", s, "-o", str(o)], out.parent)
            objs.append(str(o))
        crt = ["--oslib=semihost", "--crt0=semihost"] if app == "harness" else \
              ["--crt0=minimal"]
        cmd = [tool.cc, *RV_LINK, *crt, *objs, "-o", str(out)]
    else:  # wasm
        cmd = [tool.cc, "--target=wasm32-wasi", *CFLAGS, *inc, *defs, *srcs,
               "-Wl,--gc-sections", "-o", str(out)]
    _run(cmd, out.parent)
    return out


def run(target: str, binary: Path, timeout: float = 600) -> str:
    """Run a harness binary on the target (natively or emulated) and return its stdout."""
    tool = tool_for(target)
    if target == "host":
        return _run([str(binary)], binary.parent, timeout)
    if target == "wasm":
        js = binary.parent / "run_wasm.js"
        js.write_text(WASM_RUNNER)
        return _run(["node", str(js), str(binary)], binary.parent, timeout)
    return _run([*tool.runner, str(binary)], binary.parent, timeout)


def section_sizes(target: str, binary: Path) -> dict[str, int]:
    """text (incl. rodata), data and bss of an ELF, from the target's ``size``."""
    tool = tool_for(target)
    if tool.size is None:
        return {"text": binary.stat().st_size, "data": 0, "bss": 0}
    line = _run([tool.size, "-B", str(binary)], binary.parent).splitlines()[1].split()
    return {"text": int(line[0]), "data": int(line[1]), "bss": int(line[2])}
