"""Building blocks shared by every TinyForge pipeline (Argo WorkflowTemplates via Hera).

A pipeline step is a container of the TinyForge image running ``tinyforge step NAME --arg
k=v ...`` (see :mod:`tinyforge.workflows.steps`). Data moves between steps as object-store keys
and ids in parameters, never as Argo artifacts, so the same templates run on the cluster
(MinIO, PostgreSQL) and in the local runner (local directory store, SQLite). Every pipeline
records its outcome on its job through the ``record-status`` exit handler.

Templates name the platform image by the marker :data:`PLATFORM_IMAGE`. The Helm chart
replaces it with the release's image and adds the settings (ConfigMap + secret env), the
workflow service account and the pod labels its NetworkPolicies expect; the local runner runs
marker-image steps as local processes with the platform's settings in their environment.
"""

from __future__ import annotations

from collections.abc import Sequence

from hera.workflows import Container, Parameter, Resources, RetryStrategy
from hera.workflows.models import ValueFrom

from tinyforge.workflows.steps import output_path

#: Marker for "the TinyForge platform image" (see the module docstring).
PLATFORM_IMAGE = "tinyforge/platform"
#: Marker for "the builder image" (the platform plus the cross toolchains and emulators): the
#: chart maps it to ``builderImages.builder`` (the platform image when unset); locally it runs
#: as a platform process, this machine having the toolchains installed.
BUILDER_IMAGE = "tinyforge/builder"
#: Every image that runs as a process of this installation in the local runner.
PLATFORM_MARKERS = (PLATFORM_IMAGE, BUILDER_IMAGE)
#: Retry transient failures only: a step exits 2 for bad input, which no retry can fix.
RETRY_UNLESS_BAD_INPUT = "asInt(lastRetry.exitCode) != 2"
#: Parameters every pipeline takes: the job that tracks it and the project it works on.
COMMON_PARAMETERS = ("job-id", "project-id")


def step_template(
    name: str,
    step: str,
    *,
    inputs: Sequence[str],
    outputs: Sequence[str] = (),
    cpu: str = "500m",
    memory: str = "1Gi",
    memory_limit: str = "4Gi",
    retries: int = 2,
    timeout_s: int = 3600,
    image: str = PLATFORM_IMAGE,
) -> Container:
    """A container template running ``tinyforge step STEP`` with each input as ``--arg``.

    Outputs are files at ``/tmp/outputs/NAME`` (what :meth:`StepContext.output` writes).
    Quantities are strings (the Argo schema types them so).
    """
    args: list[str] = []
    for p in inputs:
        args += ["--arg", f"{p}={{{{inputs.parameters.{p}}}}}"]
    return Container(
        name=name,
        image=image,
        command=["tinyforge", "step", step],
        args=args,
        inputs=[Parameter(name=p) for p in inputs],
        outputs=[Parameter(name=o, value_from=ValueFrom(path=output_path(o))) for o in outputs],
        resources=Resources(cpu_request=cpu, memory_request=memory, memory_limit=memory_limit),
        retry_strategy=RetryStrategy(
            limit=str(retries), retry_policy="Always", expression=RETRY_UNLESS_BAD_INPUT
        ),
        active_deadline_seconds=timeout_s,
    )


def cleanup_template(step: str, inputs: Sequence[str] = ("project-id", "job-id")) -> Container:
    """An exit handler's cleanup template (small, short): ``tinyforge step STEP`` removing a
    job's staging keys (see :func:`tinyforge.workflows.steps.cleanup_step`)."""
    return step_template(
        step,
        step,
        inputs=inputs,
        cpu="100m",
        memory="256Mi",
        memory_limit="1Gi",
        timeout_s=600,
    )


def exit_handler() -> Container:
    """The ``record-status`` template: stores ``{{workflow.status}}`` on the pipeline's job."""
    return Container(
        name="record-status",
        image=PLATFORM_IMAGE,
        command=["tinyforge", "step", "record-status"],
        args=[
            "--arg",
            "job-id={{workflow.parameters.job-id}}",
            "--arg",
            "status={{workflow.status}}",
        ],
        resources=Resources(cpu_request="50m", memory_request="128Mi", memory_limit="512Mi"),
        retry_strategy=RetryStrategy(limit="3", retry_policy="Always"),
        active_deadline_seconds=300,
    )


def pipeline_parameters(*extra: str) -> list[Parameter]:
    """Workflow parameters: the common ones plus ``extra`` (all required strings)."""
    return [Parameter(name=p) for p in (*COMMON_PARAMETERS, *extra)]


#: Upper bound of a block step; the block's own limit (``info.resources.timeoutSeconds``,
#: default 1 h) comes with the pod spec patch.
BLOCK_DEADLINE_S = 7 * 24 * 3600
#: Inputs of :func:`block_step_template` (what a plan step outputs for it).
BLOCK_STEP_INPUTS = ("image", "pod-spec-patch", "in-key", "out-key")


def block_step_template(name: str) -> Container:
    """A custom block run as a step of its own: the block's image
    (``{{inputs.parameters.image}}``) with the input downloaded at ``/block/in`` and
    ``/block/out`` uploaded afterwards, both S3 artifacts located by key in the default
    artifact repository (the Helm chart's ``artifact-repositories`` ConfigMap: the platform's
    bucket). The block's argv and resources differ per block and run, so they travel in
    ``podSpecPatch`` (Argo's way to vary a container per run; see
    :mod:`tinyforge.blocks.step`); the template itself is static. The block gets none of the
    platform's settings or credentials, and is not retried (its exit status is its verdict).
    """
    from hera.workflows import EmptyDirVolume, NoneArchiveStrategy, S3Artifact

    from tinyforge.blocks.contract import IN_MOUNT, OUT_MOUNT

    return Container(
        name=name,
        image="{{inputs.parameters.image}}",
        inputs=[
            *(Parameter(name=p) for p in BLOCK_STEP_INPUTS),
            S3Artifact(name="in", path=IN_MOUNT, key="{{inputs.parameters.in-key}}"),
        ],
        outputs=[
            S3Artifact(
                name="out",
                path=OUT_MOUNT,
                key="{{inputs.parameters.out-key}}",
                archive=NoneArchiveStrategy(),
            )
        ],
        # The output directory exists (and is writable for any user) before the block starts,
        # as the contract promises; Argo collects artifacts from emptyDir mounts.
        volumes=[EmptyDirVolume(name="block-out", mount_path=OUT_MOUNT)],
        pod_spec_patch="{{inputs.parameters.pod-spec-patch}}",
        active_deadline_seconds=BLOCK_DEADLINE_S,
    )


def block_step_arguments(plan_task: str) -> dict[str, str]:
    """Arguments of a :func:`block_step_template` task from the outputs of task ``plan_task``
    (which must output every name in :data:`BLOCK_STEP_INPUTS`)."""
    return {n: f"{{{{tasks.{plan_task}.outputs.parameters.{n}}}}}" for n in BLOCK_STEP_INPUTS}
