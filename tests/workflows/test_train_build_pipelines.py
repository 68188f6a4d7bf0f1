"""The training, model-testing and build pipelines (``tinyforge-train``, ``tinyforge-test``,
``tinyforge-build``, and the build stage of ``tinyforge-retrain``).

- their templates: the retrain build stage runs only with ``build-format`` (``when``), gets the
  model just trained; builds get CPU and time;
- TINYFORGE_WORKFLOW_ENGINE=local: StartTraining / TestModel / StartBuild through the gRPC API
  run those pipelines with the local runner (each step a process) and give what the in-process
  engine gives (same predictions, same on-target verification);
- TINYFORGE_WORKFLOW_ENGINE=argo: StartTraining submits a Workflow of the shipped
  ``tinyforge-train`` template to the Argo Server (loopback stand-in, tests/workflows/argo_stub)
  and the job ends with the train step's summary, the steps' starts/ends in its log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hera_workflows import PIPELINES, RESULTS
from hera_workflows.build import NAME as BUILD
from hera_workflows.render import DEFAULT_OUT
from hera_workflows.training import RETRAIN, TEST, TRAIN
from tests.api.conftest import RunningPlatform, start_platform, stop_platform
from tests.dsp_service.conftest import SUCCEEDED, generate, run_job
from tests.train_service.conftest import job_result, synthetic_dataset, synthetic_impulse
from tests.workflows.argo_stub import argo_pod_name, node
from tests.workflows.conftest import ARGO_NS
from tinyforge.data.importers import import_har_stm32
from tinyforge.features.generate import generate_features
from tinyforge.learn.checks import TrainOptions
from tinyforge.workflows.argo import JOB_LABEL
from tinyforge.workflows.expressions import evaluate_when, substitute

NS = ARGO_NS
DATASETS = (Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets").resolve()
SEED_OPTIONS = {"epochs": 6, "learning_rate": 0.01, "seed": 4}


def _templates(name: str) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in PIPELINES[name]().to_dict()["spec"]["templates"]}


def _quantity(q: str) -> float:
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def test_new_pipelines_are_registered_with_results_and_shipped() -> None:
    pipelines = ((TRAIN, "train"), (TEST, "test"), (BUILD, "build-finish"), (RETRAIN, "test"))
    for name, task in pipelines:
        assert name in PIPELINES
        assert RESULTS[name] == (task, "summary")
        main = _templates(name)["main"]
        assert task in [t["name"] for t in main["dag"]["tasks"]]
        shipped = yaml.safe_load((DEFAULT_OUT / f"{name}.yaml").read_text())
        assert shipped == PIPELINES[name]().to_dict()


def test_build_steps_get_cpu_and_time() -> None:
    for name in (BUILD, RETRAIN):
        build = _templates(name)["build"]
        requests = build["container"]["resources"]["requests"]
        assert _quantity(requests["cpu"]) >= 2
        # longer than the builder's own maximum time limit (1 h), so that limit decides
        assert build["activeDeadlineSeconds"] > 3600
        assert build["container"]["command"] == ["tinyforge", "step", "build"]


def test_retrain_builds_the_trained_model_only_when_a_format_is_given() -> None:
    tasks = {t["name"]: t for t in _templates(RETRAIN)["main"]["dag"]["tasks"]}
    build = tasks["build"]
    assert build["depends"] == "test"
    args = {p["name"]: p["value"] for p in build["arguments"]["parameters"]}
    assert args["model-id"] == "{{tasks.train.outputs.parameters.model-id}}"
    assert args["format"] == "{{workflow.parameters.build-format}}"
    assert args["build-id"] == "0"  # a new build of that model
    scope = lambda fmt: {"workflow.parameters.build-format": fmt}  # noqa: E731
    assert not evaluate_when(substitute(build["when"], scope("")))
    assert evaluate_when(substitute(build["when"], scope("c-library")))
    params = {p["name"]: p.get("value") for p in PIPELINES[RETRAIN]().to_dict()["spec"][
        "arguments"]["parameters"]}
    assert params["build-format"] == ""  # no build unless asked


# ----------------------------------------------------------------------------- local engine


@pytest.fixture(scope="module")
def local_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    p = start_platform(tmp_path_factory.mktemp("local-train"), workflow_engine="local")
    yield p
    stop_platform(p)


def _har_project(client: Any) -> tuple[dict[int, int], dict[str, Any]]:
    """A few real STM32 HAR accelerometer files per class (the first one of each class for
    testing): (sample id → upload position, the impulse definition)."""
    root = DATASETS / "har_stm32_accel"
    if not root.is_dir():
        pytest.skip(f"real dataset har_stm32_accel not found at {root} (../shared absent)")
    by_label: dict[str, list[Any]] = {}
    for it in import_har_stm32(root):
        by_label.setdefault(it.label, []).append(it)
    order: dict[int, int] = {}
    for label, items in sorted(by_label.items()):
        for i, it in enumerate(sorted(items, key=lambda it: it.path.name)[:4]):
            s = client.upload_file(it.path, label=label, frequency_hz=it.frequency_hz,
                                   category="testing" if i == 0 else "training")
            order[s.id] = len(order)
    axes = [a.name for a in client.get_sample(next(iter(order))).axes]
    impulse = {
        "input": {"type": "time-series", "window_size_ms": 2000, "window_stride_ms": 1000,
                  "frequency_hz": 26, "axes": axes},
        "processing": [{"name": "spectral", "block": "spectral_analysis",
                        "params": {"scale_axes": 0.001}}],
        "learning": [{"name": "nn", "type": "classifier", "inputs": ["spectral"]}],
    }
    return order, impulse


def _train_test_build(p: RunningPlatform) -> dict[str, Any]:
    """Dataset → features → StartTraining → TestModel → StartBuild through the API."""
    tenant = p.new_tenant()
    client = tenant.client(default_project_id=tenant.project_id)
    order, impulse = _har_project(client)
    imp = client.create_impulse("engines", impulse)
    job, _, _ = generate(client, imp.impulse_id)
    assert job.status == SUCCEEDED, job.error
    out: dict[str, Any] = {}
    resp = client.start_training(imp.impulse_id, **SEED_OPTIONS)
    job, out["train_log"], _ = run_job(client, resp.job_id)
    assert job.status == SUCCEEDED, job.error + "\n".join(out["train_log"][-20:])
    out["train"] = job_result(job)
    model_id = int(out["train"]["model_id"])
    job, out["test_log"], _ = run_job(client, client.test_model(model_id, threshold=0.5).job_id)
    assert job.status == SUCCEEDED, job.error + "\n".join(out["test_log"][-20:])
    out["test"] = job_result(job)
    tr = client.get_test_result(model_id)
    out["predictions"] = sorted(
        (order[r.sample_id], r.label, r.predicted_float, r.predicted_int8) for r in tr.samples
    )
    resp = client.start_build("c-library", "linux-x86_64", model_id=model_id)
    job, out["build_log"], _ = run_job(client, resp.job_id)
    assert job.status == SUCCEEDED, job.error + "\n".join(out["build_log"][-30:])
    out["build_result"] = job_result(job)
    out["build"] = client.get_build(resp.build_id)
    return out


def test_local_engine_trains_tests_and_builds_like_inprocess(platform, local_platform) -> None:
    runs = {}
    for engine, p in (("inprocess", platform), ("local", local_platform)):
        assert p.ctx.settings.workflow_engine == engine
        runs[engine] = _train_test_build(p)
    inproc, local = runs["inprocess"], runs["local"]

    # the jobs ran as the pipelines' steps: local processes with logs and step events
    for log, pipeline, step in (
        (local["train_log"], TRAIN, "train"),
        (local["test_log"], TEST, "test"),
        (local["build_log"], BUILD, "build"),
    ):
        assert f"running pipeline {pipeline} with the local runner" in log
        assert f"step {step}: Running" in log and f"step {step}: Succeeded" in log
        assert any(ln.startswith(f"[{step}] ") for ln in log)
    assert any(ln.startswith("[train] epoch 6") for ln in local["train_log"])
    assert not any(ln.startswith("step ") for ln in inproc["train_log"])

    # same results, where determinism allows (the .tflite bytes differ: Keras layer names)
    for key in ("labels", "task", "windows", "dataset_hash"):
        if key in inproc["train"]:
            assert local["train"][key] == inproc["train"][key], key
    for key in ("windows", "samples", "float_accuracy", "int8_accuracy", "dataset_hash"):
        assert local["test"][key] == inproc["test"][key], key
    assert local["predictions"] == inproc["predictions"]
    b_in, b_local = inproc["build"], local["build"]
    assert b_local.state == b_in.state == 3  # ready
    assert b_local.job_id and b_local.artifact_size > 0
    # the same files in the zip (its top folder is named after the project)
    assert sorted(f.split("/", 1)[-1] for f in b_local.files) == sorted(
        f.split("/", 1)[-1] for f in b_in.files
    )
    for key in ("on_target_accuracy", "platform_accuracy", "compared", "verified_on"):
        assert local["build_result"]["metrics"].get(key) == inproc["build_result"]["metrics"].get(
            key
        ), key
    assert local["build_result"]["build_id"] == b_local.id
    assert local["build_result"]["sha256"] == b_local.artifact_sha256


# ----------------------------------------------------------------------------- Argo engine



def _train_status(wf: str, stage: int, summary: dict[str, Any]) -> dict[str, Any]:
    """What Argo reports for tinyforge-train at stage 0 (train runs) and 1 (done)."""
    phase = "Running" if stage == 0 else "Succeeded"
    nodes = [node(wf, "", "main", phase, type_="DAG")]
    nodes.append(node(wf, "train", "train-model", phase, type_="Retry"))
    outputs = {"model-id": str(summary["model_id"]), "summary": json.dumps(summary)}
    nodes.append(node(wf, "train(0)", "train-model", phase, outputs=outputs if stage else None))
    if stage:
        nodes.append(node(wf, "onExit", "record-status", "Succeeded"))
    progress = "0/1" if stage == 0 else "2/2"
    return {"phase": phase, "progress": progress, "nodes": {n["id"]: n for n in nodes}}


def test_train_job_runs_as_an_argo_workflow(argo_platform) -> None:
    p, fake = argo_platform
    tenant = p.new_tenant()
    client = tenant.client(default_project_id=tenant.project_id)
    synthetic_dataset(client, tenant.project_id, train_per_class=3, test_per_class=1)
    imp = client.create_impulse("argo-train", synthetic_impulse())
    # features straight through the library (the platform's own feature jobs go to Argo too)
    generate_features(p.ctx.db, p.ctx.objects, tenant.project_id, imp.impulse_id)
    summary = {"model_id": 41, "labels": ["fast", "slow"], "impulse_id": imp.impulse_id}

    def script(name: str, _wf: dict[str, Any]) -> None:
        fake.statuses[name] = [_train_status(name, 0, summary), _train_status(name, 1, summary)]
        fake.logs[argo_pod_name(name, f"{name}.train(0)", "train-model")] = ["epoch 1/6 loss 0.7"]

    fake.on_create = script
    resp = client.start_training(imp.impulse_id, **SEED_OPTIONS)
    job, lines, _ = run_job(client, resp.job_id)
    assert job.status == SUCCEEDED, job.error
    assert job_result(job) == summary  # the train step's summary output
    assert "step train(0): Running" in lines and "step train(0): Succeeded" in lines
    assert "[train(0)] epoch 1/6 loss 0.7" in lines
    assert lines.index("step train(0): Running") < lines.index("step train(0): Succeeded")
    body = next(
        r.body
        for r in fake.calls("POST")
        if r.body["workflow"]["metadata"]["labels"][JOB_LABEL] == str(resp.job_id)
    )
    spec = body["workflow"]["spec"]
    assert spec["workflowTemplateRef"] == {"name": TRAIN}
    args = {a["name"]: a["value"] for a in spec["arguments"]["parameters"]}
    assert json.loads(args.pop("options")) == {**TrainOptions().to_json(), **SEED_OPTIONS}
    assert args == {
        "job-id": str(resp.job_id),
        "project-id": str(tenant.project_id),
        "impulse-id": str(imp.impulse_id),
        "version": str(resp.version),
        "learn-block": resp.learn_block,
        "params": "null",
        "created-by-key-id": args["created-by-key-id"],
    }
    assert int(args["created-by-key-id"]) > 0  # the caller's key, as the in-process job keeps
    # every argument is a parameter the shipped template declares
    declared = {p["name"] for p in PIPELINES[TRAIN]().to_dict()["spec"]["arguments"]["parameters"]}
    assert set(args) | {"options"} <= declared

