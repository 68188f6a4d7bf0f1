"""Deployment builds as an Argo WorkflowTemplate: ``tinyforge-build``.

``build`` → ``deploy-block`` (custom formats only) → ``build-finish``:

- ``build`` (builder image): the build (:func:`tinyforge.deploy.builds.run_build`). A built-in
  format is built completely there. For a custom deploy block format (``custom:NAME[@V]``) the
  step builds and verifies the C library, writes the block's input (deployment-metadata.json,
  the model files, the unpacked C library), stages it under ``projects/{p}/builds/{b}/block-in``
  and outputs ``custom`` true with the block step's image, pod spec patch (the deploy contract's
  argv at ``/block/in`` and ``/block/out`` with the build's block parameters; the block's
  resources and time limit) and keys;
- ``deploy-block`` (``when`` custom): the block's own image, input and output as S3 artifacts
  (:func:`hera_workflows.common.block_step_template`): in the cluster no build pod needs podman,
  and locally the runner runs the image with podman or the block's local command;
- ``build-finish`` (platform image): for a custom build checks that the block wrote exactly one
  file, stores it as the build's artifact and completes the build as the in-process path does;
  outputs the job result (``summary``) for both kinds of format.

The exit handler's ``build-cleanup`` removes the staged block keys and fails a build the pipeline
left unfinished (naming the block and quoting its last output lines), then the job's status is
recorded. :func:`add_build_tasks` / :func:`add_build_cleanup` let the retrain pipeline end with
the same stage.

The BuilderService runs each build job as this pipeline (engine ``local`` / ``argo``) with the
``build-id`` of the pending build it recorded; ``tinyforge pipeline run tinyforge-build`` (and the
retrain pipeline's optional last stage) give ``build-id`` 0 and the model / format / target
instead, and the step records the build itself.

A build cross-compiles and runs the result in an emulator (QEMU, node's WASI) to verify it on
the target, so the step asks for two CPUs and runs for up to the builder's own limit (one hour,
:data:`tinyforge.deploy.builds.MAX_TIMEOUT_S`) plus start-up and storing time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Hera is imported inside the builders: services import NAME at start-up
    from hera.workflows import Container, Task, WorkflowTemplate

NAME = "tinyforge-build"
#: (task, output parameter) holding the job result: build-finish's summary (it runs for
#: built-in and custom formats alike; ``build`` only stages a custom build).
RESULT = ("build-finish", "summary")
#: Inputs of the ``build`` step (all strings; see tinyforge/deploy/steps.py).
BUILD_INPUTS = [
    "project-id",
    "build-id",
    "model-id",
    "format",
    "target",
    "precision",
    "options",
    "timeout-s",
    "job-id",
]
#: Outputs of the ``build`` step: the build, its summary, whether a deploy block step follows
#: and that step's inputs (``hera_workflows.common.BLOCK_STEP_INPUTS``).
BUILD_OUTPUTS = ["build-id", "summary", "custom", "image", "pod-spec-patch", "in-key", "out-key"]
FINISH_INPUTS = ["project-id", "job-id", "build-id", "custom", "block-status"]
CLEANUP_INPUTS = ["project-id", "job-id", "build-id", "status"]
#: The deploy block step runs only for custom formats (``build`` says which).
CUSTOM_WHEN = "'{{tasks.build.outputs.parameters.custom}}' == 'true'"
#: build-finish runs once the deploy block step ended, however (it fails the build naming the
#: block when the step failed), or was skipped (a built-in format).
FINISH_DEPENDS = (
    "(deploy-block.Succeeded || deploy-block.Skipped || deploy-block.Failed"
    " || deploy-block.Errored)"
)
#: Name of the exit handler DAG (build-cleanup, then record-status).
EXIT = "exit"
#: Step deadline: the builder's longest time limit (1 h) + bundle, start-up and upload time.
BUILD_DEADLINE_S = 3600 + 900
DESCRIPTION = (
    "Build a deployment artifact of a model (C library, firmware, ESP-IDF, Linux, WASM, TFLite, "
    "KServe, or a custom deploy block run as a step of its own image), verified on the target's "
    "emulator where the format compiles."
)


def _build_output(name: str) -> str:
    return f"{{{{tasks.build.outputs.parameters.{name}}}}}"


def build_container() -> Container:
    """The ``build`` template (inside an open WorkflowTemplate)."""
    from hera_workflows.common import BUILDER_IMAGE, step_template

    return step_template(
        "build",
        "build",
        inputs=BUILD_INPUTS,
        outputs=BUILD_OUTPUTS,
        cpu="2",
        memory="2Gi",
        memory_limit="8Gi",
        retries=1,  # a toolchain run is long; one retry for a lost node is enough
        timeout_s=BUILD_DEADLINE_S,
        image=BUILDER_IMAGE,  # cross toolchains + emulators
    )


def finish_container() -> Container:
    """The ``build-finish`` template: store a deploy block's output, output the job result."""
    from hera_workflows.common import step_template

    return step_template(
        "build-finish",
        "build-finish",
        inputs=FINISH_INPUTS,
        outputs=["summary"],
        memory="512Mi",
        memory_limit="3Gi",  # the artifact (up to 2 GiB) passes through a temporary file
        timeout_s=1800,
    )


