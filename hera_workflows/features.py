"""Feature generation as an Argo WorkflowTemplate: plan → shards in parallel → publish.

Work that grows with the dataset fans out: ``features-plan`` splits the samples still to
process into up to ``max-shards`` shards, one ``features-shard`` step per shard runs in
parallel (``withParam``), spreading a large project over the cluster's nodes, and
``features-publish`` assembles the per-block matrices and their manifests (visible only when
complete).
"""

from __future__ import annotations

from hera.workflows import DAG, Parameter, WorkflowTemplate

from hera_workflows.common import exit_handler, pipeline_parameters, step_template

NAME = "tinyforge-generate-features"


def generate_features_template() -> WorkflowTemplate:
    """The feature-generation pipeline (parameters: job-id, project-id, impulse-id, version)."""
    ids = ["project-id", "impulse-id", "version"]
    with WorkflowTemplate(
        name=NAME,
        entrypoint="main",
        on_exit="record-status",
        arguments=[
            *pipeline_parameters("impulse-id"),
            Parameter(name="version", value="0"),
            Parameter(name="max-shards", value="8"),
            Parameter(name="min-samples-per-shard", value="200"),
        ],
    ) as wt:
        plan = step_template(
            "plan",
            "features-plan",
            inputs=[*ids, "max-shards", "min-samples-per-shard"],
            outputs=["shards"],
            memory="512Mi",
            memory_limit="2Gi",
            timeout_s=600,
        )
        shard = step_template(
            "shard",
            "features-shard",
            inputs=[*ids, "shard"],
            cpu="1",
            memory="2Gi",
            memory_limit="6Gi",
        )
        publish = step_template(
            "publish",
            "features-publish",
            inputs=[*ids, "job-id"],
            outputs=["summary"],
            memory="1Gi",
            memory_limit="6Gi",
        )
        exit_handler()
        common = {p: f"{{{{workflow.parameters.{p}}}}}" for p in ids}
        with DAG(name="main"):
            a = plan(
                name="plan",
                arguments={
                    **common,
                    "max-shards": "{{workflow.parameters.max-shards}}",
                    "min-samples-per-shard": "{{workflow.parameters.min-samples-per-shard}}",
                },
            )
            b = shard(
                name="shard",
                arguments={**common, "shard": "{{item}}"},
                with_param="{{tasks.plan.outputs.parameters.shards}}",
            )
            c = publish(
                name="publish", arguments={**common, "job-id": "{{workflow.parameters.job-id}}"}
            )
            a >> b >> c
    return wt
