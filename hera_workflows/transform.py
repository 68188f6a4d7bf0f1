"""Data transformation as an Argo WorkflowTemplate: plan → run-block → ingest.

``tinyforge-transform`` runs a transform block registered in the project's organization over a
dataset (the samples' original files) or the objects under a key prefix of the project, and
ingests what the block writes as new samples (see :mod:`tinyforge.transform`):

- ``plan`` (platform step): resolves ``block``, checks ``parameters`` against its schema, stages
  the input under ``projects/{p}/transform/{job}/in`` and outputs the block's image, the pod spec
  patch carrying its exact arguments and resources, and the input/output keys;
- ``run-block``: the block's own image (``{{inputs.parameters.image}}``) with the input
  downloaded at ``/block/in`` and ``/block/out`` uploaded afterwards, both as S3 artifacts
  located by key in the default artifact repository (the Helm chart's
  ``artifact-repositories`` ConfigMap: the platform's bucket). The block's argv and resources
  differ per block and run, so they travel in ``podSpecPatch`` (Argo's way to vary a
  container per run); the template itself is static. The block gets none of the platform's
  settings or credentials, and is not retried (its exit status is its verdict);
- ``ingest`` (platform step): ingests every output file, all or nothing; output ``summary``.

The exit handler removes the job's staging keys (whatever happened) and records the status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hera_workflows.features import wf_args

if TYPE_CHECKING:
    from hera.workflows import WorkflowTemplate

NAME = "tinyforge-transform"
#: (task, output parameter) holding the job result: the ingest step's summary.
RESULT = ("ingest", "summary")
#: Workflow parameters describing the job (tinyforge.transform.source), after the common ones.
REQUEST = ["block", "source", "parameters", "category", "label", "frequency"]
PLAN_OUTPUTS = ["image", "pod-spec-patch", "in-key", "out-key", "block", "inputs"]
#: Upper bound of a block run; the block's own limit (info.resources.timeoutSeconds, default
#: 1 h) comes with the pod spec patch.
BLOCK_DEADLINE_S = 7 * 24 * 3600


def _plan_output(name: str) -> str:
    return f"{{{{tasks.plan.outputs.parameters.{name}}}}}"


def transform_template() -> WorkflowTemplate:
    """The transformation pipeline (parameters: job-id, project-id, block, source, parameters,
    category, label, frequency)."""
    from hera.workflows import (
        DAG,
        Container,
        EmptyDirVolume,
        NoneArchiveStrategy,
        Parameter,
        S3Artifact,
        WorkflowTemplate,
    )

    from hera_workflows.common import exit_handler, pipeline_parameters, step_template
    from tinyforge.blocks.contract import IN_MOUNT, OUT_MOUNT

    common = ["job-id", "project-id"]
    with WorkflowTemplate(
        name=NAME,
        entrypoint="main",
        on_exit="exit",
        arguments=[
            *pipeline_parameters("block", "source"),
            Parameter(name="parameters", value="{}"),
            Parameter(name="category", value="split"),
            Parameter(name="label", value=""),
            Parameter(name="frequency", value=""),
        ],
    ) as wt:
        record = exit_handler()
        cleanup = step_template(
            "transform-cleanup",
            "transform-cleanup",
            inputs=common,
            cpu="100m",
            memory="256Mi",
            memory_limit="1Gi",
            timeout_s=600,
        )
        plan = step_template(
            "transform-plan",
            "transform-plan",
            inputs=[*common, *REQUEST],
            outputs=PLAN_OUTPUTS,
            memory="512Mi",
            memory_limit="2Gi",
        )
        run_block = Container(
            name="run-block",
            image="{{inputs.parameters.image}}",
            inputs=[
                Parameter(name="image"),
                Parameter(name="pod-spec-patch"),
                Parameter(name="in-key"),
                Parameter(name="out-key"),
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
            # The output directory exists (and is writable for any user) before the block
            # starts, as the contract promises; Argo collects artifacts from emptyDir mounts.
            volumes=[EmptyDirVolume(name="block-out", mount_path=OUT_MOUNT)],
            pod_spec_patch="{{inputs.parameters.pod-spec-patch}}",
            active_deadline_seconds=BLOCK_DEADLINE_S,
        )
        ingest = step_template(
            "transform-ingest",
            "transform-ingest",
            inputs=[*common, *REQUEST, "out-key", "inputs"],
            outputs=["summary"],
            memory="1Gi",
            memory_limit="4Gi",
        )
        with DAG(name="main"):
            a = plan(name="plan", arguments=wf_args(*common, *REQUEST))
            b = run_block(
                name="run-block",
                arguments={
                    n: _plan_output(n) for n in ("image", "pod-spec-patch", "in-key", "out-key")
                },
            )
            c = ingest(
                name="ingest",
                arguments={
                    **wf_args(*common, *REQUEST),
                    "block": _plan_output("block"),
                    "out-key": _plan_output("out-key"),
                    "inputs": _plan_output("inputs"),
                },
            )
            a >> b >> c
        with DAG(name="exit"):
            cleanup(name="cleanup", arguments=wf_args(*common))
            record(name="record-status")
    return wt


TEMPLATES = {NAME: transform_template}
RESULTS = {NAME: RESULT}
