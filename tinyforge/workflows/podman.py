"""Run workflow steps whose image is a container (custom blocks) under rootful podman.

Podman on this kind of machine needs two settings that are not its defaults (ENVIRONMENT.md):
the ``runc`` runtime (crun fails on hybrid cgroups) and explicit ulimits. They live in a
``containers.conf`` that :func:`containers_conf` writes into TinyForge's cache directory and every
podman call here points ``CONTAINERS_CONF`` at, so the host's own podman configuration is left
alone.

:class:`PodmanExecutor` implements :class:`~tinyforge.workflows.executors.StepExecutor`: the step's
argv is passed to the image's ``ENTRYPOINT`` (Argo's behaviour for a template that sets only
``args``, which is how block steps are written), with ``--network=none`` unless told otherwise,
memory/CPU/PID limits, read-only data volumes and the step's work directory mounted at the same
path so output-parameter files land where the runner reads them. The container is always
removed afterwards, also on timeout and cancellation (killing the ``podman run`` client alone
would leave the container running under conmon).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tinyforge.workflows.executors import (
    CancelFn,
    LogFn,
    StepCancelled,
    StepProcess,
    StepTimedOut,
    run_process,
)

#: The containers.conf TinyForge runs podman with (written by :func:`containers_conf`).
CONTAINERS_CONF_TEXT = """\
# Written by TinyForge (tinyforge/workflows/podman.py); regenerated when it differs.
# runc: crun cannot set rlimits under hybrid cgroups here. Explicit ulimits: the defaults
# inherited from the host are rejected by the runtime.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


def cache_dir() -> Path:
    """TinyForge's cache directory (``TINYFORGE_CACHE_DIR``, default ``~/.cache/tinyforge``)."""
    raw = os.environ.get("TINYFORGE_CACHE_DIR") or str(Path.home() / ".cache" / "tinyforge")
    path = Path(raw).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def containers_conf() -> Path:
    """Path of TinyForge's containers.conf, (re)written when missing or different. Idempotent."""
    path = cache_dir() / "containers.conf"
    if not path.is_file() or path.read_text() != CONTAINERS_CONF_TEXT:
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(CONTAINERS_CONF_TEXT)
        tmp.replace(path)
    return path


