"""``tinyforge blocks register / ls / show / versions / delete`` against the real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.blocks.conftest import EXAMPLE_BLOCKS
from tinyforge.cli.main import app

runner = CliRunner()


@pytest.fixture
def cli(platform, tenant, tmp_path: Path):  # noqa: ANN001, ANN201
    def run(*args: str) -> Any:
        env = {"TINYFORGE_ADDRESS": platform.address, "TINYFORGE_API_KEY": tenant.admin_key,
               "TINYFORGE_DATA_DIR": str(tmp_path)}
        return runner.invoke(app, list(args), env=env)

    return run


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def test_register_ls_show_versions_delete(cli) -> None:
    zcr = str(EXAMPLE_BLOCKS / "zcr-bands")
    out = ok(cli("blocks", "register", zcr, "--name", "zcr")).stdout
    assert "custom:zcr@1" in out
    made = json.loads(ok(cli("blocks", "register", zcr, "--name", "zcr", "--image",
                             "127.0.0.1:5000/tinyforge-blocks/zcr:2", "--json")).stdout)
    assert (made["version"], made["image"], made["parameters_json"]["type"]) == \
        (2, "127.0.0.1:5000/tinyforge-blocks/zcr:2", "dsp")
    listed = json.loads(ok(cli("blocks", "ls", "--json")).stdout)
    assert [(b["name"], b["version"]) for b in listed] == [("zcr", 2)]
    assert "zcr" in ok(cli("blocks", "ls")).stdout
    shown = ok(cli("blocks", "show", "zcr", "--version", "1")).stdout
    assert "zcr v1 of 2 (dsp)" in shown
    for words in ("bands", "int 1..64", "log_energy", "true or false"):
        assert words in shown
    assert [v["version"] for v in json.loads(ok(cli("blocks", "versions", "zcr",
                                                    "--json")).stdout)] == [1, 2]
    assert "deleted 1 version(s)" in ok(cli("blocks", "delete", "zcr", "--version", "1")).stdout
    assert "deleted 1 version(s)" in ok(cli("blocks", "delete", "zcr")).stdout
    assert json.loads(ok(cli("blocks", "ls", "--json")).stdout) == []


def test_cli_errors_name_the_field(cli, tmp_path: Path) -> None:
    res = cli("blocks", "show", "absent")
    assert res.exit_code == 1 and "NOT_FOUND" in res.output and "absent" in res.output
    res = cli("blocks", "register", str(EXAMPLE_BLOCKS / "zcr-bands"), "--image", "Bad Ref")
    assert res.exit_code == 1 and "field: image" in res.output
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "parameters.json").write_text(json.dumps(
        {"version": 1, "type": "dsp", "info": {"name": "x"},
         "parameters": [{"param": "k", "type": "int", "value": 0, "min": 1}]}))
    res = cli("blocks", "register", str(bad), "--image", "a.b/c:1")
    assert res.exit_code == 1 and "parameters[0].value" in res.output
