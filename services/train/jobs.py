"""The ``train.train_model`` and ``train.test_model`` job kinds: :func:`train_model` /
:func:`test_model` in-process, or the ``tinyforge-train`` / ``tinyforge-test`` pipelines, per
``TINYFORGE_WORKFLOW_ENGINE`` (see :mod:`hera_workflows.jobs`).

Job functions reach the DB and object store through ``job.platform``: the platform whose job
manager runs the job, so several platforms in one process (tests) each run their own jobs.
"""

from __future__ import annotations

import json
from typing import Any

from hera_workflows.jobs import run_pipeline_job
from hera_workflows.training import TEST, TRAIN
from tinyforge.context import PlatformContext
from tinyforge.errors import InvalidArgument
from tinyforge.jobs import JobContext, register_job_kind
from tinyforge.training.testing import test_model
from tinyforge.training.train import TrainRequest, train_model

TRAIN_MODEL = "train.train_model"
TEST_MODEL = "train.test_model"


def bind(ctx: PlatformContext) -> None:
    """Register the job kinds (jobs reach their platform through ``job.platform``)."""
    register_job_kind(TRAIN_MODEL, _train_job, replace=True)
    register_job_kind(TEST_MODEL, _test_job, replace=True)


def _train_job(job: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx = job.platform
    req = TrainRequest.from_json(params.get("request") or {})
    key_id = params.get("created_by_key_id")
    return run_pipeline_job(
        job,
        ctx,
        TRAIN,
        {
            "impulse-id": req.impulse_id,
            "version": req.version,
            "learn-block": req.learn_block,
            "params": json.dumps(req.params, sort_keys=True),
            "options": json.dumps(req.options.to_json(), sort_keys=True),
            "created-by-key-id": int(key_id or 0),
        },
        inprocess=lambda: train_model(
            ctx.db,
            ctx.objects,
            job.project_id,
            req,
            reporter=job,
            job_id=job.job_id,
            created_by_key_id=key_id,
        ),
    )


def _test_job(job: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx = job.platform
    try:
        model_id = int(params["model_id"])
        threshold = float(params.get("threshold", 0.6))
        labels = [str(v) for v in params.get("anomaly_labels", [])]
    except (KeyError, TypeError, ValueError):
        raise InvalidArgument(
            "job params need model_id (threshold, anomaly_labels)", field="params"
        ) from None
    job.progress(0.0, f"testing model {model_id}")
    return run_pipeline_job(
        job,
        ctx,
        TEST,
        {
            "model-id": model_id,
            "threshold": repr(threshold),  # repr: the float back exactly in the step
            "anomaly-labels": json.dumps(labels),
        },
        inprocess=lambda: test_model(
            ctx.db,
            ctx.objects,
            job.project_id,
            model_id,
            threshold=threshold,
            anomaly_labels=labels,
            reporter=job,
            job_id=job.job_id,
        ),
    )
