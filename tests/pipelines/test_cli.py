"""``tinyforge pipeline ls|run`` against the real platform: a pipeline's steps run as local
processes through the local runner, their starts/ends and the failing step are shown live."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from hera_workflows import PIPELINES
from hera_workflows.jobs import step_event
from tests.train_service.conftest import synthetic_dataset, synthetic_impulse
from tinyforge.cli.pipeline import StepEvent, parse_step_event
from tinyforge.v1 import common_pb2

OPTIONS = {"epochs": 6, "learning_rate": 0.01, "seed": 2}


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def test_step_events_written_by_the_engines_are_what_the_cli_reads() -> None:
    for node in ("train", 'shard(0:{"count": 2, "index": 0})', "build(1)"):
        assert parse_step_event(step_event(node, "Running")) == StepEvent(node, "Running")
        line = step_event(node, "Failed", "exit code 2: step x failed: NOT_FOUND: y\nmore")
        assert parse_step_event(line) == StepEvent(
            node, "Failed", "exit code 2: step x failed: NOT_FOUND: y"
        )
    assert parse_step_event("[train] step train-model failed: Running") is None
    assert parse_step_event("running pipeline tinyforge-train with the local runner") is None


def test_ls_lists_the_pipelines_with_their_parameters(cli: Any) -> None:
    out = ok(cli("pipeline", "ls")).stdout
    for name in PIPELINES:
        assert name in out
    assert "impulse-id*" in out and "build-format=''" in out
    rows = json.loads(ok(cli("pipeline", "ls", "--json")).stdout)
    assert sorted(r["name"] for r in rows) == sorted(PIPELINES)
    build = next(r for r in rows if r["name"] == "tinyforge-build")
    params = {p["name"]: p for p in build["parameters"]}
    assert params["precision"]["default_value"] == "int8" and not params["precision"]["required"]
    assert params["job-id"]["reserved"] and params["job-id"]["required"]


def test_bad_params_fail_before_any_job(cli: Any, client: Any) -> None:
    res = cli("pipeline", "run", "tinyforge-test", "--param", "model-id")
    assert res.exit_code == 2 and "NAME=VALUE" in res.output
    res = cli("pipeline", "run", "tinyforge-test", "-p", "model-id=1", "-p", "colour=red")
    assert res.exit_code == 1 and "colour" in res.output and "INVALID_ARGUMENT" in res.output
    res = cli("pipeline", "run", "tinyforge-train")
    assert res.exit_code == 1 and "impulse-id" in res.output
    assert client.list_jobs() == []


def test_a_failing_step_fails_the_run_and_is_named(cli: Any, client: Any, tenant: Any) -> None:
    res = cli("pipeline", "run", "tinyforge-test", "--project", str(tenant.project_id),
              "-p", "model-id=424242")
    assert res.exit_code == 1, res.output
    assert "▶ test: started" in res.stdout
    assert re.search(r"✘ test: failed \(exit code 2: .*424242", res.stdout), res.stdout
    assert re.search(r"failed step: test: exit code 2: .*424242", res.stderr), res.stderr
    (job,) = client.list_jobs()
    assert job.kind == "pipelines.run" and job.status == common_pb2.JOB_STATUS_FAILED
    assert f"job {job.id}" in res.stderr and "424242" in job.error
    # NOT_FOUND is bad input (exit code 2): no retry
    assert not any("retry" in ln for ln in _log(client, job.id))

    # --json: one object per event, the step events among them
    res = cli("pipeline", "run", "tinyforge-test", "-p", "model-id=424243", "--json")
    assert res.exit_code == 1
    events = [json.loads(ln) for ln in res.stdout.splitlines()]
    steps = [(e["step"]["node"], e["step"]["phase"]) for e in events if "step" in e]
    assert steps[:2] == [("test", "running"), ("test", "failed")]
    assert "424243" in next(e["step"]["message"] for e in events if "step" in e
                            and e["step"]["phase"] == "failed")
    assert events[-1]["job"]["status"] == "failed" and not any("log" in e for e in events)


def _log(client: Any, job_id: int) -> list[str]:
    return [e.log.line for e in client.watch_job(job_id) if e.HasField("log")]


def test_no_wait_prints_the_job_and_returns(cli: Any, client: Any) -> None:
    res = ok(cli("pipeline", "run", "tinyforge-test", "-p", "model-id=77", "--no-wait", "--json"))
    job = json.loads(res.stdout)
    assert job["kind"] == "pipelines.run"
    assert job["params"] == {"pipeline": "tinyforge-test", "parameters": {"model-id": "77"}}
    final = client.wait_job(int(job["id"]))
    assert final.status == common_pb2.JOB_STATUS_FAILED and "77" in final.error


def test_retrain_with_a_build_runs_every_stage(cli: Any, client: Any, tenant: Any) -> None:
    synthetic_dataset(client, tenant.project_id, train_per_class=4, test_per_class=2)
    imp = client.create_impulse("pipeline-cli", synthetic_impulse())
    res = cli(
        "pipeline", "run", "tinyforge-retrain",
        "--param", f"impulse-id={imp.impulse_id}",
        "--param", f"options={json.dumps(OPTIONS)}",
        "--param", "min-samples-per-shard=4",
        "--param", "max-shards=2",
        "--param", "build-format=tflite",
        "--param", "build-target=linux-x86_64",
        "--logs",
    )
    out = res.stdout
    assert res.exit_code == 0, res.output
    # a line per step as it starts and as it ends, in pipeline order
    steps = ["plan", "shard(0:", "shard(1:", "publish", "train", "test", "build"]
    for s in steps:
        assert f"▶ {s}" in out and f"✔ {s}" in out, (s, out)
    order = [out.index(f"✔ {s}") for s in ("plan", "publish", "train", "test", "build")]
    assert order == sorted(order)
    assert "[train] epoch 6" in out  # --logs: the steps' own lines
    assert "pipeline tinyforge-retrain" in out and "succeeded" in out

    (job,) = [j for j in client.list_jobs() if j.kind == "pipelines.run"]
    assert job.status == common_pb2.JOB_STATUS_SUCCEEDED and job.progress == 1.0
    result = json.loads(out.split("result: ", 1)[1].splitlines()[0])
    (model,) = client.list_models()
    assert result["model_id"] == model.id and result["samples"] == 4  # the test summary
    (build,) = client.list_builds()
    assert build.model_id == model.id and build.format == "tflite" and build.state == 3  # ready
    assert build.job_id == job.id and build.artifact_size > 0


@pytest.mark.slow
def test_retrain_without_build_format_skips_the_build(client: Any, tenant: Any) -> None:
    synthetic_dataset(client, tenant.project_id, train_per_class=4, test_per_class=2)
    imp = client.create_impulse("no-build", synthetic_impulse())
    job = client.run_pipeline("tinyforge-retrain", {"impulse-id": imp.impulse_id,
                                                    "options": json.dumps(OPTIONS)})
    final = client.wait_job(job.id)
    assert final.status == common_pb2.JOB_STATUS_SUCCEEDED, final.error
    events = [e for e in map(parse_step_event, _log(client, job.id)) if e]
    assert [e.phase for e in events if e.node == "build"] == ["Skipped"]
    assert client.list_builds() == [] and len(client.list_models()) == 1
