"""Embedded mode: run a pipeline from :data:`hera_workflows.PIPELINES` with the local runner.

Steps whose image is a platform marker (platform or builder image) run as local processes of
this installation, with the running platform's settings in their environment. Any other image
is a custom block: when it is a version registered in the organization of the run's project
(looked up by its image reference), it runs under podman with the block's limits if podman
works here and the image is local or pullable, else as the version's ``info.localCommand``
from its stored source archive
(where local commands are allowed, :func:`tinyforge.blocks.registered.local_commands_allowed`).
An unregistered image runs under podman. Block steps never get the platform's settings or
credentials in their environment. S3 artifacts live in the platform's object store. The job
that tracks the run is finished by the job manager, so the exit handler only logs (see
:mod:`tinyforge.workflows.job_status`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hera_workflows import PIPELINES
from hera_workflows.common import PLATFORM_MARKERS
from tinyforge.context import PlatformContext
from tinyforge.errors import InvalidArgument
from tinyforge.workflows.artifacts import ObjectStoreArtifacts
from tinyforge.workflows.executors import LocalProcessExecutor, StepExecutor, StepProcess
from tinyforge.workflows.job_status import JOB_MANAGED_ENV
from tinyforge.workflows.platform_env import settings_env
from tinyforge.workflows.runner import LocalRunner, WorkflowRun


class BlockStepExecutor:
    """Runs a custom block's step through ``inner`` without the platform's environment
    (``TINYFORGE_*`` settings and credentials the runner passes to every step)."""

    def __init__(self, inner: StepExecutor, engine: str) -> None:
        from tinyforge.workflows.podman import PodmanExecutor

        self.inner = inner
        self.engine = engine  # "podman" | "local"
        self.mounts_natively = isinstance(inner, PodmanExecutor)

    def run(self, command: Sequence[str], *, env: dict[str, str], **kw: Any) -> StepProcess:
        """See :class:`~tinyforge.workflows.executors.StepExecutor`."""
        keep = {k: v for k, v in env.items() if not k.startswith("TINYFORGE_")}
        keep.pop(JOB_MANAGED_ENV, None)
        return self.inner.run(command, env=keep, **kw)


class _Unavailable:
    """An executor for a block that cannot run here: starting it fails with the reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def run(self, command: Sequence[str], **kw: Any) -> StepProcess:
        raise FileNotFoundError(self.reason)


def registered_block_for_image(ctx: PlatformContext, org_id: int, image: str) -> Any:
    """The latest version registered in org ``org_id`` whose image (as written, or pinned by
    its digest) is ``image``, or the version a ``tinyforge-local-block/...`` reference names;
    None when there is none."""
    from sqlalchemy import select

    from tinyforge.blocks.registry_store import get_registered_block, parse_image_ref
    from tinyforge.blocks.step import parse_local_block_image
    from tinyforge.store.models import Block, BlockVersion

    local = parse_local_block_image(image)
    with ctx.db.session() as s:
        if local is not None:
            org, name, version = local
            return get_registered_block(s, org, name, version) if org == org_id else None
        rows = s.execute(
            select(Block.name, BlockVersion.version, BlockVersion.image, BlockVersion.image_digest)
            .join(BlockVersion, BlockVersion.block_id == Block.id)
            .where(Block.org_id == org_id, BlockVersion.image != "")
            .order_by(BlockVersion.version.desc())
        ).all()
        for name, version, ref, digest in rows:
            if ref == image or parse_image_ref(ref).pinned(digest or None) == image:
                return get_registered_block(s, org_id, name, version)
    return None


def _image_available(image: str) -> str | None:
    """None when podman can run ``image`` now (pulling it if needed), else why not."""
    from tinyforge.blocks.registered import podman_reason
    from tinyforge.workflows.podman import ImageNotFound, image_exists, pull_image

    reason = podman_reason()
    if reason is not None:
        return f"podman cannot run containers here: {reason}"
    if image_exists(image):
        return None
    try:
        pull_image(image)
    except ImageNotFound as exc:
        return str(exc)
    return None