def add_build_tasks(arguments: Mapping[str, str], *, when: str | None = None) -> tuple[Task, Task]:
    """Inside an open WorkflowTemplate + DAG: the build templates and the tasks ``build`` →
    ``deploy-block`` (custom formats) → ``build-finish``. ``arguments`` are the ``build``
    step's (:data:`BUILD_INPUTS`); ``when`` guards the whole stage (the retrain pipeline's
    optional build). Returns the first and last task, so callers can chain the stage."""
    from hera_workflows.common import block_step_arguments, block_step_template

    build = build_container()
    block = block_step_template("deploy-block")
    finish = finish_container()
    kw: dict[str, Any] = {"when": when} if when else {}
    a = build(name="build", arguments=dict(arguments), **kw)
    # depends on build.Succeeded, not just build: a skipped build (retrain without a format)
    # has no outputs for the `when` below to read, so the stage is omitted instead
    b = block(
        name="deploy-block",
        arguments=block_step_arguments("build"),
        when=CUSTOM_WHEN,
        depends="build.Succeeded",
    )
    c = finish(
        name="build-finish",
        arguments={
            "project-id": arguments["project-id"],
            "job-id": arguments["job-id"],
            "build-id": _build_output("build-id"),
            "custom": _build_output("custom"),
            "block-status": "{{tasks.deploy-block.status}}",
        },
        depends=FINISH_DEPENDS,
    )
    del b  # chained through `depends`
    return a, c


def add_build_cleanup(*, build_id: str, when: str | None = None) -> Task:
    """Inside an open exit-handler DAG: the ``build-cleanup`` template and task (when
    ``when`` holds): removes the staged deploy block keys of the job's builds and fails any
    build the pipeline left pending or running. ``build_id``: a build to include besides those
    found by the job id (a workflow parameter, or "0")."""
    from hera_workflows.common import cleanup_template
    from hera_workflows.features import wf_args

    cleanup = cleanup_template("build-cleanup", CLEANUP_INPUTS)
    kw: dict[str, Any] = {"when": when} if when else {}
    return cleanup(
        name="build-cleanup",
        arguments={
            **wf_args("project-id", "job-id"),
            "build-id": build_id,
            "status": "{{workflow.status}}",
        },
        **kw,
    )


def add_build_exit(record: Container, *, build_id: str) -> None:
    """Inside an open WorkflowTemplate (not in a DAG): the :data:`EXIT` handler DAG,
    ``build-cleanup`` (:func:`add_build_cleanup`) and then ``record`` (record-status), so the
    job's status is recorded once the build row is final."""
    from hera.workflows import DAG

    with DAG(name=EXIT):
        add_build_cleanup(build_id=build_id)
        record(
            name="record-status",
            depends="build-cleanup.Succeeded || build-cleanup.Failed || build-cleanup.Errored",
        )


def build_parameters() -> list[Any]:
    """Workflow parameters of the build pipeline besides job-id/project-id, with defaults."""
    from hera.workflows import Parameter

    return [
        Parameter(name="build-id", value="0", description="a pending build to run (0 = new)"),
        Parameter(name="model-id", value="0", description="model to build (0 = the newest)"),
        Parameter(name="format", value="", description="deployment format (new builds)"),
        Parameter(name="target", value="", description="target the format builds for"),
        Parameter(name="precision", value="int8", description="int8 or float32"),
        Parameter(name="options", value="{}", description="format options as a JSON object"),
        Parameter(name="timeout-s", value="0", description="build time limit (0 = 600 s)"),
    ]


def build_pipeline_template() -> WorkflowTemplate:
    """The build pipeline (parameters: job-id, project-id, and :func:`build_parameters`)."""
    from hera.workflows import DAG, WorkflowTemplate

    from hera_workflows.common import exit_handler, pipeline_parameters
    from hera_workflows.features import wf_args

    with WorkflowTemplate(
        name=NAME,
        entrypoint="main",
        on_exit=EXIT,
        annotations={"workflows.argoproj.io/description": DESCRIPTION},
        arguments=[*pipeline_parameters(), *build_parameters()],
    ) as wt:
        record = exit_handler()
        with DAG(name="main"):
            add_build_tasks(wf_args(*BUILD_INPUTS))
        add_build_exit(record, build_id="{{workflow.parameters.build-id}}")
    return wt


TEMPLATES = {NAME: build_pipeline_template}
RESULTS = {NAME: RESULT}
