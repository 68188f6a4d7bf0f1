"""Run one custom block on data, as the platform does: :func:`run_block`.

The block is a directory (``parameters.json`` + Dockerfile/entrypoint) or an image reference
(whose ``parameters.json`` travels in an image label, see ``tinyforge.blocks.images``). It runs
either as a podman container (``--network=none``, memory/CPU/PID limits, the input mounted
read-only at ``/block/in``, a fresh output directory at ``/block/out``) or as its declared local
command. Arguments follow the per-type contract in ``tinyforge.blocks.contract``.

The block writes into a temporary directory beside ``out_dir``; only when it exits 0 and its
output passes the contract's checks is that directory renamed to ``out_dir``. On any failure
nothing appears at ``out_dir`` and the error carries the block's last log lines.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyforge.blocks.contract import IN_MOUNT, OUT_MOUNT, block_args, check_input, check_output
from tinyforge.blocks.errors import (
    BlockCancelled,
    BlockFailed,
    BlockImageNotFound,
    BlockOutOfMemory,
    BlockTimedOut,
)
from tinyforge.blocks.limits import BlockLimits, limits_from_info
from tinyforge.blocks.local_command import LocalCommandExecutor
from tinyforge.blocks.manifest import BlockManifest, load_manifest
from tinyforge.errors import FailedPrecondition, InvalidArgument
from tinyforge.workflows.executors import StepCancelled, StepExecutor, StepProcess, StepTimedOut

ENGINES = ("auto", "podman", "local")


@dataclass(frozen=True)
class ResolvedBlock:
    """A block located: its manifest, and its directory and/or image reference."""

    manifest: BlockManifest
    directory: Path | None
    image: str | None


@dataclass
class BlockResult:
    """A successful block run. ``files`` are relative to ``out_dir``; duration in seconds."""

    name: str
    type: str
    engine: str  # "podman" | "local"
    image: str | None
    out_dir: Path
    files: list[str]
    duration_s: float
    limits: BlockLimits
    log_tail: list[str] = field(default_factory=list)


def resolve_block(block: str | Path) -> ResolvedBlock:
    """Find the block named by ``block``: an existing directory, else an image reference."""
    path = Path(block)
    if path.is_dir():
        from tinyforge.blocks.images import default_image_ref

        manifest = load_manifest(path)
        return ResolvedBlock(manifest, path.resolve(), default_image_ref(manifest))
    ref = str(block)
    if path.exists() or "/" not in ref and ":" not in ref:
        raise InvalidArgument(
            f"{ref!r} is neither a block directory (with parameters.json) nor an image "
            "reference such as 127.0.0.1:5000/tinyforge-blocks/name:latest",
            field="block",
        )
    from tinyforge.blocks.images import manifest_from_image
    from tinyforge.workflows.podman import ImageNotFound, image_exists, pull_image

    if not image_exists(ref):
        try:
            pull_image(ref)
        except ImageNotFound as exc:
            raise BlockImageNotFound(str(exc), field="block") from None
    return ResolvedBlock(manifest_from_image(ref), None, ref)


def _choose_engine(block: ResolvedBlock, engine: str) -> str:
    if engine not in ENGINES:
        raise InvalidArgument(
            f"engine {engine!r} is not one of {', '.join(ENGINES)}", field="engine"
        )
    local_ok = block.directory is not None and block.manifest.local_command is not None
    if engine == "local":
        if not local_ok:
            raise FailedPrecondition(
                f"block {block.manifest.name!r} declares no info.localCommand"
                + ("" if block.directory else " (and an image has no local directory)"),
                field="engine",
            )
        return "local"
    if engine == "podman":
        return "podman"
    # auto: the container when its image exists (what the platform runs), else the local command.
    from tinyforge.workflows.podman import image_exists, podman_unavailable_reason

    if block.directory is None:
        return "podman"
    if podman_unavailable_reason() is None and block.image and image_exists(block.image):
        return "podman"
    if local_ok:
        return "local"
    raise FailedPrecondition(
        f"block {block.manifest.name!r}: image {block.image} is not built and the block "
        "declares no info.localCommand; run `tinyforge blocks build DIR` first",
        field="engine",
    )


def executor_for_block(
    block: ResolvedBlock,
    *,
    volumes: Sequence[tuple[Path, str, bool]] = (),
    limits: BlockLimits | None = None,
    engine: str = "auto",
) -> StepExecutor:
    """The StepExecutor that runs ``block``'s image as a workflow step (for ``LocalRunner``).

    ``volumes`` are ``(host path, container path, read_only)``. With the podman engine they are
    mounted and the block's limits (``info.resources`` merged with ``limits``) applied; with the
    local engine the step's arguments have those container paths replaced by the host paths, so
    one workflow definition runs either way.
    """
    chosen = _choose_engine(block, engine)
    if chosen == "local":
        assert block.directory is not None and block.manifest.local_command is not None
        return LocalCommandExecutor(
            block.directory,
            block.manifest.local_command,
            path_map={ctr: Path(host) for host, ctr, _ro in volumes},
        )
    from tinyforge.workflows.podman import PodmanExecutor, Volume

    eff = limits_from_info(block.manifest.info).merged(limits).resolved()
    return PodmanExecutor(
        network="bridge" if eff.network else "none",
        memory_mb=eff.memory_mb,
        cpus=eff.cpus,
        pids_limit=eff.pids,
        volumes=[Volume(Path(h), c, ro) for h, c, ro in volumes],
    )


def run_block(
    block: str | Path | ResolvedBlock,
    in_path: Path,
    out_dir: Path,
    *,
    params: dict[str, Any] | None = None,
    limits: BlockLimits | None = None,
    engine: str = "auto",
    epochs: int | None = None,
    learning_rate: float | None = None,
    log: Callable[[str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> BlockResult:
    """Run ``block`` on ``in_path`` and publish its output as the new directory ``out_dir``.

    ``in_path`` by type: transform a directory (or one file), dsp an ``X.npy`` of N windows,
    learn a directory with ``X_split_train.npy``/``Y_split_train.npy``, deploy a directory with
    ``deployment-metadata.json`` and the model files. ``params`` are the block's parameters
    (validated against its schema); ``limits`` override the block's ``info.resources`` and the
    defaults; ``epochs``/``learning_rate`` are the learn contract's platform arguments.
    ``engine``: ``"podman"``, ``"local"`` (its ``info.localCommand``) or ``"auto"``.

    Raises InvalidArgument (bad input/params/out_dir), BlockImageNotFound, BlockFailed (non-zero
    exit or missing output), BlockTimedOut, BlockOutOfMemory, BlockCancelled.
    """
    log = log or (lambda _line: None)
    cancelled = cancelled or (lambda: False)
    resolved = block if isinstance(block, ResolvedBlock) else resolve_block(block)
    manifest = resolved.manifest
    chosen = _choose_engine(resolved, engine)
    eff = limits_from_info(manifest.info).merged(limits).resolved()
    in_path = Path(in_path).resolve()
    info = check_input(manifest.type, in_path)
    out_dir = Path(out_dir).resolve()
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InvalidArgument(
            f"output {out_dir} already exists and is not an empty directory; "
            "block output always goes to a new directory",
            field="out",
        )
    if in_path == out_dir or out_dir in in_path.parents or in_path in out_dir.parents:
        raise InvalidArgument("input and output must not contain each other", field="out")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Beside out_dir, so the final rename stays on one filesystem and is atomic.
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        if chosen == "local":
            assert resolved.directory is not None and manifest.local_command is not None
            args = block_args(
                manifest, in_path=str(in_path), in_is_file=info.is_file, out_dir=str(tmp),
                params=params, epochs=epochs, learning_rate=learning_rate,
            )  # fmt: skip
            executor: StepExecutor = LocalCommandExecutor(
                resolved.directory, manifest.local_command
            )
            image = None
        else:
            from tinyforge.workflows.podman import PodmanExecutor, Volume

            image = resolved.image
            assert image is not None
            in_ctr = f"{IN_MOUNT}/{in_path.name}" if info.is_file else IN_MOUNT
            args = block_args(
                manifest, in_path=in_ctr, in_is_file=info.is_file, out_dir=OUT_MOUNT,
                params=params, epochs=epochs, learning_rate=learning_rate,
            )  # fmt: skip
            tmp.chmod(0o777)  # a block image may run as a non-root user
            executor = PodmanExecutor(
                network="bridge" if eff.network else "none",
                memory_mb=eff.memory_mb,
                cpus=eff.cpus,
                pids_limit=eff.pids,
                volumes=[Volume(in_path, in_ctr, True), Volume(tmp, OUT_MOUNT, False)],
                mount_workdir=False,
            )
        log(f"running block {manifest.name!r} ({manifest.type}) with {chosen}")
        t0 = time.monotonic()
        proc = _execute(executor, args, image, tmp, eff, manifest, log, cancelled)
        duration = time.monotonic() - t0
        problem = check_output(manifest.type, tmp, info)
        if problem:
            raise BlockFailed(f"block {manifest.name!r}: {problem}", log_tail=proc.tail)
        if out_dir.exists():
            out_dir.rmdir()  # checked empty above
        tmp.chmod(0o755)
        os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file())
    return BlockResult(
        name=manifest.name,
        type=manifest.type,
        engine=chosen,
        image=image,
        out_dir=out_dir,
        files=files,
        duration_s=duration,
        limits=eff,
        log_tail=list(proc.tail),
    )


def _execute(
    executor: StepExecutor,
    args: list[str],
    image: str | None,
    workdir: Path,
    limits: BlockLimits,
    manifest: BlockManifest,
    log: Callable[[str], None],
    cancelled: Callable[[], bool],
) -> StepProcess:
    from tinyforge.workflows.podman import ImageNotFound

    tail: list[str] = []

    def keep(line: str) -> None:
        tail.append(line)
        del tail[:-50]
        log(line)

    name = manifest.name
    try:
        proc = executor.run(
            args,
            image=image or "",
            env={},
            workdir=workdir,
            mounts={},
            timeout_s=limits.timeout_s,
            log=keep,
            cancelled=cancelled,
        )
    except ImageNotFound as exc:
        raise BlockImageNotFound(f"block {name!r}: {exc}", field="image") from None
    except StepTimedOut:
        raise BlockTimedOut(
            f"block {name!r} ran past its time limit of {limits.timeout_s:g} s and was stopped",
            log_tail=tail,
        ) from None
    except StepCancelled:
        raise BlockCancelled(f"block {name!r} was cancelled", log_tail=tail) from None
    except OSError as exc:  # local command not found / not executable
        raise BlockFailed(f"block {name!r} could not start: {exc}", field="engine") from None
    if getattr(proc, "oom_killed", False):
        raise BlockOutOfMemory(
            f"block {name!r} exceeded its memory limit of {limits.memory_mb} MiB and was killed",
            log_tail=proc.tail,
        )
    if proc.exit_code != 0:
        raise BlockFailed(f"block {name!r} exited with code {proc.exit_code}", log_tail=proc.tail)
    return proc
