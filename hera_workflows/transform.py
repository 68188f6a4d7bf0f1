"""Data transformation as an Argo WorkflowTemplate: plan → run-block → ingest.

``tinyforge-transform`` runs a transform block registered in the project's organization over a
dataset (the samples' original files) or the objects under a key prefix of the project, and
ingests what the block writes as new samples (see :mod:`tinyforge.transform`):

- ``plan`` (platform step): resolves ``block``, checks ``parameters`` against its schema, stages
  the input under ``projects/{p}/transform/{job}/in`` and outputs the block's image, the pod spec
  patch carrying its exact arguments and resources, and the input/output keys;
- ``run-block``: the block's own image, input and output as S3 artifacts, its argv and
  resources in ``podSpecPatch`` (:func:`hera_workflows.common.block_step_template`);
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


def _plan_output(name: str) -> str:
    return f"{{{{tasks.plan.outputs.parameters.{name}}}}}"


def transform_template() -> WorkflowTemplate:
    """The transformation pipeline (parameters: job-id, project-id, block, source, parameters,
    category, label, frequency)."""
    from hera.workflows import DAG, Parameter, WorkflowTemplate

    from hera_workflows.common import (
        block_step_arguments,
        block_step_template,
        cleanup_template,
        exit_handler,
        pipeline_parameters,
        step_template,
    )

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
        cleanup = cleanup_template("transform-cleanup", common)
        plan = step_template(
            "transform-plan",
            "transform-plan",
            inputs=[*common, *REQUEST],
            outputs=PLAN_OUTPUTS,
            memory="512Mi",
            memory_limit="2Gi",
        )
        run_block = block_step_template("run-block")
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
            b = run_block(name="run-block", arguments=block_step_arguments("plan"))
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
