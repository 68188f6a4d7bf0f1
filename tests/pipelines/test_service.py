"""PipelineService through gRPC: the listing follows the registered WorkflowTemplates, and bad
run requests are refused with INVALID_ARGUMENT naming what is wrong, before any job exists."""

from __future__ import annotations

from typing import Any

import pytest

from hera_workflows import PIPELINES
from hera_workflows.jobs import required_parameters
from tinyforge.client import ApiError
from tinyforge.store.models import Job


def test_list_pipelines_describes_every_registered_template(tenant: Any) -> None:
    # any key of the organization may list, a project-scoped guest key too
    guest = tenant.client(tenant.key("guest", project_id=tenant.project_id))
    listed = {p.name: p for p in guest.list_pipelines()}
    assert sorted(listed) == sorted(PIPELINES)
    for name, build in PIPELINES.items():
        spec = build().to_dict()["spec"]
        declared = spec["arguments"]["parameters"]
        got = listed[name]
        assert [q.name for q in got.parameters] == [p["name"] for p in declared]
        for q, p in zip(got.parameters, declared, strict=True):
            assert q.required == ("value" not in p), (name, q.name)
            assert q.default_value == str(p.get("value", ""))
            assert q.reserved == (q.name in ("job-id", "project-id", "created-by-key-id"))
            assert q.description == p.get("description", "")
        assert {q.name for q in got.parameters if q.required} == set(required_parameters(name))
        entry = next(t for t in spec["templates"] if t["name"] == spec["entrypoint"])
        assert list(got.steps) == [t["name"] for t in entry["dag"]["tasks"]]
        assert got.description, name  # the template's annotation, else its builder's summary
    assert list(listed["tinyforge-retrain"].steps)[-1] == "build-finish"


def _jobs(client: Any) -> int:
    return len(client.list_jobs())


@pytest.mark.parametrize(
    ("name", "params", "field", "named"),
    [
        ("tinyforge-nope", {}, "name", "tinyforge-nope"),
        ("tinyforge-train", {}, "parameters.impulse-id", "impulse-id"),
        ("tinyforge-train", {"impulse-id": "1", "epochs": "3"}, "parameters.epochs", "epochs"),
        ("tinyforge-test", {"model-id": "1", "job-id": "5"}, "parameters.job-id", "job-id"),
        ("tinyforge-build", {"project-id": "1"}, "parameters.project-id", "project-id"),
        (
            "tinyforge-train",
            {"impulse-id": "1", "created-by-key-id": "1"},
            "parameters.created-by-key-id",
            "created-by-key-id",
        ),
    ],
)
def test_bad_run_requests_name_the_problem_and_create_no_job(
    client: Any, name: str, params: dict[str, str], field: str, named: str
) -> None:
    before = _jobs(client)
    with pytest.raises(ApiError) as err:
        client.run_pipeline(name, params)
    assert err.value.code == "INVALID_ARGUMENT"
    assert err.value.field == field and named in err.value.message
    assert _jobs(client) == before


def test_a_run_credits_the_callers_key(tenant: Any) -> None:
    secret = tenant.key("member")
    member = tenant.client(secret, default_project_id=tenant.project_id)
    job = member.run_pipeline("tinyforge-train", {"impulse-id": "999999"})
    params = job.params
    assert params["pipeline"] == "tinyforge-train"
    given = dict(params["parameters"])
    key_id = int(given.pop("created-by-key-id"))
    assert given == {"impulse-id": "999999"}
    with tenant.platform.ctx.db.session() as s:  # the key that called RunPipeline
        assert s.get(Job, job.id).created_by_key_id == key_id > 0
    final = member.wait_job(job.id)  # the impulse does not exist: the train step says so
    assert "999999" in final.error


def test_running_needs_a_member_of_the_project(tenant: Any) -> None:
    guest = tenant.client(tenant.key("guest"))
    with pytest.raises(ApiError) as err:
        guest.run_pipeline("tinyforge-test", {"model-id": "1"}, project_id=tenant.project_id)
    assert err.value.code == "PERMISSION_DENIED"
    other = tenant.new_project()
    scoped = tenant.client(tenant.key("member", project_id=other))
    with pytest.raises(ApiError) as err:
        scoped.run_pipeline("tinyforge-test", {"model-id": "1"}, project_id=tenant.project_id)
    assert err.value.code == "PERMISSION_DENIED"
    with pytest.raises(ApiError) as err:
        scoped.run_pipeline("tinyforge-test", {"model-id": "1"}, project_id=987654)
    assert err.value.code in ("NOT_FOUND", "PERMISSION_DENIED")
