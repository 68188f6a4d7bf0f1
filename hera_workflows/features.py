"""Feature generation as an Argo WorkflowTemplate: plan → shards in parallel → publish.

Work that grows with the dataset fans out: ``features-plan`` splits the samples still to
process into up to ``max-shards`` shards, one ``features-shard`` step per shard runs in
parallel (``withParam``), spreading a large project over the cluster's nodes, and
``features-publish`` assembles the per-block matrices and their manifests (visible only when
complete). :func:`add_feature_tasks` lets other pipelines (retrain) embed the same stage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Hera is imported inside the builders: services import NAME at start-up
    from hera.workflows import Task, WorkflowTemplate

NAME = "tinyforge-generate-features"
#: (task, output parameter) holding the job result: the publish step's generation summary.
RESULT = ("publish", "summary")
IDS = ["project-id", "impulse-id", "version"]


def feature_parameters() -> list[Any]:
    """Workflow parameters of the feature stage, with defaults."""
    from hera.workflows import Parameter

    return [
        Parameter(name="version", value="0"),
        Parameter(name="max-shards", value="8"),
        Parameter(name="min-samples-per-shard", value="200"),
    ]


def wf_args(*names: str) -> dict[str, str]:
    """``{name: "{{workflow.parameters.name}}"}`` for each name."""
    return {n: f"{{{{workflow.parameters.{n}}}}}" for n in names}


def add_feature_tasks() -> tuple[Task, Task]:
    """Inside an open WorkflowTemplate + DAG: the feature templates and tasks; returns the
    first and last task so callers can chain more stages after it."""
    from hera_workflows.common import step_template

    plan = step_template(
        "features-plan",
        "features-plan",
        inputs=[*IDS, "max-shards", "min-samples-per-shard"],
        outputs=["shards"],
        memory="512Mi",
        memory_limit="2Gi",
        timeout_s=600,
    )
    shard = step_template(
        "features-shard",
        "features-shard",
        inputs=[*IDS, "shard"],
        cpu="1",
        memory="2Gi",
        memory_limit="6Gi",
    )
    publish = step_template(
        "features-publish",
        "features-publish",
        inputs=[*IDS, "job-id"],
        outputs=["summary"],
        memory="1Gi",
        memory_limit="6Gi",
    )
    a = plan(name="plan", arguments=wf_args(*IDS, "max-shards", "min-samples-per-shard"))
    b = shard(
        name="shard",
        arguments={**wf_args(*IDS), "shard": "{{item}}"},
        with_param="{{tasks.plan.outputs.parameters.shards}}",
    )
    c = publish(name="publish", arguments=wf_args(*IDS, "job-id"))
    a >> b >> c
    return a, c


def generate_features_template() -> WorkflowTemplate:
    """The feature-generation pipeline (parameters: job-id, project-id, impulse-id, version)."""
    from hera.workflows import DAG, WorkflowTemplate

    from hera_workflows.common import exit_handler, pipeline_parameters

    with WorkflowTemplate(
        name=NAME,
        entrypoint="main",
        on_exit="record-status",
        arguments=[*pipeline_parameters("impulse-id"), *feature_parameters()],
    ) as wt:
        exit_handler()
        with DAG(name="main"):
            add_feature_tasks()
    return wt


TEMPLATES = {NAME: generate_features_template}
RESULTS = {NAME: RESULT}
