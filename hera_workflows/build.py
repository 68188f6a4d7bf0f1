"""Deployment builds as an Argo WorkflowTemplate: ``tinyforge-build``, one ``build`` step.

The BuilderService runs each build job as this pipeline (engine ``local`` / ``argo``) with the
``build-id`` of the pending build it recorded; ``tinyforge pipeline run tinyforge-build`` (and the
retrain pipeline's optional last stage, :func:`build_container`) give ``build-id`` 0 and the
model / format / target instead, and the step records the build itself.

A build cross-compiles and runs the result in an emulator (QEMU, node's WASI) to verify it on
the target, so the step asks for two CPUs and runs for up to the builder's own limit (one hour,
:data:`tinyforge.deploy.builds.MAX_TIMEOUT_S`) plus start-up and storing time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Hera is imported inside the builders: services import NAME at start-up
    from hera.workflows import Container, WorkflowTemplate

NAME = "tinyforge-build"
#: (task, output parameter) holding the job result: the build step's summary.
RESULT = ("build", "summary")
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
#: Step deadline: the builder's longest time limit (1 h) + bundle, start-up and upload time.
BUILD_DEADLINE_S = 3600 + 900
DESCRIPTION = (
    "Build a deployment artifact of a model (C library, firmware, ESP-IDF, Linux, WASM, TFLite, "
    "KServe), verified on the target's emulator where the format compiles."
)


def build_container() -> Container:
    """The ``build`` template (inside an open WorkflowTemplate)."""
    from hera_workflows.common import BUILDER_IMAGE, step_template

    return step_template(
        "build",
        "build",
        inputs=BUILD_INPUTS,
        outputs=["build-id", "summary"],
        cpu="2",
        memory="2Gi",
        memory_limit="8Gi",
        retries=1,  # a toolchain run is long; one retry for a lost node is enough
        timeout_s=BUILD_DEADLINE_S,
        image=BUILDER_IMAGE,  # cross toolchains + emulators
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
        on_exit="record-status",
        annotations={"workflows.argoproj.io/description": DESCRIPTION},
        arguments=[*pipeline_parameters(), *build_parameters()],
    ) as wt:
        exit_handler()
        build = build_container()
        with DAG(name="main"):
            build(name="build", arguments=wf_args(*BUILD_INPUTS))
    return wt


TEMPLATES = {NAME: build_pipeline_template}
RESULTS = {NAME: RESULT}
