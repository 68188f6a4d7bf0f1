"""Training pipelines as Argo WorkflowTemplates.

- ``tinyforge-train``: train, quantize and store a model of an impulse's learning block (the
  TrainService's StartTraining job, engine ``local`` / ``argo``);
- ``tinyforge-test``: test a stored model on the project's testing category (TestModel);
- ``tinyforge-retrain`` chains the stages of a model's life on new data: feature generation
  (sharded, incremental), training with int8 quantization, model testing on the testing
  category and, when ``build-format`` is set, a deployment build of the new model. It is what a
  schedule or an automation submits to refresh a model end to end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hera_workflows.features import IDS, add_feature_tasks, feature_parameters, wf_args

if TYPE_CHECKING:
    from hera.workflows import Container, WorkflowTemplate

TRAIN = "tinyforge-train"
TEST = "tinyforge-test"
RETRAIN = "tinyforge-retrain"
#: (task, output parameter) holding each pipeline's job result.
TRAIN_RESULT = ("train", "summary")
TEST_RESULT = ("test", "summary")
RESULT = ("test", "summary")  # retrain: the test step's summary
TRAIN_INPUTS = [*IDS, "learn-block", "params", "options", "created-by-key-id", "job-id"]
TEST_INPUTS = ["project-id", "model-id", "threshold", "anomaly-labels", "job-id"]
#: The retrain pipeline's build stage runs when this is true (Argo ``when``; quoted because
#: a format name such as ``c-library`` is no govaluate literal).
BUILD_WHEN = "'{{workflow.parameters.build-format}}' != ''"
#: Build inputs the retrain pipeline takes from its ``build-<name>`` parameters (the others:
#: project-id, job-id, build-id 0 = a new build, model-id = the model just trained).
BUILD_STAGE_ARGS = ("format", "target", "precision", "options", "timeout-s")
_DESCRIPTION = "workflows.argoproj.io/description"


def train_container() -> Container:
    """The ``train-model`` template (inside an open WorkflowTemplate)."""
    from hera_workflows.common import step_template

    return step_template(
        "train-model",
        "train-model",
        inputs=TRAIN_INPUTS,
        outputs=["model-id", "summary"],
        cpu="2",
        memory="4Gi",
        memory_limit="8Gi",
        timeout_s=6 * 3600,
    )


def test_container() -> Container:
    """The ``test-model`` template (inside an open WorkflowTemplate)."""
    from hera_workflows.common import step_template

    return step_template(
        "test-model",
        "test-model",
        inputs=TEST_INPUTS,
        outputs=["summary"],
        cpu="1",
        memory="2Gi",
        memory_limit="6Gi",
    )


def train_parameters() -> list[Any]:
    """Workflow parameters of training besides the ids, with defaults."""
    from hera.workflows import Parameter

    return [
        Parameter(name="learn-block", value="", description='learning block ("" = the first)'),
        Parameter(name="params", value="null", description="block params JSON (null = impulse's)"),
        Parameter(name="options", value="{}", description="TrainOptions JSON (epochs, seed, ...)"),
    ]


def test_parameters() -> list[Any]:
    """Workflow parameters of model testing besides the ids, with defaults."""
    from hera.workflows import Parameter

    return [
        Parameter(name="threshold", value="0.6", description="confidence threshold, 0..1"),
        Parameter(name="anomaly-labels", value="[]", description="JSON list of anomaly labels"),
    ]


def train_template() -> WorkflowTemplate:
    """Training only (parameters: job-id, project-id, impulse-id, version, learn-block, ...)."""
    from hera.workflows import DAG, Parameter, WorkflowTemplate

    from hera_workflows.common import exit_handler, pipeline_parameters

    with WorkflowTemplate(
        name=TRAIN,
        entrypoint="main",
        on_exit="record-status",
        annotations={_DESCRIPTION: "Train, quantize (int8) and store a model of an impulse."},
        arguments=[
            *pipeline_parameters("impulse-id"),
            Parameter(name="version", value="0", description="impulse version (0 = latest)"),
            *train_parameters(),
            Parameter(name="created-by-key-id", value="0", description="API key to credit"),
        ],
    ) as wt:
        exit_handler()
        train = train_container()
        with DAG(name="main"):
            train(name="train", arguments=wf_args(*TRAIN_INPUTS))
    return wt


def test_template() -> WorkflowTemplate:
    """Model testing only (parameters: job-id, project-id, model-id, threshold, ...)."""
    from hera.workflows import DAG, WorkflowTemplate

    from hera_workflows.common import exit_handler, pipeline_parameters

    with WorkflowTemplate(
        name=TEST,
        entrypoint="main",
        on_exit="record-status",
        annotations={_DESCRIPTION: "Test a model on the project's testing data."},
        arguments=[*pipeline_parameters("model-id"), *test_parameters()],
    ) as wt:
        exit_handler()
        test = test_container()
        with DAG(name="main"):
            test(name="test", arguments=wf_args(*TEST_INPUTS))
    return wt


def retrain_template() -> WorkflowTemplate:
    """features → train → test [→ build] (parameters: job-id, project-id, impulse-id, ...)."""
    from hera.workflows import DAG, Parameter, WorkflowTemplate

    from hera_workflows.build import build_container
    from hera_workflows.common import exit_handler, pipeline_parameters

    with WorkflowTemplate(
        name=RETRAIN,
        entrypoint="main",
        on_exit="record-status",
        annotations={
            _DESCRIPTION: "Refresh a model end to end: features, training, testing and an "
            "optional deployment build (build-format)."
        },
        arguments=[
            *pipeline_parameters("impulse-id"),
            *feature_parameters(),
            *train_parameters(),
            *test_parameters(),
            Parameter(name="build-format", value="", description='deployment format ("" = none)'),
            Parameter(name="build-target", value="", description="target of the build"),
            Parameter(name="build-precision", value="int8", description="int8 or float32"),
            Parameter(name="build-options", value="{}", description="format options JSON"),
            Parameter(name="build-timeout-s", value="0", description="build limit (0 = 600 s)"),
        ],
    ) as wt:
        exit_handler()
        train = train_container()
        test = test_container()
        build = build_container()
        model = "{{tasks.train.outputs.parameters.model-id}}"
        with DAG(name="main"):
            _first, features_done = add_feature_tasks()
            t = train(
                name="train",
                arguments={
                    **wf_args(*IDS, "learn-block", "params", "options", "job-id"),
                    "created-by-key-id": "0",
                },
            )
            v = test(
                name="test",
                arguments={
                    **wf_args("project-id", "threshold", "anomaly-labels", "job-id"),
                    "model-id": model,
                },
            )
            b = build(
                name="build",
                when=BUILD_WHEN,
                arguments={
                    **wf_args("project-id", "job-id"),
                    **{k: f"{{{{workflow.parameters.build-{k}}}}}" for k in BUILD_STAGE_ARGS},
                    "build-id": "0",
                    "model-id": model,
                },
            )
            features_done >> t >> v >> b
    return wt

TEMPLATES = {TRAIN: train_template, TEST: test_template, RETRAIN: retrain_template}
RESULTS = {TRAIN: TRAIN_RESULT, TEST: TEST_RESULT, RETRAIN: RESULT}
