"""Bad input to training and testing: precise errors at the API or in WatchJob, and nothing
half-written ever visible (no model row, no model objects)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from tests.train_service.conftest import (
    FAILED,
    SUCCEEDED,
    generate,
    run_job,
    synthetic_dataset,
    synthetic_impulse,
    train,
)
from tinyforge.client import ApiError
from tinyforge.features.store import manifest_key, npy_bytes, npy_load, read_manifest
from tinyforge.store.models import Model, ModelTestRun
from tinyforge.v1 import common_pb2

CANCELLED = common_pb2.JOB_STATUS_CANCELLED


def _model_rows(platform: Any, project_id: int) -> int:
    with platform.ctx.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Model)
                            .where(Model.project_id == project_id)))


def _model_objects(platform: Any, project_id: int) -> list[str]:
    return [o.key for o in platform.ctx.objects.list(f"projects/{project_id}/models/")]


def _api_error(fn: Any, *args: Any, **kw: Any) -> ApiError:
    with pytest.raises(ApiError) as e:
        fn(*args, **kw)
    return e.value


def test_bad_hyper_parameters_and_impulse_state(platform, tenant, client) -> None:
    synthetic_dataset(client, tenant.project_id, train_per_class=2, test_per_class=1, n=120)
    imp = client.create_impulse("hp", synthetic_impulse())
    # no features yet: refused at once, naming what to do
    e = _api_error(client.start_training, imp.impulse_id)
    assert e.code == "FAILED_PRECONDITION" and "GenerateFeatures" in e.message
    generate(client, imp.impulse_id)
    for kw, field, text in [
        ({"epochs": 0}, "epochs", "1..10000"),
        ({"epochs": 10**6}, "epochs", "1..10000"),
        ({"learning_rate": -0.1}, "learning_rate", "(0, 10]"),
        ({"batch_size": 0}, "batch_size", "1..65536"),
        ({"validation_fraction": 0.95}, "validation_fraction", "[0, 0.9)"),
        ({"seed": -1}, "seed", "0..4294967295"),
        ({"params": {"dense_layers": "ten"}}, "params.dense_layers", "comma-separated"),
        ({"params": {"dropout": 2.0}}, "params.dropout", "dropout"),
        ({"params": {"no_such": 1}}, "params.no_such", "no_such"),
        ({"learn_block": "absent"}, "learn_block", "learning blocks: nn"),
    ]:
        e = _api_error(client.start_training, imp.impulse_id, **kw)
        assert (e.code, e.field) == ("INVALID_ARGUMENT", field), (kw, e)
        assert text in e.message, (kw, e.message)
    # an impulse without a learning block
    bare = synthetic_impulse(learning=[])
    imp2 = client.create_impulse("bare", bare)
    e = _api_error(client.start_training, imp2.impulse_id)
    assert e.code == "FAILED_PRECONDITION" and "no learning block" in e.message
    # an unknown learning block type in the impulse
    odd = synthetic_impulse(learning=[{"name": "x", "type": "svm", "inputs": ["stats"]}])
    imp3 = client.create_impulse("odd", odd)
    e = _api_error(client.start_training, imp3.impulse_id)
    assert e.code == "FAILED_PRECONDITION" and "'svm'" in e.message and "classifier" in e.message
    assert _model_rows(platform, tenant.project_id) == 0


def test_features_of_another_impulse_version(platform, tenant, client) -> None:
    synthetic_dataset(client, tenant.project_id, train_per_class=2, test_per_class=1, n=120)
    imp = client.create_impulse("versions", synthetic_impulse())
    generate(client, imp.impulse_id)
    assert client.update_impulse(imp.impulse_id, synthetic_impulse(fft_length=64)) \
        .impulse.version == 2
    e = _api_error(client.start_training, imp.impulse_id)  # latest = version 2
    assert e.code == "FAILED_PRECONDITION" and e.field == "version"
    assert "version(s) 1" in e.message and "now at version 2" in e.message
    # version 1 is still trainable by naming it
    job, result, _ = train(client, imp.impulse_id, version=1, epochs=1)
    assert job.status == SUCCEEDED, job.error
    assert client.get_model(int(result["model_id"])).impulse_version == 1


def test_data_problems_fail_the_job_cleanly(platform, tenant, client) -> None:
    # one class only
    ds = synthetic_dataset(client, tenant.project_id, train_per_class=3, test_per_class=1,
                           n=120, labels=("slow",))
    imp = client.create_impulse("data", synthetic_impulse())
    generate(client, imp.impulse_id)
    job, _, _ = train(client, imp.impulse_id, epochs=1)
    assert job.status == FAILED
    assert "only one class ('slow'" in job.error and "at least 2 classes" in job.error

    # every sample in testing: no training windows
    ids = sorted(ds.samples)
    client.move_samples(ids, "testing")
    generate(client, imp.impulse_id)
    job, _, _ = train(client, imp.impulse_id, epochs=1)
    assert job.status == FAILED and "no labelled training windows" in job.error

    # NaN in the published features (a corrupted feature file): named by sample and window
    client.move_samples(ids, "training")
    fast = [ds.add("fast", 120, 100 + i) for i in range(3)]
    generate(client, imp.impulse_id)
    objects = platform.ctx.objects
    m = read_manifest(objects, tenant.project_id, imp.impulse_id, 1, "stats")
    X = npy_load(objects.get_bytes(m["files"]["X"]["key"]))
    sids = npy_load(objects.get_bytes(m["files"]["sample_ids"]["key"]))
    row = int(np.flatnonzero(sids == fast[1])[2])
    X[row, 4] = np.nan
    key = m["files"]["X"]["key"].replace("X.npy", "X-nan.npy")
    info = objects.put_bytes(key, npy_bytes(X))
    m["files"]["X"] = {"key": key, "sha256": info.sha256, "size": info.size}
    objects.put_bytes(manifest_key(tenant.project_id, imp.impulse_id, 1, "stats"),
                      json.dumps(m).encode(), overwrite=True)
    job, _, lines = train(client, imp.impulse_id, epochs=1)
    assert job.status == FAILED
    assert "NaN or infinite" in job.error and f"window 2 of sample {fast[1]}" in job.error
    assert _model_rows(platform, tenant.project_id) == 0
    assert _model_objects(platform, tenant.project_id) == []

    # fixed features: training works; testing with a label unknown to the model fails
    generate(client, imp.impulse_id)
    objects.delete(key)
    job, result, _ = train(client, imp.impulse_id, epochs=2)
    assert job.status == SUCCEEDED, job.error
    model_id = int(result["model_id"])
    jump = ds.add("slow", 120, 200, category="testing")
    client.update_sample(jump, label="jump")
    resp = client.test_model(model_id)
    tjob, _, _ = run_job(client, resp.job_id)
    assert tjob.status == FAILED
    assert f"'jump' (samples {jump})" in tjob.error and "knows fast, slow" in tjob.error
    with platform.ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(ModelTestRun)
                        .where(ModelTestRun.model_id == model_id)) == 0
    assert [k for k in _model_objects(platform, tenant.project_id) if "/tests/" in k] == []
    e = _api_error(client.get_test_result, model_id)
    assert e.code == "NOT_FOUND" and "TestModel" in e.message
    # without testing data at all
    client.delete_samples([jump] + [i for i, v in ds.samples.items() if v[2] == "testing"])
    tjob, _, _ = run_job(client, client.test_model(model_id).job_id)
    assert tjob.status == FAILED and "no testing data" in tjob.error
    e = _api_error(client.test_model, model_id, threshold=1.5)
    assert e.code == "INVALID_ARGUMENT" and e.field == "threshold"
    e = _api_error(client.get_model, 10**9)
    assert e.code == "NOT_FOUND" and e.field == "model_id"


def test_failure_while_storing_leaves_no_model(platform, tenant, client, monkeypatch) -> None:
    synthetic_dataset(client, tenant.project_id, train_per_class=2, test_per_class=1, n=120)
    imp = client.create_impulse("inject", synthetic_impulse())
    generate(client, imp.impulse_id)
    objects = platform.ctx.objects
    real_put = objects.put_bytes
    stored: list[str] = []
    prefix = f"projects/{tenant.project_id}/models/"

    def failing_put(key: str, data: bytes, **kw: Any) -> Any:
        if key.startswith(prefix):
            if len(stored) == 3:
                raise OSError("injected: disk full")
            stored.append(key)
        return real_put(key, data, **kw)

    monkeypatch.setattr(objects, "put_bytes", failing_put)
    job, _, _ = train(client, imp.impulse_id, epochs=1)
    monkeypatch.undo()
    assert job.status == FAILED and "injected: disk full" in job.error
    assert len(stored) == 3  # some files were written before the failure...
    assert _model_objects(platform, tenant.project_id) == []  # ...and removed
    assert _model_rows(platform, tenant.project_id) == 0
    assert client.list_models() == []
    # the next run stores a complete model
    job, result, _ = train(client, imp.impulse_id, epochs=1)
    assert job.status == SUCCEEDED, job.error
    names = {f.name for f in client.get_model(int(result["model_id"])).files}
    keys = _model_objects(platform, tenant.project_id)
    assert len(keys) == len(names)


def test_cancel_training(platform, tenant, client) -> None:
    synthetic_dataset(client, tenant.project_id, train_per_class=2, test_per_class=1, n=120)
    imp = client.create_impulse("cancel", synthetic_impulse())
    generate(client, imp.impulse_id)
    resp = client.start_training(imp.impulse_id, epochs=5000)
    final = None
    for event in client.watch_job(resp.job_id):
        if event.HasField("log") and event.log.line.startswith("epoch 2/"):
            client.cancel_job(resp.job_id)
        elif event.HasField("job"):
            final = event.job
    assert final is not None and final.status == CANCELLED
    assert _model_rows(platform, tenant.project_id) == 0
    assert _model_objects(platform, tenant.project_id) == []
