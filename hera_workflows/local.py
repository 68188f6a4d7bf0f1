"""Embedded mode: run a pipeline from :data:`hera_workflows.PIPELINES` with the local runner.

Steps whose image is the platform marker run as local processes of this installation, with the
running platform's settings in their environment; any other image (a custom block) runs under
podman. The job that tracks the run is finished by the job manager, so the exit handler only
logs (see :mod:`tinyforge.workflows.job_status`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from hera_workflows import PIPELINES
from hera_workflows.common import PLATFORM_IMAGE
from tinyforge.context import PlatformContext
from tinyforge.errors import InvalidArgument
from tinyforge.workflows.executors import LocalProcessExecutor, StepExecutor
from tinyforge.workflows.job_status import JOB_MANAGED_ENV
from tinyforge.workflows.platform_env import settings_env
from tinyforge.workflows.runner import LocalRunner, WorkflowRun


def executor_for_image(image: str) -> StepExecutor:
    """The platform image → a local process; anything else → podman (custom block images)."""
    if image == PLATFORM_IMAGE:
        return LocalProcessExecutor()
    from tinyforge.workflows.podman import PodmanExecutor

    return PodmanExecutor()


def run_pipeline(
    ctx: PlatformContext,
    name: str,
    parameters: Mapping[str, str],
    *,
    log: Callable[[str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    max_parallel: int | None = None,
) -> WorkflowRun:
    """Run pipeline ``name`` to completion on this machine; returns the run's outcome."""
    if name not in PIPELINES:
        raise InvalidArgument(
            f"no pipeline named {name!r}; pipelines: {', '.join(sorted(PIPELINES))}", field="name"
        )
    runner = LocalRunner(
        max_parallel=max_parallel or ctx.settings.job_workers,
        executor_for_image=executor_for_image,
        env={**settings_env(ctx.settings), JOB_MANAGED_ENV: "1"},
    )
    return runner.run(PIPELINES[name](), parameters, log=log, cancelled=cancelled)
