"""Helpers shared by the deployment tests: unpack a built zip, run firmware under QEMU the
way a user would (independently of tinyforge.deploy's own runner), parse its output."""

from __future__ import annotations

import re
import subprocess
import zipfile
from pathlib import Path

QEMU = {
    "qemu-mps2-an386": ["qemu-system-arm", "-M", "mps2-an386"],
    "qemu-mps2-an500": ["qemu-system-arm", "-M", "mps2-an500"],
    "qemu-riscv32-virt": ["qemu-system-riscv32", "-M", "virt", "-bios", "none"],
}


def unpack(zip_path: Path, dest: Path) -> Path:
    """Extract ``zip_path`` into ``dest`` (keeping exec bits); return its one top folder."""
    with zipfile.ZipFile(zip_path) as zf:
        tops = {n.split("/")[0] for n in zf.namelist()}
        assert len(tops) == 1, tops
        for info in zf.infolist():
            out = dest / info.filename
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(zf.read(info))
            out.chmod((info.external_attr >> 16) or 0o644)
    return dest / tops.pop()


def run_firmware(elf: Path, runner: str) -> list[int]:
    """Predicted class per window printed by a firmware image run under QEMU."""
    cmd = [*QEMU[runner], "-display", "none", "-monitor", "none", "-serial", "none",
           "-chardev", "stdio,id=sh0", "-semihosting-config",
           "enable=on,target=native,chardev=sh0", "-kernel", str(elf)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True).stdout
    rows = re.findall(r"^tf: window (\d+) label -?\d+ pred (\d+)", out, re.M)
    assert [int(k) for k, _ in rows] == list(range(len(rows)))
    return [int(p) for _, p in rows]
