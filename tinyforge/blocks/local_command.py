"""Run a block as the plain process its ``info.localCommand`` declares (development mode).

No container engine is needed: the command runs in the block's directory with the contract
arguments appended. ``python``/``python3`` as the first word means this installation's
interpreter, so a block's Python entrypoint sees the same numpy/TensorFlow as the platform.
Only the time limit applies (a plain process has no cgroup); the network is not isolated.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tinyforge.workflows.executors import CancelFn, LogFn, StepProcess, run_process


def resolve_local_command(command: Sequence[str]) -> list[str]:
    """``command`` with a leading ``python``/``python3`` replaced by this interpreter."""
    argv = list(command)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv


class LocalCommandExecutor:
    """A :class:`~tinyforge.workflows.executors.StepExecutor` for blocks with a local command.

    The step's argv (the contract arguments) is appended to the block's local command, as it
    would be appended to the image's entrypoint; the image name is ignored.
    """

    def __init__(
        self,
        block_dir: Path,
        local_command: Sequence[str],
        *,
        path_map: Mapping[str, Path] | None = None,
    ) -> None:
        self.block_dir = Path(block_dir).resolve()
        self.local_command = list(local_command)
        # Container path -> host path, so a step written for the image (``/block/in/X.npy``)
        # runs unchanged as a local command.
        self.path_map = {k.rstrip("/"): Path(v).resolve() for k, v in (path_map or {}).items()}

    def map_arg(self, arg: str) -> str:
        """``arg`` with a leading container path of :attr:`path_map` replaced by its host path."""
        for ctr in sorted(self.path_map, key=len, reverse=True):
            if arg == ctr or arg.startswith(ctr + "/"):
                return str(self.path_map[ctr]) + arg[len(ctr) :]
        return arg

    def run(
        self,
        command: Sequence[str],
        *,
        image: str,
        env: dict[str, str],
        workdir: Path,
        mounts: dict[str, Path],
        timeout_s: float | None,
        log: LogFn,
        cancelled: CancelFn,
    ) -> StepProcess:
        """Run ``localCommand + command`` in the block directory; see StepExecutor."""
        argv = resolve_local_command(self.local_command) + [self.map_arg(a) for a in command]
        return run_process(
            argv,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            cwd=self.block_dir,
            timeout_s=timeout_s,
            log=log,
            cancelled=cancelled,
        )
