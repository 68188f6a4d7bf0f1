"""Pipeline steps of training and model testing (see ``hera_workflows/training.py``).

``train-prepare`` resolves the learning block and, for a custom one, stages its input for the
``learn-block`` step (:mod:`tinyforge.training.learn_step`); ``train-model`` trains (a built-in
block) or imports the custom block's output; ``train-cleanup`` (exit handler) removes the
staging keys; ``test-model`` tests a stored model.
"""

from __future__ import annotations

import json

from tinyforge.errors import InvalidArgument
from tinyforge.training.learn_step import cleanup_staging, prepare_learn_step
from tinyforge.training.testing import DEFAULT_THRESHOLD, test_model
from tinyforge.training.train import BlockStep, TrainRequest, train_model
from tinyforge.workflows.platform_env import step_platform
from tinyforge.workflows.steps import StepContext, StepReporter, cleanup_step, step


def _request(ctx: StepContext) -> TrainRequest:
    return TrainRequest.from_json({
        "impulse_id": ctx.int_arg("impulse-id"),
        "version": ctx.int_arg("version", 0),
        "learn_block": ctx.arg("learn-block", ""),
        # block params overriding the impulse's ("null" = the impulse's own)
        "params": ctx.json_arg("params") if "params" in ctx.args else None,
        "options": ctx.json_arg("options", {}),
    })


@step("train-prepare", help="Resolve the learning block; stage a custom block's input.")
def prepare(ctx: StepContext) -> None:
    """Outputs ``custom`` (``true``/``false``), ``block`` (the block type that trains; for a
    custom block ``custom:NAME@V``), and for the ``learn-block`` step ``image``,
    ``pod-spec-patch``, ``in-key``, ``out-key`` (placeholders for a built-in block)."""
    project_id, job_id = ctx.int_arg("project-id"), ctx.int_arg("job-id")
    platform = step_platform()
    try:
        plan = prepare_learn_step(platform.db, platform.objects, project_id, job_id,
                                  _request(ctx), reporter=StepReporter(ctx))
    finally:
        platform.close()
    if plan.custom:
        ctx.log("block arguments: " + " ".join(plan.args))
    ctx.output("custom", "true" if plan.custom else "false")
    ctx.output("block", plan.block_type)
    ctx.output("image", plan.image)
    ctx.output("pod-spec-patch", plan.pod_spec_patch)
    ctx.output("in-key", plan.in_key)
    ctx.output("out-key", plan.out_key)


cleanup_step("train-cleanup", "training", cleanup_staging)


@step("train-model", help="Train, quantize and store a model of an impulse's learning block.")
def train(ctx: StepContext) -> None:
    """Output ``model-id`` and ``summary`` (the training summary JSON). With ``custom`` true,
    the custom block ``block`` ran as its own step and wrote its model under ``out-key``:
    that model is imported instead of running the block here."""
    project_id = ctx.int_arg("project-id")
    block_step = None
    if ctx.arg("custom", "false") == "true":
        block_step = BlockStep(block_type=ctx.arg("block"), out_key=ctx.arg("out-key"))
    platform = step_platform()
    try:
        summary = train_model(
            platform.db,
            platform.objects,
            project_id,
            _request(ctx),
            reporter=StepReporter(ctx),
            job_id=ctx.int_arg("job-id", 0) or None,
            created_by_key_id=ctx.int_arg("created-by-key-id", 0) or None,
            block_step=block_step,
        )
    finally:
        platform.close()
    ctx.output("model-id", str(summary["model_id"]))
    ctx.output("summary", json.dumps(summary, sort_keys=True))


@step("test-model", help="Test a model on the project's testing category and store the run.")
def test(ctx: StepContext) -> None:
    """Output ``summary``: the test run (accuracies, confusion matrix, per-class metrics)."""
    project_id, model_id = ctx.int_arg("project-id"), ctx.int_arg("model-id")
    raw = ctx.arg("threshold", str(DEFAULT_THRESHOLD))
    try:
        threshold = float(raw)
    except ValueError:
        raise InvalidArgument(
            f"threshold must be a number, got {raw!r}", field="threshold"
        ) from None
    labels = ctx.json_arg("anomaly-labels", [])
    if not isinstance(labels, list):
        raise InvalidArgument(
            f"anomaly-labels must be a JSON list of labels, got {labels!r}", field="anomaly-labels"
        )
    platform = step_platform()
    try:
        summary = test_model(
            platform.db,
            platform.objects,
            project_id,
            model_id,
            threshold=threshold,
            anomaly_labels=[str(v) for v in labels],
            reporter=StepReporter(ctx),
            job_id=ctx.int_arg("job-id", 0) or None,
        )
    finally:
        platform.close()
    ctx.output("summary", json.dumps(summary, sort_keys=True, default=str))
