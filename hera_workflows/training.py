"""Training pipelines as Argo WorkflowTemplates.

``tinyforge-retrain`` chains the stages of a model's life on new data: feature generation
(sharded, incremental), training with int8 quantization, and model testing on the testing
category. The TrainService runs the training and testing stages one at a time as jobs; this
pipeline is what a schedule or an automation submits to refresh a model end to end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hera_workflows.features import IDS, add_feature_tasks, feature_parameters, wf_args

if TYPE_CHECKING:
    from hera.workflows import WorkflowTemplate

RETRAIN = "tinyforge-retrain"
#: (task, output parameter) holding the job result: the test step's summary.
RESULT = ("test", "summary")


def retrain_template() -> WorkflowTemplate:
    """features → train → test (parameters: job-id, project-id, impulse-id, version, ...)."""
    from hera.workflows import DAG, Parameter, WorkflowTemplate

    from hera_workflows.common import exit_handler, pipeline_parameters, step_template

    with WorkflowTemplate(
        name=RETRAIN,
        entrypoint="main",
        on_exit="record-status",
        arguments=[
            *pipeline_parameters("impulse-id"),
            *feature_parameters(),
            Parameter(name="learn-block", value=""),
            Parameter(name="options", value="{}"),  # TrainOptions as JSON (epochs, seed, ...)
            Parameter(name="threshold", value="0.6"),
        ],
    ) as wt:
        exit_handler()
        train = step_template(
            "train-model",
            "train-model",
            inputs=[*IDS, "learn-block", "options", "job-id"],
            outputs=["model-id", "summary"],
            cpu="2",
            memory="4Gi",
            memory_limit="8Gi",
            timeout_s=6 * 3600,
        )
        test = step_template(
            "test-model",
            "test-model",
            inputs=["project-id", "model-id", "threshold", "job-id"],
            outputs=["summary"],
            cpu="1",
            memory="2Gi",
            memory_limit="6Gi",
        )
        with DAG(name="main"):
            _first, features_done = add_feature_tasks()
            t = train(name="train", arguments=wf_args(*IDS, "learn-block", "options", "job-id"))
            v = test(
                name="test",
                arguments={
                    **wf_args("project-id", "threshold", "job-id"),
                    "model-id": "{{tasks.train.outputs.parameters.model-id}}",
                },
            )
            features_done >> t >> v
    return wt


TEMPLATES = {RETRAIN: retrain_template}
RESULTS = {RETRAIN: RESULT}
