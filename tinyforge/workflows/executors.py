"""How the local runner executes one leaf step (a container or script template).

Embedded mode has no cluster: a step whose image is the TinyForge platform image runs as a local
process with the same command line its container would get; a custom block image runs under
podman when a container executor is configured. Executors stream output line by line, enforce
the step's deadline and stop the process group on cancellation.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

LogFn = Callable[[str], None]
CancelFn = Callable[[], bool]


class StepCancelled(Exception):
    """The run was cancelled while the step was running; its process was stopped."""


class StepTimedOut(Exception):
    """The step ran past its ``activeDeadlineSeconds``; its process was stopped."""


@dataclass
class StepProcess:
    """What a finished step process left: exit code, full stdout text and the last log lines."""

    exit_code: int
    stdout: str
    tail: list[str]


class StepExecutor(Protocol):
    """Runs one step's command to completion."""

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
    ) -> StepProcess: ...


def tinyforge_command() -> list[str]:
    """The argv prefix that runs the ``tinyforge`` CLI of this very installation."""
    return [sys.executable, "-m", "tinyforge.cli.main"]


def run_process(
    argv: Sequence[str],
    *,
    env: dict[str, str],
    cwd: Path,
    timeout_s: float | None,
    log: LogFn,
    cancelled: CancelFn,
    tail_lines: int = 50,
) -> StepProcess:
    """Run ``argv``, streaming merged stdout/stderr lines to ``log``.

    Raises StepTimedOut / StepCancelled after killing the whole process group.
    """
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # own process group, so a kill reaches grandchildren too
        text=True,
        errors="replace",
    )
    with _live_lock:
        _live.add(proc)
    try:
        return _follow(proc, timeout_s=timeout_s, log=log, cancelled=cancelled,
                       tail_lines=tail_lines)
    except BaseException:  # e.g. SystemExit from stop_children_on_sigterm: no orphan left
        if proc.poll() is None:
            _kill_group(proc)
        raise
    finally:
        with _live_lock:
            _live.discard(proc)


def _follow(
    proc: subprocess.Popen[str],
    *,
    timeout_s: float | None,
    log: LogFn,
    cancelled: CancelFn,
    tail_lines: int,
) -> StepProcess:
    tail: deque[str] = deque(maxlen=tail_lines)
    chunks: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            chunks.append(line)
            line = line.rstrip("\n")
            tail.append(line)
            log(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    stop_reason: type[Exception] | None = None
    while True:
        try:
            proc.wait(timeout=0.05)
            break
        except subprocess.TimeoutExpired:
            pass
        if cancelled():
            stop_reason = StepCancelled
        elif deadline is not None and time.monotonic() > deadline:
            stop_reason = StepTimedOut
        if stop_reason:
            _kill_group(proc)
            break
    reader.join(timeout=5)
    if stop_reason is StepTimedOut:
        raise StepTimedOut(f"step ran past its deadline of {timeout_s:g} s and was stopped")
    if stop_reason is StepCancelled:
        raise StepCancelled("run cancelled")
    return StepProcess(exit_code=proc.returncode, stdout="".join(chunks), tail=list(tail))


#: Processes started by run_process that are still running (see stop_children_on_sigterm).
_live: set[subprocess.Popen[str]] = set()
_live_lock = threading.Lock()


def stop_children_on_sigterm() -> None:
    """Make SIGTERM stop this process's run_process children (their whole process groups)
    before it exits with status 143.

    Each child runs in its own session, so a kill of this process's group (a cancelled step)
    would not reach it; a step process calls this so stopping the step stops what it started,
    whichever thread started it. Only callable from the main thread.
    """

    def handler(signum: int, _frame: object) -> None:
        with _live_lock:
            children = list(_live)
        for proc in children:
            if proc.poll() is None:
                _kill_group(proc)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class LocalProcessExecutor:
    """Runs a step as a local process: ``tinyforge …`` maps to this installation's CLI."""

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
        argv = list(command)
        if argv and argv[0] == "tinyforge":
            argv = tinyforge_command() + argv[1:]
        full_env = {**os.environ, **env}
        return run_process(
            argv, env=full_env, cwd=workdir, timeout_s=timeout_s, log=log, cancelled=cancelled
        )
