"""Feature generation as an Argo WorkflowTemplate: plan → shards in parallel → custom DSP
blocks in parallel → publish.

Work that grows with the dataset fans out: ``features-plan`` splits the samples still to
process into up to ``max-shards`` shards, one ``features-shard`` step per shard runs in
parallel (``withParam``), spreading a large project over the cluster's nodes, and
``features-publish`` assembles the per-block matrices and their manifests (visible only when
complete). :func:`add_feature_tasks` lets other pipelines (retrain) embed the same stage.

Custom DSP blocks (``custom:NAME[@V]``) cannot run inside a platform step in the cluster (a pod
starts no containers), so each runs as a step of its own image (``custom-dsp``, one per shard
and block still to compute: the plan's ``custom-steps``; see
:mod:`tinyforge.features.custom_steps`): the shards stage the block's input windows, the block
step reads and writes them as S3 artifacts (:func:`hera_workflows.common.block_step_template`),
and the publish step checks and publishes its output. With nothing to compute the list is
empty and Argo skips the fan-out (``Skipped``), which the publish step's ``depends`` accepts.
The staging keys are removed by the publish step, and by ``features-cleanup`` in the exit
handler whatever happened (:func:`add_feature_cleanup`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Hera is imported inside the builders: services import NAME at start-up
    from hera.workflows import Task, WorkflowTemplate

NAME = "tinyforge-generate-features"
#: (task, output parameter) holding the job result: the publish step's generation summary.
RESULT = ("publish", "summary")
IDS = ["project-id", "impulse-id", "version"]
#: The plan's custom block steps (a JSON list), as the shard and publish steps get them.
CUSTOM_STEPS = "{{tasks.plan.outputs.parameters.custom-steps}}"


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
    first and last task so callers can chain more stages after it. The staging keys of custom
    DSP block steps are removed by the publish step on success; add
    :func:`add_feature_cleanup` to the exit handler to remove them whatever happened."""
    from hera_workflows.common import BLOCK_STEP_INPUTS, block_step_template, step_template

    plan = step_template(
        "features-plan",
        "features-plan",
        inputs=[*IDS, "job-id", "max-shards", "min-samples-per-shard"],
        outputs=["shards", "custom-steps"],
        memory="512Mi",
        memory_limit="2Gi",
        timeout_s=600,
    )
    shard = step_template(
        "features-shard",
        "features-shard",
        inputs=[*IDS, "shard", "custom-steps"],
        cpu="1",
        memory="2Gi",
        memory_limit="6Gi",
    )
    custom_dsp = block_step_template("custom-dsp")
    publish = step_template(
        "features-publish",
        "features-publish",
        inputs=[*IDS, "job-id", "custom-steps"],
        outputs=["summary"],
        memory="1Gi",
        memory_limit="6Gi",
    )
    a = plan(
        name="plan", arguments=wf_args(*IDS, "job-id", "max-shards", "min-samples-per-shard")
    )
    b = shard(
        name="shard",
        arguments={**wf_args(*IDS), "shard": "{{item}}", "custom-steps": CUSTOM_STEPS},
        with_param="{{tasks.plan.outputs.parameters.shards}}",
    )
    c = custom_dsp(
        name="custom-dsp",
        arguments={n: f"{{{{item.{n}}}}}" for n in BLOCK_STEP_INPUTS},
        with_param=CUSTOM_STEPS,
    )
    d = publish(
        name="publish", arguments={**wf_args(*IDS, "job-id"), "custom-steps": CUSTOM_STEPS}
    )
    a >> b >> c >> d
    return a, d


def add_feature_cleanup() -> Task:
    """Inside an open WorkflowTemplate + the exit handler's DAG: the ``features-cleanup``
    template and task (removes the job's custom block staging keys whatever happened)."""
    from hera_workflows.common import cleanup_template

    cleanup = cleanup_template("features-cleanup", ["job-id", "project-id"])
    return cleanup(name="features-cleanup", arguments=wf_args("job-id", "project-id"))


def generate_features_template() -> WorkflowTemplate:
    """The feature-generation pipeline (parameters: job-id, project-id, impulse-id, version)."""
    from hera.workflows import DAG, WorkflowTemplate

    from hera_workflows.common import exit_handler, pipeline_parameters

    with WorkflowTemplate(
        name=NAME,
        entrypoint="main",
        on_exit="exit",
        arguments=[*pipeline_parameters("impulse-id"), *feature_parameters()],
    ) as wt:
        record = exit_handler()
        with DAG(name="main"):
            add_feature_tasks()
        with DAG(name="exit"):
            add_feature_cleanup()
            record(name="record-status")
    return wt


TEMPLATES = {NAME: generate_features_template}
RESULTS = {NAME: RESULT}