def podman_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a podman process: ``base`` (default: ours) plus ``CONTAINERS_CONF``."""
    env = dict(os.environ if base is None else base)
    env["CONTAINERS_CONF"] = str(containers_conf())
    return env


def podman(
    *args: str,
    check: bool = True,
    timeout: float | None = 600,
    input: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``podman ARGS`` with TinyForge's configuration; output captured.

    With ``check`` a non-zero exit raises :class:`PodmanError` carrying podman's stderr.
    """
    exe = shutil.which("podman")
    if exe is None:
        raise PodmanError("podman is not installed (scripts/install-system-deps.sh installs it)")
    proc = subprocess.run(
        [exe, *args],
        env=podman_env(),
        input=input,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip() or proc.stdout.decode(errors="replace")
        raise PodmanError(f"podman {args[0]} failed (exit {proc.returncode}): {err.strip()}")
    return proc


class PodmanError(RuntimeError):
    """A podman command (other than the step's own container) failed."""


class ImageNotFound(FileNotFoundError):
    """The step's image is neither in local storage nor pullable.

    A ``FileNotFoundError`` so the local runner reports it as "cannot start step".
    """


def podman_unavailable_reason() -> str | None:
    """None when rootful podman with runc can run a container here, else why not (one line)."""
    if shutil.which("podman") is None:
        return "podman is not installed (scripts/install-system-deps.sh installs it)"
    if shutil.which("runc") is None:
        return "runc is not installed (scripts/install-system-deps.sh installs it)"
    try:
        proc = podman("info", "--format", "{{.Host.OCIRuntime.Name}}", check=False, timeout=60)
    except (subprocess.TimeoutExpired, OSError) as exc:
        return f"podman info did not answer: {exc}"
    if proc.returncode != 0:
        return "podman info failed: " + proc.stderr.decode(errors="replace").strip()[-500:]
    runtime = proc.stdout.decode().strip()
    if runtime != "runc":
        return f"podman uses runtime {runtime!r} despite CONTAINERS_CONF; runc is required here"
    return None


def image_exists(ref: str) -> bool:
    """True when ``ref`` is in podman's local image storage."""
    return podman("image", "exists", ref, check=False, timeout=60).returncode == 0


def registry_host(ref: str) -> str | None:
    """The registry part of an image reference (``127.0.0.1:5000/x:1`` -> ``127.0.0.1:5000``)."""
    first, sep, _rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def is_loopback_registry(host: str) -> bool:
    """True for a ``localhost``/``127.x``/``[::1]`` registry: the only kind TLS checks skip."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def pull_image(ref: str, *, log: LogFn | None = None) -> None:
    """Pull ``ref`` from its registry (TLS verification off only for a loopback registry).

    Raises :class:`ImageNotFound` with podman's message when the pull fails.
    """
    host = registry_host(ref)
    if host is None or host == "localhost":
        raise ImageNotFound(
            f"image {ref!r} is not in local storage and names no registry to pull it from "
            "(build it with `tinyforge blocks build`, or use REGISTRY/NAME:TAG)"
        )
    if log:
        log(f"pulling {ref}")
    tls = "false" if is_loopback_registry(host) else "true"
    proc = podman("pull", f"--tls-verify={tls}", ref, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise ImageNotFound(
            f"image {ref!r} is not in local storage and pulling it failed: "
            + (err[-1] if err else f"exit {proc.returncode}")
        )


@dataclass(frozen=True)
class Volume:
    """A host path mounted into the container (read-only unless ``read_only`` is False)."""

    host: Path
    container: str
    read_only: bool = True

    def flag(self) -> str:
        """The ``-v`` argument for podman."""
        return f"{Path(self.host).resolve()}:{self.container}:{'ro' if self.read_only else 'rw'}"


@dataclass
class ContainerProcess(StepProcess):
    """A finished container: :class:`StepProcess` plus whether the kernel OOM-killed it."""

    oom_killed: bool = False
    memory_mb: int | None = None


class PodmanExecutor:
    """Runs a step's image under podman with isolation and limits.

    ``memory_mb`` (MiB, swap disabled so the limit is real), ``cpus`` (fractional cores),
    ``pids_limit``; ``network`` is a podman network mode, ``"none"`` by default. ``volumes`` are
    mounted on every run; the runner's ``mounts`` (container path -> host path) are mounted
    read-write, and the step's work directory is mounted at its own path. ``pull``: ``"missing"``
    pulls an image that is not local from its registry, ``"never"`` fails instead.
    """

    def __init__(
        self,
        *,
        network: str = "none",
        memory_mb: int | None = None,
        cpus: float | None = None,
        pids_limit: int | None = None,
        volumes: Sequence[Volume] = (),
        pull: str = "missing",
        extra_args: Sequence[str] = (),
        mount_workdir: bool = True,
    ) -> None:
        if pull not in ("missing", "never"):
            raise ValueError("pull must be 'missing' or 'never'")
        self.network = network
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.pids_limit = pids_limit
        self.volumes = list(volumes)
        self.pull = pull
        self.extra_args = list(extra_args)
        self.mount_workdir = mount_workdir

    def run_argv(
        self,
        name: str,
        command: Sequence[str],
        *,
        image: str,
        env: dict[str, str],
        workdir: Path,
        mounts: dict[str, Path],
    ) -> list[str]:
        """The full ``podman run`` command line for one step (exposed for tests and logs)."""
        argv = [
            shutil.which("podman") or "podman",
            "run",
            "--name",
            name,
            "--network",
            self.network,
            "--pull",
            "never",  # pulling is done (and reported) before the run
            "--stop-timeout",
            "2",
        ]
        if Path("/sys/fs/cgroup").is_dir() and self.memory_mb is not None:
            # A parent cgroup of our own outlives the container, so its peak memory can be read
            # after the exit to tell an OOM kill apart (see _peak_at_limit).
            argv += ["--cgroup-parent", _cgroup_parent(name)]
        if self.memory_mb is not None:
            # --memory-swap equal to --memory: no swap, so exceeding the limit OOM-kills.
            argv += ["--memory", f"{self.memory_mb}m", "--memory-swap", f"{self.memory_mb}m"]
        if self.cpus is not None:
            argv += ["--cpus", f"{self.cpus:g}"]
        if self.pids_limit is not None:
            argv += ["--pids-limit", str(self.pids_limit)]
        for vol in self.volumes:
            argv += ["-v", vol.flag()]
        for ctr, host in mounts.items():
            argv += ["-v", Volume(Path(host), ctr, read_only=False).flag()]
        if self.mount_workdir:
            wd = str(Path(workdir).resolve())
            argv += ["-v", f"{wd}:{wd}:rw"]
        for key, value in env.items():
            argv += ["-e", f"{key}={value}"]
        argv += self.extra_args
        argv.append(image)
        argv += list(command)
        return argv

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
    ) -> ContainerProcess:
        """Run ``image`` with ``command`` as its arguments; see :class:`StepExecutor`.

        Raises :class:`ImageNotFound` when the image is neither local nor pullable, and
        StepTimedOut / StepCancelled (after removing the container) from ``run_process``.
        """
        if not image:
            raise ImageNotFound("the step names no image")
        if not image_exists(image):
            if self.pull == "never":
                raise ImageNotFound(f"image {image!r} is not in local storage (pull disabled)")
            pull_image(image, log=log)
        name = f"tinyforge-{uuid.uuid4().hex[:12]}"
        argv = self.run_argv(name, command, image=image, env=env, workdir=workdir, mounts=mounts)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        stop: list[str] = []  # why the container was stopped: "cancel" | "timeout"

        def stop_requested() -> bool:
            # Kill the container itself first: signalling only the `podman run` client leaves
            # PID 1 of the container (which ignores SIGTERM) running until podman gives up.
            if not stop:
                if cancelled():
                    stop.append("cancel")
                elif deadline is not None and time.monotonic() > deadline:
                    stop.append("timeout")
                if stop:
                    with contextlib.suppress(PodmanError, subprocess.TimeoutExpired, OSError):
                        podman("kill", name, check=False, timeout=60)
            return bool(stop)

        try:
            try:
                proc = run_process(
                    argv,
                    env=podman_env(),
                    cwd=workdir,
                    timeout_s=None,
                    log=log,
                    cancelled=stop_requested,
                )
            except StepCancelled:
                if stop and stop[0] == "timeout":
                    raise StepTimedOut(
                        f"step ran past its deadline of {timeout_s:g} s and was stopped"
                    ) from None
                raise
            exit_code = proc.exit_code
            state = podman(
                "inspect",
                "--format",
                "{{.State.OOMKilled}} {{.State.ExitCode}}",
                name,
                check=False,
                timeout=60,
            )
            oom = False
            if state.returncode == 0:
                fields = state.stdout.decode().split()
                oom = bool(fields) and fields[0] == "true"
                if len(fields) > 1 and fields[1].lstrip("-").isdigit():
                    exit_code = int(fields[1])
            # podman 4.3 with runc on cgroup v1 does not report OOM kills; the parent cgroup's
            # peak usage at the limit together with a SIGKILL exit does.
            if not oom and exit_code == 137 and self.memory_mb is not None:
                oom = _peak_at_limit(name, self.memory_mb)
            tail = list(proc.tail)
            if oom:
                line = f"container was OOM-killed: memory limit {self.memory_mb} MiB exceeded"
                log(line)
                tail.append(line)
            return ContainerProcess(
                exit_code=exit_code,
                stdout=proc.stdout,
                tail=tail,
                oom_killed=oom,
                memory_mb=self.memory_mb,
            )
        finally:
            # Also reached on timeout/cancel: the container must not outlive the step.
            with contextlib.suppress(PodmanError, subprocess.TimeoutExpired, OSError):
                podman("rm", "--force", "--time", "0", name, check=False, timeout=120)
            _remove_parent_cgroup(name)


_CGROUP_ROOT = Path("/sys/fs/cgroup")
_CGROUP_PARENT = "tinyforge"


def _cgroup_parent(name: str) -> str:
    """The cgroup (under every controller) a step's container is created in."""
    return f"/{_CGROUP_PARENT}/{name}"


def _peak_at_limit(name: str, memory_mb: int) -> bool:
    """True when the step's cgroup peaked at (>= 98 % of) its memory limit."""
    limit = memory_mb * 1024 * 1024
    v1 = _CGROUP_ROOT / "memory" / _CGROUP_PARENT / name / "memory.max_usage_in_bytes"
    with contextlib.suppress(OSError, ValueError):
        return int(v1.read_text()) >= 0.98 * limit
    v2 = _CGROUP_ROOT / _CGROUP_PARENT / name / "memory.events"
    with contextlib.suppress(OSError, ValueError):
        for line in v2.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value) > 0
    return False


def _remove_parent_cgroup(name: str) -> None:
    """Remove the step's (now empty) parent cgroup, children first, from every hierarchy."""
    dirs = [*_CGROUP_ROOT.glob(f"*/{_CGROUP_PARENT}/{name}"), _CGROUP_ROOT / _CGROUP_PARENT / name]
    for top in dirs:
        with contextlib.suppress(OSError):
            inner = [p for p in top.rglob("*") if p.is_dir()]
            # Deepest first: a cgroup directory can only be removed once it has no children.
            for d in sorted(inner, key=lambda p: len(p.parts), reverse=True) + [top]:
                with contextlib.suppress(OSError):
                    d.rmdir()
