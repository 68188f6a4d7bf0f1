"""Cluster submission: the Workflow a pipeline job submits, and the Argo Server REST calls the
platform makes to submit, follow (status, progress, step logs) and stop it.

No Argo Server can run here: the REST side is checked against ``argo_stub.FakeArgo``, a
loopback stand-in that serves the few endpoints used, with scripted statuses and logs, and
records each request (paths, query parameters, bodies as Argo's API defines them). What the real
server does with them is covered by the kind end-to-end run (tests/e2e_cluster/run.sh).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf.json_format import MessageToDict

from hera_workflows import PIPELINES
from hera_workflows.features import NAME as FEATURES
from hera_workflows.jobs import required_parameters
from hera_workflows.render import DEFAULT_OUT
from tests.crd_schemas import SCHEMAS, crd_errors
from tests.dsp_service.conftest import run_job, ts_impulse
from tests.workflows.argo_stub import FakeArgo, argo_pod_name, node
from tests.workflows.conftest import ARGO_NS
from tinyforge.config import Settings
from tinyforge.errors import InvalidArgument
from tinyforge.v1 import common_pb2
from tinyforge.workflows.argo import (
    JOB_LABEL,
    ArgoClient,
    ArgoError,
    WorkflowWatcher,
    check_parameters,
    fnv1a_32,
    job_workflow,
    parse_log_stream,
    pod_name,
)
from tinyforge.workflows.job_status import JOB_MANAGED_ENV

NS = ARGO_NS
PARAMS = {"job-id": "7", "project-id": "3", "impulse-id": "11", "version": "2"}


def _need_schemas() -> None:
    if not SCHEMAS.is_dir():
        pytest.skip(f"../shared/schemas not present at {SCHEMAS}: cannot validate CRDs")


# ----------------------------------------------------------------------------- the Workflow


def test_submitted_workflow_is_schema_valid_and_runs_a_shipped_template() -> None:
    _need_schemas()
    wf = job_workflow(FEATURES, PARAMS, job_id=7, project_id=3, namespace=NS).to_dict()
    assert wf["kind"] == "Workflow"
    assert crd_errors(wf) == []  # strict mode: no unknown or misspelt field
    ref = wf["spec"]["workflowTemplateRef"]["name"]
    assert ref in PIPELINES
    template = PIPELINES[ref]().to_dict()
    declared = {p["name"] for p in template["spec"]["arguments"]["parameters"]}
    given = {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]}
    assert given == PARAMS
    assert set(given) <= declared
    assert set(required_parameters(ref)) <= set(given)
    assert {"job-id", "project-id", "impulse-id"} <= set(required_parameters(ref))
    # the chart ships that template under that name
    shipped = yaml.safe_load((DEFAULT_OUT / f"{ref}.yaml").read_text())
    assert shipped["metadata"]["name"] == ref
    # the job finds its workflow again by label; Argo names it
    assert wf["metadata"]["labels"][JOB_LABEL] == "7"
    assert wf["metadata"]["generateName"] == f"{ref}-" and "name" not in wf["metadata"]
    # the exit handler leaves the job's final state to the watching service
    patch = json.loads(wf["spec"]["podSpecPatch"])
    assert {"name": JOB_MANAGED_ENV, "value": "1"} in patch["containers"][0]["env"]
    assert patch["containers"][0]["name"] == "main"
    # What Argo runs: the template's spec with the workflow's arguments; valid as a Workflow.
    merged = {
        "apiVersion": wf["apiVersion"],
        "kind": "Workflow",
        "metadata": {"name": f"{ref}-abcde"},
        "spec": {**template["spec"], "arguments": wf["spec"]["arguments"]},
    }
    assert crd_errors(merged) == []


def test_missing_parameters_are_named_before_submitting() -> None:
    with pytest.raises(InvalidArgument) as err:
        check_parameters(required_parameters(FEATURES), {"job-id": "1"}, FEATURES)
    assert "impulse-id" in err.value.message and "project-id" in err.value.message


def test_pod_names_follow_argo() -> None:
    # FNV-1a reference values from Argo's UI tests (createFNVHash)
    assert fnv1a_32("hello") == 1335831723
    assert fnv1a_32("world") == 933488787
    wf = "tinyforge-generate-features-x7k2p"
    status = {"nodes": {"a": node(wf, "shard(0:x)(0)", "shard", "Running")}}
    from tinyforge.workflows.argo import NodeView

    n = status["nodes"]["a"]
    view = NodeView(n["id"], n["name"], n["displayName"], "Pod", "Running", "shard")
    assert pod_name(wf, view) == argo_pod_name(wf, n["name"], "shard")
    assert pod_name(wf, view, "v1") == n["id"]
    long = NodeView("id", "x" * 300, "x", "Pod", "Running", "t" * 300)
    assert len(pod_name("w" * 200, long)) == 253


def test_log_stream_parsing() -> None:
    text = (
        json.dumps({"result": {"content": "one", "podName": "p"}})
        + "\n\n"
        + json.dumps({"result": {"content": "", "podName": "p"}})
        + "\n"
    )
    assert parse_log_stream(text) == ["one", ""]
    with pytest.raises(ArgoError, match="gone"):
        parse_log_stream(json.dumps({"error": {"code": 2, "message": "pod gone"}}))


# ----------------------------------------------------------------------------- REST calls


@pytest.fixture
def argo() -> Iterator[FakeArgo]:
    fake = FakeArgo(token="s3cret").start()
    yield fake
    fake.stop()


def _settings(tmp_path: Path, url: str, **kw: Any) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url="sqlite://",
        workflow_engine="argo",
        argo_server=url,
        argo_namespace=NS,
        **kw,
    )


def _features_status(wf: str, phase: str, progress: str, stage: int) -> dict[str, Any]:
    """What Argo reports for the feature pipeline at ``stage`` 0 (plan runs), 1 (shards
    run), 2 (all done, exit handler ran)."""
    done = "Succeeded"
    shards = '[{"count":2,"index":0},{"count":2,"index":1}]'
    nodes = [node(wf, "", "main", phase, type_="DAG")]
    nodes.append(node(wf, "plan", "plan", "Running" if stage == 0 else done, type_="Retry"))
    nodes.append(
        node(
            wf,
            "plan(0)",
            "plan",
            "Running" if stage == 0 else done,
            outputs={"shards": shards} if stage else None,
        )
    )
    if stage >= 1:
        for i in range(2):
            label = f'shard({i}:{{"count":2,"index":{i}}})'
            nodes.append(node(wf, f"{label}(0)", "shard", "Running" if stage == 1 else done))
    if stage == 2:
        nodes.append(node(wf, "publish", "publish", done, type_="Retry"))
        nodes.append(
            node(wf, "publish(0)", "publish", done, outputs={"summary": json.dumps({"samples": 4})})
        )
        nodes.append(node(wf, "onExit", "record-status", done))
    return {"phase": phase, "progress": progress, "nodes": {n["id"]: n for n in nodes}}


def test_submit_watch_logs_and_progress_over_argo_rest(argo: FakeArgo, tmp_path: Path) -> None:
    client = ArgoClient.from_settings(_settings(tmp_path, argo.url, argo_token="s3cret"))
    wf = job_workflow(FEATURES, PARAMS, job_id=7, project_id=3, namespace=NS)
    name = client.submit(wf)

    post = argo.calls("POST")
    assert [r.path for r in post] == [f"/api/v1/workflows/{NS}"]
    assert post[0].headers["Authorization"] == "Bearer s3cret"
    assert post[0].headers["Content-Type"] == "application/json"
    assert post[0].body == {"namespace": NS, "workflow": wf.to_dict()}
    assert name.startswith(f"{FEATURES}-") and name in argo.created()
    assert client.find_job_workflow(7) == name
    assert client.find_job_workflow(8) is None
    listed = argo.calls("GET", f"/api/v1/workflows/{NS}")
    assert [r.query for r in listed] == [
        {"listOptions.labelSelector": f"{JOB_LABEL}=7"},
        {"listOptions.labelSelector": f"{JOB_LABEL}=8"},
    ]

    # Scripted run: plan running → shards running → all done.
    argo.statuses[name] = [
        _features_status(name, "Running", "0/1", 0),
        _features_status(name, "Running", "1/3", 1),
        _features_status(name, "Succeeded", "5/5", 2),
    ]
    plan_pod = argo_pod_name(name, f"{name}.plan(0)", "plan")
    shard0 = f'{name}.shard(0:{{"count":2,"index":0}})(0)'
    shard_pod = argo_pod_name(name, shard0, "shard")
    argo.logs[plan_pod] = ["4 samples to process"]
    lines: list[str] = []
    progress: list[tuple[float, str]] = []
    watcher = WorkflowWatcher(
        client,
        name,
        log=lines.append,
        progress=lambda f, m: progress.append((f, m)),
        cancelled=lambda: False,
        wait=lambda _s: None,
    )
    s1 = watcher.poll()
    assert s1.phase == "Running" and lines == ["[plan(0)] 4 samples to process"]
    argo.logs[plan_pod].append("in 2 shard(s)")  # the pod wrote more since the last poll
    argo.logs[shard_pod] = ["progress 0.500 processed 1/2 samples"]
    watcher.poll()
    assert lines[1:] == [
        "[plan(0)] in 2 shard(s)",  # only the new line: no duplicate of the first
        '[shard(0:{"count":2,"index":0})(0)] progress 0.500 processed 1/2 samples',
    ]
    argo.logs[shard_pod].append("shard 1/2: 2 samples processed")
    outcome = watcher.run()
    assert outcome.succeeded and not outcome.cancelled
    assert lines[3] == '[shard(0:{"count":2,"index":0})(0)] shard 1/2: 2 samples processed'
    # a retried task's output: from its succeeded attempt's pod
    assert json.loads(outcome.state.output("publish", "summary")) == {"samples": 4}
    assert [f for f, _ in progress] == [0.0, pytest.approx(1 / 3), 1.0]
    assert "running" in progress[1][1] and "shard(0:" in progress[1][1]

    # Log requests: Argo's log API, per pod, main container; a finished pod is read once more
    # after it ended and then never again.
    log_calls = argo.calls("GET", "/log")
    assert {r.path for r in log_calls} == {f"/api/v1/workflows/{NS}/{name}/log"}
    assert all(r.query["logOptions.container"] == "main" for r in log_calls)
    per_pod = [r.query["podName"] for r in log_calls]
    assert per_pod.count(plan_pod) == 2  # running at poll 1, finished at poll 2
    assert per_pod.count(shard_pod) == 2  # running at poll 2, finished at poll 3
    assert all(r.headers["Authorization"] == "Bearer s3cret" for r in argo.requests)

    # Resuming (a new watcher from the job's stored lines) writes nothing twice.
    again: list[str] = []
    resumed = WorkflowWatcher(
        client,
        name,
        log=again.append,
        progress=lambda f, m: None,
        cancelled=lambda: False,
        wait=lambda _s: None,
    )
    resumed.resume_from(lines, client.get(name))
    resumed.poll()
    assert again == []
    argo.logs[shard_pod].append("a late line")
    resumed2 = WorkflowWatcher(
        client,
        name,
        log=again.append,
        progress=lambda f, m: None,
        cancelled=lambda: False,
        wait=lambda _s: None,
    )
    resumed2.resume_from(lines, client.get(name))
    resumed2.poll()
    assert again == ['[shard(0:{"count":2,"index":0})(0)] a late line']


def test_cancel_stops_then_terminates_the_workflow(argo: FakeArgo, tmp_path: Path) -> None:
    client = ArgoClient.from_settings(_settings(tmp_path, argo.url, argo_token="s3cret"))
    name = client.submit(job_workflow(FEATURES, PARAMS, job_id=7, project_id=3, namespace=NS))
    argo.statuses[name] = [_features_status(name, "Running", "0/1", 0)]
    # "stop" leaves it running (a stuck step); "terminate" ends it
    argo.on_terminate = lambda n: argo.statuses.__setitem__(
        n,
        [
            {
                **_features_status(n, "Failed", "0/1", 0),
                "message": "Stopped with strategy 'Terminate'",
            }
        ],
    )
    lines: list[str] = []
    outcome = WorkflowWatcher(
        client,
        name,
        log=lines.append,
        progress=lambda f, m: None,
        cancelled=lambda: True,
        wait=lambda _s: None,
        stop_grace_s=0.0,
    ).run()
    assert outcome.cancelled and not outcome.succeeded
    stop = argo.calls("PUT", "/stop")
    assert [r.path for r in stop] == [f"/api/v1/workflows/{NS}/{name}/stop"]
    assert stop[0].body == {"name": name, "namespace": NS, "message": "cancelled by request"}
    term = argo.calls("PUT", "/terminate")
    assert [r.path for r in term] == [f"/api/v1/workflows/{NS}/{name}/terminate"]
    assert term[0].body == {"name": name, "namespace": NS}
    assert any("stopping workflow" in ln for ln in lines)


def test_server_errors_are_clear(argo: FakeArgo, tmp_path: Path) -> None:
    wf = job_workflow(FEATURES, PARAMS, job_id=7, project_id=3, namespace=NS)
    wrong = ArgoClient.from_settings(_settings(tmp_path, argo.url, argo_token="wrong"))
    with pytest.raises(ArgoError, match="refused to create a workflow.*401"):
        wrong.submit(wf)
    ok = ArgoClient.from_settings(_settings(tmp_path, argo.url, argo_token="s3cret"))
    with pytest.raises(ArgoError, match="not found"):
        ok.get("no-such-workflow")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    gone = ArgoClient.from_settings(_settings(tmp_path, dead))
    with pytest.raises(ArgoError, match="cannot reach the Argo Server"):
        gone.submit(wf)
    polls: list[float] = []
    watcher = WorkflowWatcher(
        gone,
        "wf",
        log=lambda _: None,
        progress=lambda f, m: None,
        cancelled=lambda: False,
        wait=polls.append,
        max_errors=3,
    )
    with pytest.raises(ArgoError):
        watcher.run()
    assert len(polls) == 2  # waited between the failed polls, gave up at the third
    # a token file is read (rotating service-account tokens)
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    from_file = ArgoClient.from_settings(_settings(tmp_path, argo.url, argo_token_file=str(token)))
    assert from_file.submit(wf)


def test_settings_validate_the_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TINYFORGE_DATA_DIR", str(tmp_path))
    assert Settings.from_env().workflow_engine == "inprocess"
    monkeypatch.setenv("TINYFORGE_WORKFLOW_ENGINE", "Local")
    assert Settings.from_env().workflow_engine == "local"
    monkeypatch.setenv("TINYFORGE_WORKFLOW_ENGINE", "kubeflow")
    with pytest.raises(InvalidArgument) as err:
        Settings.from_env()
    assert err.value.field == "TINYFORGE_WORKFLOW_ENGINE" and "argo" in err.value.message
    monkeypatch.setenv("TINYFORGE_WORKFLOW_ENGINE", "argo")
    with pytest.raises(InvalidArgument) as err:
        Settings.from_env()
    assert err.value.field == "TINYFORGE_ARGO_SERVER"
    monkeypatch.setenv("TINYFORGE_ARGO_SERVER", "https://argo-server.argo.svc:2746")
    monkeypatch.setenv("TINYFORGE_ARGO_NAMESPACE", NS)
    monkeypatch.setenv("TINYFORGE_ARGO_VERIFY_TLS", "false")
    s = Settings.from_env()
    assert (s.argo_namespace, s.argo_verify_tls) == (NS, False)


# ----------------------------------------------------------------------------- through gRPC



def _impulse(client: Any) -> int:
    return client.create_impulse("argo", ts_impulse()).impulse_id


def test_generate_features_job_runs_as_an_argo_workflow(argo_platform) -> None:
    p, fake = argo_platform
    tenant = p.new_tenant()
    client = tenant.client(default_project_id=tenant.project_id)
    impulse_id = _impulse(client)
    summary = {"impulse_id": impulse_id, "version": 1, "samples": 4, "blocks": {}}

    def script(name: str, _wf: dict[str, Any]) -> None:
        final = _features_status(name, "Succeeded", "5/5", 2)
        for n in final["nodes"].values():
            if n["displayName"] == "publish(0)":
                n["outputs"]["parameters"][0]["value"] = json.dumps(summary)
        fake.statuses[name] = [
            _features_status(name, "Running", "0/1", 0),
            _features_status(name, "Running", "1/3", 1),
            final,
        ]
        fake.logs[argo_pod_name(name, f"{name}.plan(0)", "plan")] = ["4 samples to process"]
        shard = f'{name}.shard(1:{{"count":2,"index":1}})(0)'
        fake.logs[argo_pod_name(name, shard, "shard")] = ["shard 2/2: 2 samples processed"]

    fake.on_create = script
    resp = client.generate_features(impulse_id)
    job, lines, progress = run_job(client, resp.job_id)
    assert job.status == common_pb2.JOB_STATUS_SUCCEEDED, job.error
    assert MessageToDict(job.result) == summary  # the publish step's output
    name = next(
        n
        for n in fake.created()
        if fake.workflows[n]["metadata"]["labels"][JOB_LABEL] == str(resp.job_id)
    )
    assert f"submitted Argo workflow {NS}/{name}" in lines
    assert "[plan(0)] 4 samples to process" in lines
    assert '[shard(1:{"count":2,"index":1})(0)] shard 2/2: 2 samples processed' in lines
    assert progress == sorted(progress) and progress[-1] == 1.0
    body = next(
        r.body
        for r in fake.calls("POST")
        if r.body["workflow"]["metadata"]["labels"][JOB_LABEL] == str(resp.job_id)
    )
    args = {a["name"]: a["value"] for a in body["workflow"]["spec"]["arguments"]["parameters"]}
    assert args == {
        "job-id": str(resp.job_id),
        "project-id": str(tenant.project_id),
        "impulse-id": str(impulse_id),
        "version": "1",
    }


def test_failed_workflow_fails_the_job_with_the_step_message(argo_platform) -> None:
    p, fake = argo_platform
    tenant = p.new_tenant()
    client = tenant.client(default_project_id=tenant.project_id)

    def script(name: str, _wf: dict[str, Any]) -> None:
        failed = _features_status(name, "Failed", "0/1", 0)
        for n in failed["nodes"].values():
            if n["type"] == "Pod":
                n.update(phase="Failed", message="Error (exit code 2)")
        failed["message"] = "child 'plan' failed"
        fake.statuses[name] = [failed]
        fake.logs[argo_pod_name(name, f"{name}.plan(0)", "plan")] = [
            "step features-plan failed: NOT_FOUND: no samples"
        ]

    fake.on_create = script
    resp = client.generate_features(_impulse(client))
    job, lines, _ = run_job(client, resp.job_id)
    assert job.status == common_pb2.JOB_STATUS_FAILED
    assert "child 'plan' failed" in job.error and "plan(0): Error (exit code 2)" in job.error
    assert "[plan(0)] step features-plan failed: NOT_FOUND: no samples" in lines


def test_cancel_job_stops_the_argo_workflow(argo_platform) -> None:
    p, fake = argo_platform
    tenant = p.new_tenant()
    client = tenant.client(default_project_id=tenant.project_id)

    def script(name: str, _wf: dict[str, Any]) -> None:
        fake.statuses[name] = [_features_status(name, "Running", "0/1", 0)]
        fake.logs[argo_pod_name(name, f"{name}.plan(0)", "plan")] = ["planning"]

    def stopped(name: str) -> None:
        final = _features_status(name, "Failed", "1/2", 2)
        final["message"] = "Stopped with strategy 'Stop'"
        fake.statuses[name] = [final]

    fake.on_create, fake.on_stop = script, stopped
    resp = client.generate_features(_impulse(client))
    final, lines = None, []
    for event in client.watch_job(resp.job_id):
        if event.HasField("log"):
            lines.append(event.log.line)
            if event.log.line == "[plan(0)] planning":  # the workflow runs: cancel it
                client.cancel_job(resp.job_id)
        else:
            final = event.job
    assert final is not None and final.status == common_pb2.JOB_STATUS_CANCELLED
    name = next(
        n
        for n in fake.created()
        if fake.workflows[n]["metadata"]["labels"][JOB_LABEL] == str(resp.job_id)
    )
    assert [r.path for r in fake.calls("PUT")] == [f"/api/v1/workflows/{NS}/{name}/stop"]