def block_executor(ctx: PlatformContext, reg: Any, image: str) -> StepExecutor:
    """How registered block version ``reg`` runs as a step with image ``image`` here."""
    from tinyforge.blocks.limits import limits_from_info
    from tinyforge.blocks.local_command import LocalCommandExecutor
    from tinyforge.blocks.registered import local_commands_allowed, source_dir
    from tinyforge.blocks.step import parse_local_block_image
    from tinyforge.workflows.podman import PodmanExecutor

    reasons = []
    if parse_local_block_image(image) is None:
        why = _image_available(image)
        if why is None:
            lim = limits_from_info(reg.manifest.info).resolved()
            podman = PodmanExecutor(
                network="bridge" if lim.network else "none",
                memory_mb=lim.memory_mb,
                cpus=lim.cpus,
                pids_limit=lim.pids,
            )
            return BlockStepExecutor(podman, "podman")
        reasons.append(why)
    else:
        reasons.append("it has no image")
    if reg.manifest.local_command and reg.source_key:
        if local_commands_allowed():
            local = LocalCommandExecutor(source_dir(ctx.objects, reg), reg.manifest.local_command)
            return BlockStepExecutor(local, "local")
        reasons.append("local commands are disabled (TINYFORGE_BLOCKS_LOCAL_COMMANDS)")
    else:
        reasons.append("it has no local command with a stored source")
    return _Unavailable(f"block {reg.name!r} v{reg.version} cannot run here: " + "; ".join(reasons))


def executor_for_image(
    image: str, ctx: PlatformContext | None = None, org_id: int | None = None
) -> StepExecutor:
    """The platform image → a local process; a block version registered in org ``org_id`` →
    :func:`block_executor`; any other image → podman."""
    if image in PLATFORM_MARKERS:
        return LocalProcessExecutor()
    from tinyforge.workflows.podman import PodmanExecutor

    if ctx is not None and org_id is not None:
        reg = registered_block_for_image(ctx, org_id, image)
        if reg is not None:
            return block_executor(ctx, reg, image)
    return BlockStepExecutor(PodmanExecutor(), "podman")


def _org_of(ctx: PlatformContext, parameters: Mapping[str, str]) -> int | None:
    from tinyforge.accounts.projects import get_project
    from tinyforge.errors import NotFound

    try:
        project_id = int(parameters.get("project-id", ""))
    except ValueError:
        return None
    try:
        with ctx.db.session() as s:
            return get_project(s, project_id).org_id
    except (NotFound, InvalidArgument):
        return None


def run_pipeline(
    ctx: PlatformContext,
    name: str,
    parameters: Mapping[str, str],
    *,
    log: Callable[[str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    max_parallel: int | None = None,
    wrap_executor: Callable[[StepExecutor], StepExecutor] | None = None,
    work_dir: Path | None = None,
) -> WorkflowRun:
    """Run pipeline ``name`` to completion on this machine; returns the run's outcome.

    ``wrap_executor`` (optional) wraps each step's executor, e.g. to report step starts/ends.
    """
    if name not in PIPELINES:
        raise InvalidArgument(
            f"no pipeline named {name!r}; pipelines: {', '.join(sorted(PIPELINES))}", field="name"
        )
    org_id = _org_of(ctx, parameters)
    executors: dict[str, StepExecutor] = {}  # one lookup (and pull) per image and run

    def pick(image: str) -> StepExecutor:
        if image not in executors:
            executors[image] = executor_for_image(image, ctx, org_id)
        chosen = executors[image]
        return chosen if wrap_executor is None else wrap_executor(chosen)

    runner = LocalRunner(
        max_parallel=max_parallel or ctx.settings.job_workers,
        executor_for_image=pick,
        env={**settings_env(ctx.settings), JOB_MANAGED_ENV: "1"},
        artifacts=ObjectStoreArtifacts(ctx.objects),
        work_dir=work_dir,
    )
    return runner.run(PIPELINES[name](), parameters, log=log, cancelled=cancelled)
