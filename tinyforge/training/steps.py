"""Pipeline steps of training and model testing (see ``hera_workflows/training.py``)."""

from __future__ import annotations

import json

from tinyforge.errors import InvalidArgument
from tinyforge.training.testing import DEFAULT_THRESHOLD, test_model
from tinyforge.training.train import TrainRequest, train_model
from tinyforge.workflows.platform_env import step_platform
from tinyforge.workflows.steps import StepContext, StepReporter, step


@step("train-model", help="Train, quantize and store a model of an impulse's learning block.")
def train(ctx: StepContext) -> None:
    """Output ``model-id`` and ``summary`` (the training summary JSON)."""
    project_id = ctx.int_arg("project-id")
    request = {
        "impulse_id": ctx.int_arg("impulse-id"),
        "version": ctx.int_arg("version", 0),
        "learn_block": ctx.arg("learn-block", ""),
        # block params overriding the impulse's ("null" = the impulse's own)
        "params": ctx.json_arg("params") if "params" in ctx.args else None,
        "options": ctx.json_arg("options", {}),
    }
    platform = step_platform()
    try:
        summary = train_model(
            platform.db,
            platform.objects,
            project_id,
            TrainRequest.from_json(request),
            reporter=StepReporter(ctx),
            job_id=ctx.int_arg("job-id", 0) or None,
            created_by_key_id=ctx.int_arg("created-by-key-id", 0) or None,
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
