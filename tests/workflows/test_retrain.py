"""The retrain pipeline (features → train → test) run by the local runner on a small real
dataset gives the same model and test results as running the stages directly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hera_workflows.local import run_pipeline
from hera_workflows.training import RETRAIN
from tinyforge.data.importers import import_har_stm32
from tinyforge.features.generate import generate_features
from tinyforge.training import testing as model_testing
from tinyforge.training.train import TrainRequest, train_model

DATASETS = (Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets").resolve()
OPTIONS = {"epochs": 8, "learning_rate": 0.01, "seed": 3}


def _har_subset(per_class: int = 5) -> list:
    root = DATASETS / "har_stm32_accel"
    if not root.is_dir():
        pytest.skip(f"real dataset har_stm32_accel not found at {root} (../shared absent)")
    items = sorted(import_har_stm32(root), key=lambda it: it.path.name)
    out = []
    for label in ("running", "stationary", "walking"):
        out += [it for it in items if it.label == label][:per_class]
    return out


def test_retrain_pipeline_equals_the_stages_run_directly(platform, tenant, client) -> None:
    items = _har_subset()
    for i, it in enumerate(items):  # every 5th file of a class is held out for testing
        client.upload_file(
            it.path,
            label=it.label,
            frequency_hz=it.frequency_hz,
            category="testing" if i % 5 == 0 else "training",
        )
    first = client.list_samples()[0].id
    axes = [a.name for a in client.get_sample(first).axes]
    imp = client.create_impulse(
        "har-retrain",
        {
            "input": {
                "type": "time-series",
                "window_size_ms": 2000,
                "window_stride_ms": 1000,
                "frequency_hz": 26,
                "axes": axes,
            },
            "processing": [
                {"name": "spectral", "block": "spectral_analysis", "params": {"scale_axes": 0.001}}
            ],
            "learning": [{"name": "nn", "type": "classifier", "inputs": ["spectral"]}],
        },
    )
    with platform.ctx.db.session() as s:
        job_id = platform.ctx.jobs.create(s, tenant.project_id, "dsp.generate_features", {}).id
    lines: list[str] = []
    run = run_pipeline(
        platform.ctx,
        RETRAIN,
        {
            "job-id": str(job_id),
            "project-id": str(tenant.project_id),
            "impulse-id": str(imp.impulse_id),
            "options": json.dumps(OPTIONS),
            "min-samples-per-shard": "5",
            "max-shards": "2",
            "threshold": "0.0",
        },
        log=lines.append,
    )
    assert run.phase == "Succeeded", run.message + "\n" + "\n".join(lines[-30:])
    assert len(run.node("shard").children) == 2
    assert any(ln.startswith("[train] epoch 8") for ln in lines), lines[-40:]
    piped_model = int(run.node("train").outputs["model-id"])
    piped_test = json.loads(run.node("test").outputs["summary"])

    # The same stages in this process, straight through the library.
    ctx = platform.ctx
    generate_features(ctx.db, ctx.objects, tenant.project_id, imp.impulse_id)
    direct = train_model(
        ctx.db,
        ctx.objects,
        tenant.project_id,
        TrainRequest.from_json({"impulse_id": imp.impulse_id, "options": OPTIONS}),
    )
    assert direct["model_id"] != piped_model
    direct_test = model_testing.test_model(
        ctx.db, ctx.objects, tenant.project_id, direct["model_id"], threshold=0.0
    )
    for key in ("windows", "samples", "float_accuracy", "int8_accuracy", "dataset_hash"):
        assert piped_test[key] == direct_test[key], key

    # Same predictions per testing sample (the .tflite bytes themselves may differ: Keras
    # numbers layer names per process, and names are stored in the file).
    def predictions(model_id: int) -> list[tuple[int, str, str]]:
        tr = client.get_test_result(model_id)
        return sorted((r.sample_id, r.predicted_float, r.predicted_int8) for r in tr.samples)

    assert predictions(piped_model) == predictions(direct["model_id"])
    assert client.get_model(piped_model).int8_bytes > 0
