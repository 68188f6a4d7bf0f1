"""``tinyforge build`` (progress, zip, RAM / flash / latency table), ``build targets``,
``build formats``, ``build ls``, ``build show`` against the real server."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tinyforge.cli.main import app

runner = CliRunner()


@pytest.fixture
def cli(platform, trained, tmp_path: Path):  # noqa: ANN001, ANN201
    def run(*args: str) -> Any:
        env = {
            "TINYFORGE_ADDRESS": platform.address,
            "TINYFORGE_API_KEY": trained.tenant.admin_key,
            "TINYFORGE_PROJECT_ID": str(trained.project_id),
            "TINYFORGE_DATA_DIR": str(tmp_path),  # no client.json there
            "COLUMNS": "200",  # rich tables unwrapped
        }
        return runner.invoke(app, list(args), env=env)

    return run


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def _row(out: str, name: str) -> str:
    """The value column of the table row starting with ``name``."""
    line = next(ln for ln in out.splitlines() if ln.strip("│ ").startswith(name))
    return line.split("│")[2].strip()


def test_catalog_commands(cli) -> None:
    out = ok(cli("build", "targets")).stdout
    line = next(ln for ln in out.splitlines() if "cortex-m4f-80mhz" in ln)
    assert "80 MHz" in line and "256 KiB" in line and "1024 KiB" in line
    assert "qemu-mps2-an386" in line and "cortex-m-firmware" in line
    targets = json.loads(ok(cli("build", "targets", "--json")).stdout)
    esp = next(t for t in targets if t["name"] == "esp32-c3")
    assert esp["arch"] == "rv32imc" and esp["ram_bytes"] == 400 * 1024
    formats = {f["name"]: f for f in json.loads(ok(cli("build", "formats", "--json")).stdout)}
    assert formats["kserve"]["supports_float"] and not formats["c-library"]["supports_float"]
    assert formats["esp-idf"]["targets"] == ["esp32-c3", "esp32-c6"]


def test_build_firmware_prints_the_table_and_saves_the_zip(cli, trained, tmp_path) -> None:
    dest = tmp_path / "fw.zip"
    res = ok(cli("build", "--format", "cortex-m-firmware", "--target", "cortex-m4f-80mhz",
                 "--model", str(trained.model_id), "-o", str(dest),
                 "-O", "test_windows=20"))
    out = res.stdout
    assert f"model {trained.model_id} as cortex-m-firmware for cortex-m4f-80mhz" in out
    assert any(n.endswith("/firmware.elf") for n in zipfile.ZipFile(dest).namelist())
    assert f"wrote {dest}" in out
    build_id = int(out.split("build ", 1)[1].split(" ", 1)[0])
    b = trained.client.get_build(build_id)
    # the table shows the build's own numbers
    assert _row(out, "RAM (static + stack)").startswith(f"{b.ram_bytes} B")
    assert _row(out, "flash").startswith(f"{b.flash_bytes} B")
    assert _row(out, "DSP instructions / inference") == f"{b.dsp_instructions:,}"
    assert _row(out, "NN instructions / inference") == f"{b.nn_instructions:,}"
    assert _row(out, "NN latency at 80 MHz") == f"~{b.nn_instructions / 80e3:.2f} ms"
    assert _row(out, "on-target accuracy") == f"{b.on_target_accuracy * 100:.2f}%"
    assert _row(out, "platform int8 accuracy") == _row(out, "on-target accuracy")
    assert _row(out, "windows compared") == "20"

    listed = json.loads(ok(cli("build", "ls", "--json")).stdout)
    assert listed[0]["id"] == build_id and listed[0]["state"] == "ready"
    assert listed[0]["metrics"]["compared"] == 20
    shown = ok(cli("build", "show", str(build_id))).stdout
    assert "NN instructions / inference" in shown


def test_failed_and_refused_builds(cli, trained) -> None:
    res = cli("build", "--format", "c-library", "--target", "cortex-m4f-80mhz",
              "-O", "ram_limit_bytes=256")
    assert res.exit_code == 1
    assert "failed: ResourceExhausted:" in res.output and "256 B available" in res.output
    res = cli("build", "--format", "zip-of-wishes", "--target", "wasm")
    assert res.exit_code == 1 and "INVALID_ARGUMENT" in res.output and "c-library" in res.output
    res = cli("build", "-O", "novalue", "--format", "tflite", "--target", "wasm")
    assert res.exit_code == 1 and "NAME=VALUE" in res.output
    assert cli("build").exit_code == 2
