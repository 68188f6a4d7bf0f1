"""Training pipelines as Argo WorkflowTemplates.

- ``tinyforge-train``: train, quantize and store a model of an impulse's learning block (the
  TrainService's StartTraining job, engine ``local`` / ``argo``);
- ``tinyforge-test``: test a stored model on the project's testing category (TestModel);
- ``tinyforge-retrain`` chains the stages of a model's life on new data: feature generation
  (sharded, incremental), training with int8 quantization, model testing on the testing
  category and, when ``build-format`` is set, a deployment build of the new model. It is what a
  schedule or an automation submits to refresh a model end to end.

Training in both is three tasks (:func:`add_train_tasks`; see
:mod:`tinyforge.training.learn_step`): ``train-prepare`` resolves the learning block and, for a
custom block, stages its input; ``learn-block`` runs a custom block from its own image
(:func:`hera_workflows.common.block_step_template`, only ``when`` the block is custom: a
training pod cannot run containers); ``train`` trains a built-in block, or imports the model
the custom block wrote, once ``learn-block`` Succeeded or was Skipped. The exit handler removes
the job's staging keys (``train-cleanup``) and records the status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hera_workflows.features import IDS, add_feature_tasks, feature_parameters, wf_args

if TYPE_CHECKING:
    from hera.workflows import Container, Task, WorkflowTemplate

TRAIN = "tinyforge-train"
TEST = "tinyforge-test"
RETRAIN = "tinyforge-retrain"
#: (task, output parameter) holding each pipeline's job result.
TRAIN_RESULT = ("train", "summary")
TEST_RESULT = ("test", "summary")
RESULT = ("test", "summary")  # retrain: the test step's summary
TRAIN_REQUEST = [*IDS, "learn-block", "params", "options", "job-id"]
TRAIN_INPUTS = [*TRAIN_REQUEST, "created-by-key-id"]
#: What ``train-prepare`` outputs: whether the block is custom, the block type that trains,
#: and the inputs of the ``learn-block`` step.
PREPARE_OUTPUTS = ["custom", "block", "image", "pod-spec-patch", "in-key", "out-key"]
#: ``train-model`` inputs taken from ``train-prepare``.
FROM_PREPARE = ["custom", "block", "out-key"]
#: ``learn-block`` runs only for a custom learning block (Argo ``when``).
LEARN_BLOCK_WHEN = "'{{tasks.train-prepare.outputs.parameters.custom}}' == 'true'"
#: ``train`` runs once the custom block ran, or when there was none to run.
TRAIN_DEPENDS = "(learn-block.Succeeded || learn-block.Skipped)"
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
        inputs=[*TRAIN_INPUTS, *FROM_PREPARE],
        outputs=["model-id", "summary"],
        cpu="2",
        memory="4Gi",
        memory_limit="8Gi",
        timeout_s=6 * 3600,
    )


def add_train_tasks(train_args: dict[str, str]) -> tuple[Task, Task]:
    """Inside an open WorkflowTemplate + DAG: the training templates and the tasks
    ``train-prepare`` → ``learn-block`` (custom blocks only) → ``train``; returns the first and
    the last task. ``train_args``: the ``train`` task's arguments (every name in
    :data:`TRAIN_INPUTS`). The pipeline's exit handler must run :func:`cleanup_container`."""
    from hera_workflows.common import block_step_arguments, block_step_template, step_template

    prepare = step_template(
        "train-prepare",
        "train-prepare",
        inputs=TRAIN_REQUEST,
        outputs=PREPARE_OUTPUTS,
        cpu="500m",
        memory="2Gi",
        memory_limit="6Gi",
        timeout_s=3600,
    )
    learn = block_step_template("learn-block")
    train = train_container()
    p = prepare(name="train-prepare", arguments={k: train_args[k] for k in TRAIN_REQUEST})
    b = learn(name="learn-block", when=LEARN_BLOCK_WHEN,
              arguments=block_step_arguments("train-prepare"))
    t = train(
        name="train",
        depends=TRAIN_DEPENDS,
        arguments={
            **train_args,
            **{k: f"{{{{tasks.train-prepare.outputs.parameters.{k}}}}}" for k in FROM_PREPARE},
        },
    )
    p >> b
    return p, t


def cleanup_container() -> Container:
    """The ``train-cleanup`` template: removes the job's staging keys (exit handler)."""
    from hera_workflows.common import cleanup_template

    return cleanup_template("train-cleanup")


def _exit_dag(record: Container, *, retrain: bool = False) -> None:
    """The ``exit`` handler DAG: staging cleanup and the job's status (inside the template).
    ``retrain`` adds the feature and build stages' cleanups (custom block staging keys,
    builds left running)."""
    from hera.workflows import DAG

    cleanup = cleanup_container()
    with DAG(name="exit"):
        cleanup(name="cleanup", arguments=wf_args("project-id", "job-id"))
        if retrain:
            from hera_workflows.build import add_build_cleanup
            from hera_workflows.features import add_feature_cleanup

            add_feature_cleanup()
            add_build_cleanup(build_id="0", when=BUILD_WHEN)
        record(name="record-status")


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
        on_exit="exit",
        annotations={_DESCRIPTION: "Train, quantize (int8) and store a model of an impulse."},
        arguments=[
            *pipeline_parameters("impulse-id"),
            Parameter(name="version", value="0", description="impulse version (0 = latest)"),
            *train_parameters(),
            Parameter(name="created-by-key-id", value="0", description="API key to credit"),
        ],
    ) as wt:
        record = exit_handler()
        with DAG(name="main"):
            add_train_tasks(wf_args(*TRAIN_INPUTS))
        _exit_dag(record)
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

    from hera_workflows.build import add_build_tasks
    from hera_workflows.common import exit_handler, pipeline_parameters

    with WorkflowTemplate(
        name=RETRAIN,
        entrypoint="main",
        on_exit="exit",
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
        record = exit_handler()
        test = test_container()
        model = "{{tasks.train.outputs.parameters.model-id}}"
        with DAG(name="main"):
            _first, features_done = add_feature_tasks()
            prepare, t = add_train_tasks(
                {**wf_args(*TRAIN_REQUEST), "created-by-key-id": "0"}
            )
            features_done >> prepare
            v = test(
                name="test",
                arguments={
                    **wf_args("project-id", "threshold", "anomaly-labels", "job-id"),
                    "model-id": model,
                },
            )
            b, _built = add_build_tasks(  # build → deploy-block (custom) → build-finish
                {
                    **wf_args("project-id", "job-id"),
                    **{k: f"{{{{workflow.parameters.build-{k}}}}}" for k in BUILD_STAGE_ARGS},
                    "build-id": "0",
                    "model-id": model,
                },
                when=BUILD_WHEN,
            )
            features_done >> t >> v >> b
        _exit_dag(record, retrain=True)
    return wt

TEMPLATES = {TRAIN: train_template, TEST: test_template, RETRAIN: retrain_template}
RESULTS = {TRAIN: TRAIN_RESULT, TEST: TEST_RESULT, RETRAIN: RESULT}
