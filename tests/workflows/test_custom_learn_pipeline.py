"""A custom learn block as a step of its own in the training pipeline (``tinyforge-train``).

Engines ``local`` and ``argo`` cannot (cluster) or need not run the block inside the training
process: ``train-prepare`` stages the split, ``learn-block`` runs the block's image (here:
the local runner runs the registered version's local command), ``train`` imports the model it
wrote, the exit handler removes the staging keys. Through the real API:

- keras-dense (seeded) gives, step by step, the very model the in-process engine stores, and
  that model tests and classifies;
- a block that fails or writes no model fails the job, naming the step or block and the
  problem; nothing is stored and no staging key survives;
- a built-in learning block goes through the same pipeline (``learn-block`` skipped);
- with engine ``argo`` StartTraining accepts a custom block that only has an image (a
  platform pod cannot run it, the pipeline can).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hera_workflows import PIPELINES
from hera_workflows.training import RETRAIN, TRAIN
from tests.api.conftest import RunningPlatform, start_platform, stop_platform
from tests.blocks.conftest import EXAMPLE_BLOCKS, make_block
from tests.dsp_service.conftest import AXES, FS, envelope
from tests.train_service.conftest import (
    FAILED,
    SUCCEEDED,
    generate,
    run_job,
    synthetic_dataset,
    synthetic_impulse,
    train,
)
from tests.workflows.argo_stub import FakeArgo, node
from tinyforge.quantize.runner import TFLiteModel
from tinyforge.workflows.argo import JOB_LABEL
from tinyforge.workflows.expressions import evaluate_when, substitute

KERAS_DENSE = EXAMPLE_BLOCKS / "keras-dense"
EPOCHS = 15
PARAMS = {"hidden_units": 16, "quantize": True}


@pytest.fixture(scope="module")
def local_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    p = start_platform(tmp_path_factory.mktemp("local-custom-learn"), workflow_engine="local")
    yield p
    stop_platform(p)


def _project(p: RunningPlatform, block_type: str, params: dict | None = None, *,
             block_dir: Path | None = None, per_class: int = 5) -> tuple:
    """A new tenant with the synthetic motion set, an impulse whose learning block is
    ``block_type`` (registered from ``block_dir`` when given) and its features:
    (tenant, client, dataset, impulse)."""
    tenant = p.new_tenant()
    client = tenant.client(default_project_id=tenant.project_id)
    if block_dir is not None:
        client.register_block_dir(block_dir, name=block_type.removeprefix("custom:"))
    ds = synthetic_dataset(client, tenant.project_id, train_per_class=per_class,
                           test_per_class=2)
    learning = [{"name": "nn", "type": block_type, "inputs": ["spectral", "stats"],
                 "params": params or {}}]
    imp = client.create_impulse("custom-learn-pipeline", synthetic_impulse(learning))
    job, _, _ = generate(client, imp.impulse_id)
    assert job.status == SUCCEEDED, job.error
    return tenant, client, ds, imp


def _staged(p: RunningPlatform, project_id: int) -> list[str]:
    return [o.key for o in p.ctx.objects.list(f"projects/{project_id}/train/")]


def _nothing_stored(p: RunningPlatform, tenant: Any, client: Any) -> None:
    assert client.list_models() == []
    assert list(p.ctx.objects.list(f"projects/{tenant.project_id}/models/")) == []


def test_templates_run_the_block_as_a_step_only_for_custom_blocks() -> None:
    for name in (TRAIN, RETRAIN):
        spec = PIPELINES[name]().to_dict()["spec"]
        templates = {t["name"]: t for t in spec["templates"]}
        tasks = {t["name"]: t for t in templates["main"]["dag"]["tasks"]}
        learn = tasks["learn-block"]
        assert learn["template"] == "learn-block" and learn["depends"] == "train-prepare"
        block = templates["learn-block"]
        assert block["container"]["image"] == "{{inputs.parameters.image}}"
        assert block["podSpecPatch"] == "{{inputs.parameters.pod-spec-patch}}"
        for custom, runs in (("true", True), ("false", False)):
            scope = {"tasks.train-prepare.outputs.parameters.custom": custom}
            assert evaluate_when(substitute(learn["when"], scope)) is runs
        # train: after the block succeeded or was skipped, never after it failed
        assert "learn-block.Succeeded || learn-block.Skipped" in tasks["train"]["depends"]
        args = {a["name"]: a["value"] for a in tasks["train"]["arguments"]["parameters"]}
        assert args["out-key"] == "{{tasks.train-prepare.outputs.parameters.out-key}}"
        # the exit handler removes the staging keys and records the status
        assert spec["onExit"] == "exit"
        exit_tasks = {t["template"] for t in templates["exit"]["dag"]["tasks"]}
        stages = {"features-cleanup", "build-cleanup"} if name == RETRAIN else set()
        assert exit_tasks == {"train-cleanup", "record-status", *stages}


def test_keras_dense_runs_as_its_own_step_and_stores_the_inprocess_model(
    platform, local_platform
) -> None:
    runs: dict[str, dict[str, Any]] = {}
    for engine, p in (("inprocess", platform), ("local", local_platform)):
        assert p.ctx.settings.workflow_engine == engine
        tenant, client, ds, imp = _project(p, "custom:keras-dense", PARAMS,
                                           block_dir=KERAS_DENSE)
        job, result, lines = train(client, imp.impulse_id, epochs=EPOCHS, learning_rate=0.01)
        assert job.status == SUCCEEDED, job.error + "\n".join(lines[-30:])
        model = client.get_model(int(result["model_id"]))
        runs[engine] = {"p": p, "tenant": tenant, "client": client, "ds": ds, "lines": lines,
                        "result": result, "model": model,
                        "int8": client.download_model_file(model.id, "model_int8.tflite"),
                        "info": json.loads(model.metrics_json)["extra"]["custom_block"]}
    inproc, local = runs["inprocess"], runs["local"]
    lines = local["lines"]

    # the block ran as the pipeline's learn-block step, not inside the train step
    for step in ("train-prepare", "learn-block", "train"):
        assert f"step {step}: Running" in lines and f"step {step}: Succeeded" in lines, step
    assert lines.index("step learn-block: Succeeded") < lines.index("step train: Running")
    assert any(ln.startswith(f"[learn-block] Epoch {EPOCHS}/{EPOCHS}") for ln in lines)
    assert not any(ln.startswith("[train] Epoch ") for ln in lines)
    assert any(ln.startswith("[learn-block] input artifact in: ") for ln in lines)
    assert any(ln.startswith("[train-prepare] learning block 'nn' (custom:keras-dense@1")
               for ln in lines)
    assert local["info"]["engine"] == "pipeline step" and inproc["info"]["engine"] == "local"
    assert local["info"]["version"] == 1 and "model.tflite" in local["info"]["block_files"]

    # same split, same seeded block: the very int8 model the in-process engine stores, with
    # the same record
    assert local["int8"] == inproc["int8"]
    for key in ("block_type", "missing_forms", "train_windows", "validation_windows",
                "int8_accuracy", "dataset_hash"):
        assert local["result"][key] == inproc["result"][key], key
    for key in ("forms", "missing", "sources", "compiles_to_c", "block_files"):
        assert local["info"][key] == inproc["info"][key], key
    assert local["model"].labels == inproc["model"].labels == ["fast", "slow"]
    assert _staged(local["p"], local["tenant"].project_id) == []  # exit handler cleaned up

    # the stored model works: TestModel (as its own pipeline) and Classify
    client, ds = local["client"], local["ds"]
    model = local["model"]
    tjob, tlines, _ = run_job(client, client.test_model(model.id, threshold=0.5).job_id)
    assert tjob.status == SUCCEEDED, tjob.error + "\n".join(tlines[-20:])
    tr = client.get_test_result(model.id)
    forms = {f.form: f for f in tr.forms}
    assert set(forms) == {"int8"} and forms["int8"].accuracy > 0.75  # chance: 0.5
    sid = min(i for i, s in ds.samples.items() if s[2] == "testing")
    label, values, _ = ds.samples[sid]
    c = client.classify(model.id, envelope(values, AXES, 1000.0 / FS), filename="x.json")
    assert c.form == "int8" and c.label == label
    tfl = TFLiteModel(local["int8"])
    assert tfl.is_quantized
    np.testing.assert_allclose(np.sum(c.scores), 1.0, atol=0.02)


def _bad_block(tmp_path: Path, script: str) -> Path:
    return make_block(tmp_path / "bad", script, btype="learn", name="Failing")


@pytest.mark.parametrize("script, said, words", [
    ("import sys\nprint('loading the data')\nprint('boom: no GPU found', file=sys.stderr)\n"
     "sys.exit(3)\n", "boom: no GPU found",
     ["learn-block", "exit code 3", "boom: no GPU found"]),
    ("import sys\nout = sys.argv[sys.argv.index('--out-directory') + 1]\n"
     "open(out + '/metrics.json', 'w').write('{}')\nprint('trained, forgot the model')\n",
     "trained, forgot the model",
     ["block 'custom:bad' v1", "wrote neither model.tflite nor saved_model"]),
], ids=["exit-code", "no-model"])
def test_failing_block_step_fails_the_job_and_leaves_nothing(local_platform, tmp_path, script,
                                                            said, words) -> None:
    p = local_platform
    tenant, client, _ds, imp = _project(p, "custom:bad", block_dir=_bad_block(tmp_path, script),
                                        per_class=3)
    job, _, lines = train(client, imp.impulse_id, epochs=2)
    assert job.status == FAILED, lines[-20:]
    for w in words:
        assert w in job.error, job.error
    assert f"[learn-block] {said}" in lines  # the block's output in the job log
    _nothing_stored(p, tenant, client)
    assert _staged(p, tenant.project_id) == []


def test_builtin_block_goes_through_the_same_pipeline(local_platform) -> None:
    p = local_platform
    tenant, client, _ds, imp = _project(p, "classifier", {"dense_layers": "16"})
    job, result, lines = train(client, imp.impulse_id, epochs=4, learning_rate=0.01)
    assert job.status == SUCCEEDED, job.error + "\n".join(lines[-20:])
    assert "step train-prepare: Succeeded" in lines
    assert any(ln.startswith("step learn-block: Skipped") for ln in lines), lines
    assert "step learn-block: Running" not in lines
    assert any(ln.startswith("[train] epoch 4/4") for ln in lines)  # trained in the train step
    model = client.get_model(int(result["model_id"]))
    assert model.block_type == "classifier"
    names = {f.name for f in model.files}
    assert {"model_int8.tflite", "model_float32.tflite"} <= names
    assert _staged(p, tenant.project_id) == []


# ----------------------------------------------------------------------------- Argo engine


def test_argo_engine_accepts_a_block_only_an_image_can_run(tmp_path_factory, monkeypatch,
                                                           tmp_path) -> None:
    # a cluster: local commands off; the block has an image only (no podman in a platform pod)
    monkeypatch.setenv("TINYFORGE_BLOCKS_LOCAL_COMMANDS", "0")
    fake = FakeArgo(token="t").start()
    p = start_platform(tmp_path_factory.mktemp("argo-custom-learn"), workflow_engine="argo",
                       argo_server=fake.url, argo_namespace="ns", argo_token="t",
                       argo_poll_interval=0.02)
    try:
        tenant = p.new_tenant()
        client = tenant.client(default_project_id=tenant.project_id)
        block = make_block(tmp_path / "img", "print('x')\n", btype="learn", name="Image only")
        client.register_block_dir(block, name="img-only", image="127.0.0.1:5000/x/learn:1",
                                  include_source=False)
        synthetic_dataset(client, tenant.project_id, train_per_class=2, test_per_class=1)
        learning = [{"name": "nn", "type": "custom:img-only", "inputs": ["spectral", "stats"]}]
        imp = client.create_impulse("argo", synthetic_impulse(learning))
        from tinyforge.features.generate import generate_features

        generate_features(p.ctx.db, p.ctx.objects, tenant.project_id, imp.impulse_id)
        summary = {"model_id": 7}

        def script(name: str, _wf: dict[str, Any]) -> None:
            nodes = [node(name, "", "main", "Succeeded", type_="DAG"),
                     node(name, "train(0)", "train-model", "Succeeded",
                          outputs={"model-id": "7", "summary": json.dumps(summary)})]
            fake.statuses[name] = [{"phase": "Succeeded", "progress": "1/1",
                                    "nodes": {n["id"]: n for n in nodes}}]

        fake.on_create = script
        resp = client.start_training(imp.impulse_id, epochs=2)  # accepted: no podman needed
        job, _, _ = run_job(client, resp.job_id)
        assert job.status == SUCCEEDED, job.error
        body = next(r.body for r in fake.calls("POST")
                    if r.body["workflow"]["metadata"]["labels"][JOB_LABEL] == str(resp.job_id))
        assert body["workflow"]["spec"]["workflowTemplateRef"] == {"name": TRAIN}
    finally:
        stop_platform(p)
        fake.stop()
