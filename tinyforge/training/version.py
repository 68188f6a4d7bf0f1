"""The code version recorded with every model: package version + ``git describe``."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import tinyforge


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``"0.1.0"`` or ``"0.1.0+<git describe --always --dirty>"`` when run from a git checkout.

    Computed once per process; a missing git binary or a non-git install just gives the
    package version.
    """
    root = Path(tinyforge.__file__).resolve().parents[1]
    version = tinyforge.__version__
    if not (root / ".git").exists():
        return version
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty",
                              "--tags"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return version
    desc = out.stdout.strip()
    return f"{version}+{desc}" if out.returncode == 0 and desc else version
