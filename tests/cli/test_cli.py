"""The ``tinyforge`` CLI against a real server (typer's CliRunner, env-configured client)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tinyforge.cli.main import app
from tinyforge.jobs import JobContext, register_job_kind

runner = CliRunner()
_gate: dict[str, threading.Event] = {}


def _cli_steps(job: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    for i in range(3):
        job.log(f"cli line {i}")
        job.progress((i + 1) / 3, f"{i + 1}/3")
    if params.get("fail"):
        raise RuntimeError("sensor unplugged")
    return {"ok": True}


def _cli_waits(job: JobContext, params: dict[str, Any]) -> None:
    _gate[params["token"]].set()
    job.sleep(120)


register_job_kind("cli_steps", _cli_steps, replace=True)
register_job_kind("cli_waits", _cli_waits, replace=True)


@pytest.fixture
def cli(platform, tenant, tmp_path: Path):  # noqa: ANN001, ANN201
    """Run the CLI as the tenant's admin (or another key)."""

    def run(*args: str, key: str | None = None) -> Any:
        env = {
            "TINYFORGE_ADDRESS": platform.address,
            "TINYFORGE_API_KEY": key or tenant.admin_key,
            "TINYFORGE_PROJECT_ID": str(tenant.project_id),
            "TINYFORGE_DATA_DIR": str(tmp_path),  # no client.json there
        }
        return runner.invoke(app, list(args), env=env)

    return run


