"""The state one build carries: bundle, target, options, directories, log and deadline.

Every external program runs through :meth:`BuildContext.run`, which logs the command and its
output, enforces the build's time limit (DeadlineExceeded) and turns a failure into
FailedPrecondition with the tail of the program's output.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tinyforge.deploy.bundle import DeployBundle
from tinyforge.deploy.targets import TargetSpec
from tinyforge.errors import DeadlineExceeded, FailedPrecondition


@dataclass
class BuildContext:
    """``stage``: what goes into the zip (its top folder); ``work``: scratch for objects."""

    fmt: str
    bundle: DeployBundle
    target: TargetSpec
    options: dict[str, str]
    stage: Path
    work: Path
    log: Callable[[str], None]
    timeout_s: float
    started: float = field(default_factory=time.monotonic)
    metrics: dict[str, float | int | str] = field(default_factory=dict)
    zip_root: str | None = None  # the zip's top folder (default: the staging folder's name)

    def remaining(self) -> float:
        """Seconds left before the build's deadline (raises DeadlineExceeded at 0)."""
        left = self.timeout_s - (time.monotonic() - self.started)
        if left <= 0:
            raise DeadlineExceeded(f"build exceeded its time limit of {self.timeout_s:g} s",
                                   field="timeout_s")
        return left

    def check_deadline(self) -> None:
        self.remaining()

    def run(self, cmd: list[str], cwd: Path | None = None, *, check: bool = True,
            stdin: bytes | None = None, env: dict[str, str] | None = None) -> str:
        """Run ``cmd`` (logged), return its stdout; FailedPrecondition on a non-zero exit."""
        left = self.remaining()
        self.log("$ " + " ".join(str(c) for c in cmd))
        try:
            proc = subprocess.run([str(c) for c in cmd], cwd=cwd or self.work, input=stdin,
                                  capture_output=True, timeout=left,
                                  env={**os.environ, **env} if env else None)
        except subprocess.TimeoutExpired:
            raise DeadlineExceeded(f"build exceeded its time limit of {self.timeout_s:g} s "
                                   f"while running {Path(str(cmd[0])).name}",
                                   field="timeout_s") from None
        out = proc.stdout.decode(errors="replace")
        err = proc.stderr.decode(errors="replace")
        for text in (out, err):
            if text.strip():
                self.log(text.rstrip()[-20000:])
        if check and proc.returncode != 0:
            raise FailedPrecondition(
                f"{Path(str(cmd[0])).name} failed with exit code {proc.returncode}: "
                f"{(err or out).strip()[-1500:]}", field="build")
        return out

    def option(self, key: str, default: str) -> str:
        return str(self.options.get(key, default))