def as_json(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_project_commands(cli, tenant) -> None:
    made = as_json(cli("project", "create", "kws", "--description", "keywords", "--json"))
    assert made["name"] == "kws" and made["labeling_method"] == "single_label"
    assert isinstance(made["id"], int) and made["org_id"] == tenant.org_id
    listed = as_json(cli("project", "list", "--json"))
    assert {p["id"] for p in listed} == {tenant.project_id, made["id"]}
    got = as_json(cli("project", "get", str(made["id"]), "--json"))
    assert got == made
    default = as_json(cli("project", "get", "--json"))  # project from the environment
    assert default["id"] == tenant.project_id
    upd = as_json(cli("project", "update", str(made["id"]), "--require-signed",
                      "--labeling-method", "object_detection", "--json"))  # fmt: skip
    assert upd["allow_unsigned_data"] is False and upd["labeling_method"] == "object_detection"
    assert upd["description"] == "keywords"
    table = cli("project", "list")
    assert table.exit_code == 0 and "kws" in table.stdout
    key = cli("project", "hmac-key", str(made["id"]))
    assert key.exit_code == 0 and len(key.stdout.strip()) == 64
    deleted = cli("project", "delete", str(made["id"]), "--yes")
    assert deleted.exit_code == 0
    assert [p["id"] for p in as_json(cli("project", "list", "--json"))] == [tenant.project_id]


def test_errors_are_one_line_with_status_and_nonzero_exit(cli, tenant) -> None:
    r = cli("project", "get", "424242")
    assert r.exit_code == 1
    assert r.stderr.strip() == "error: NOT_FOUND: project 424242 does not exist (field: project_id)"
    assert "Traceback" not in r.output
    r = cli("project", "create", "x" * 200)
    assert r.exit_code == 1 and "INVALID_ARGUMENT" in r.stderr and "name" in r.stderr
    r = cli("project", "list", key="tf_" + "z" * 40)
    assert r.exit_code == 1 and "UNAUTHENTICATED" in r.stderr
    guest = tenant.key("guest")
    r = cli("project", "delete", str(tenant.project_id), "--yes", key=guest)
    assert r.exit_code == 1 and "PERMISSION_DENIED" in r.stderr


def test_missing_configuration(tmp_path: Path) -> None:
    r = runner.invoke(app, ["project", "list"], env={"TINYFORGE_DATA_DIR": str(tmp_path),
                                                     "TINYFORGE_API_KEY": ""})  # fmt: skip
    assert r.exit_code == 2 and "no API key" in r.stderr


def test_apikey_commands(cli, tenant) -> None:
    made = as_json(cli("apikey", "create", "--project-id", str(tenant.project_id),
                       "--role", "guest", "--name", "ci", "--json"))  # fmt: skip
    secret, key_id = made["secret"], made["api_key"]["id"]
    assert made["api_key"]["role"] == "guest" and made["api_key"]["prefix"] == secret[:10]
    listing = cli("apikey", "list", "--project-id", str(tenant.project_id), "--json")
    assert secret not in listing.stdout
    assert key_id in [k["id"] for k in as_json(listing)]
    assert as_json(cli("project", "list", "--json", key=secret))[0]["id"] == tenant.project_id
    assert cli("apikey", "revoke", str(key_id)).exit_code == 0
    r = cli("project", "list", key=secret)
    assert r.exit_code == 1 and "UNAUTHENTICATED" in r.stderr and "revoked" in r.stderr
    human = cli("apikey", "create", "--role", "member")
    assert human.exit_code == 0 and "secret (shown once): tf_" in human.stdout


def test_member_and_org_commands(cli, tenant) -> None:
    m = as_json(cli("member", "add", "cli@example.com", "--role", "member", "--json"))
    assert m["email"] == "cli@example.com" and m["role"] == "member"
    assert "cli@example.com" in [x["email"] for x in as_json(cli("member", "list", "--json"))]
    assert cli("member", "remove", str(m["user_id"])).exit_code == 0
    assert "cli@example.com" not in [x["email"] for x in as_json(cli("member", "list", "--json"))]
    assert [o["id"] for o in as_json(cli("org", "list", "--json"))] == [tenant.org_id]
    new = as_json(cli("org", "create", f"cli-org-{tenant.org_id}", "--json"))
    assert new["admin_key_secret"].startswith("tf_")
    assert (
        as_json(cli("org", "get", "--json", key=new["admin_key_secret"]))["id"]
        == (new["organization"]["id"])
    )


def test_jobs_commands(cli, platform, tenant) -> None:
    job_id = platform.ctx.jobs.submit(tenant.project_id, "cli_steps", {})
    r = cli("jobs", "watch", str(job_id))
    assert r.exit_code == 0, r.output
    assert [ln for ln in r.stdout.splitlines() if ln.startswith("cli line")] == [
        "cli line 0", "cli line 1", "cli line 2"
    ]  # fmt: skip
    assert f"job {job_id} succeeded" in r.stdout
    got = as_json(cli("jobs", "get", str(job_id), "--json"))
    assert got["status"] == "succeeded" and got["result"] == {"ok": True}
    assert got["log_line_count"] == 3

    failing = platform.ctx.jobs.submit(tenant.project_id, "cli_steps", {"fail": True})
    r = cli("jobs", "watch", str(failing), "--json")
    assert r.exit_code == 1
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert [e["log"]["line"] for e in events if "log" in e][:3] == [
        "cli line 0", "cli line 1", "cli line 2"
    ]  # fmt: skip
    assert events[-1]["job"]["status"] == "failed"
    assert events[-1]["job"]["error"] == "RuntimeError: sensor unplugged"

    listed = as_json(cli("jobs", "list", "--json"))
    assert [j["id"] for j in listed][:2] == [failing, job_id]

    _gate["cli"] = threading.Event()
    waiting = platform.ctx.jobs.submit(tenant.project_id, "cli_waits", {"token": "cli"})
    assert _gate["cli"].wait(30)
    assert cli("jobs", "cancel", str(waiting)).exit_code == 0
    r = cli("jobs", "watch", str(waiting))
    assert r.exit_code == 1 and "cancelled" in r.stderr


def test_status_reports_services(cli, platform) -> None:
    info = as_json(cli("status", "--json"))
    assert info["running"] is True and info["address"] == platform.address
    assert set(info["services"]) == set(platform.server.service_names)
    assert set(info["services"].values()) == {"SERVING"}
