"""``tinyforge impulse ...`` and ``tinyforge features ...`` against the real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.dsp_service.conftest import make_synthetic, ts_impulse
from tinyforge.cli.main import app

runner = CliRunner()


@pytest.fixture
def cli(platform, tenant, tmp_path: Path):  # noqa: ANN001, ANN201
    def run(*args: str) -> Any:
        env = {
            "TINYFORGE_ADDRESS": platform.address,
            "TINYFORGE_API_KEY": tenant.admin_key,
            "TINYFORGE_PROJECT_ID": str(tenant.project_id),
            "TINYFORGE_DATA_DIR": str(tmp_path),  # no client.json there
        }
        return runner.invoke(app, list(args), env=env)

    return run


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def test_impulse_and_features_commands(cli, client, tenant, tmp_path: Path) -> None:
    ds = make_synthetic(client, tenant.project_id, per_class=3, n=150)
    f = tmp_path / "impulse.json"
    f.write_text(json.dumps(ts_impulse()))
    made = json.loads(ok(cli("impulse", "create", "motion", "--file", str(f), "--json")).stdout)
    iid = made["impulse_id"]
    assert made["version"] == 1 and made["definition"]["input"]["frequency_hz"] == 50
    shown = ok(cli("impulse", "show", str(iid)))
    assert "version 1 of 1" in shown.stdout and '"fft_length": 32' in shown.stdout
    assert "motion" in ok(cli("impulse", "list")).stdout
    assert "spectral_analysis" in ok(cli("impulse", "blocks")).stdout

    f.write_text(json.dumps(ts_impulse(fft_length=16)))
    assert "new version 2" in ok(cli("impulse", "update", str(iid), "--file", str(f))).stdout
    assert "unchanged, still version 2" in ok(cli("impulse", "update", str(iid), "-f",
                                                  str(f))).stdout
    diff = ok(cli("impulse", "diff", str(iid), "1", "2")).stdout
    assert "processing.spectral.params.fft_length: 32 -> 16" in diff

    gen = ok(cli("features", "generate", str(iid)))
    assert "succeeded" in gen.stdout and "to process" in gen.stdout
    n_win = len(ds.samples) * ((150 - 50) // 25 + 1)
    shown = json.loads(ok(cli("features", "show", str(iid), "--json")).stdout)
    assert {b["block"]: b["windows"] for b in shown} == {"spectral": n_win, "stats": n_win}

    png = tmp_path / "plots" / "explore.png"
    out = ok(cli("features", "explore", str(iid), "--block", "spectral", "--png", str(png)))
    assert f"{n_win} of {n_win} windows" in out.stdout and f"fast {n_win // 2}" in out.stdout
    with Image.open(png) as img:
        assert img.format == "PNG" and img.size == (900, 700)
    points = json.loads(ok(cli("features", "explore", str(iid), "--method", "tsne",
                               "--max-points", "30", "--json")).stdout)["points"]
    assert len(points) == 30 and {p["label"] for p in points} == {"fast", "slow"}

    tuned = json.loads(ok(cli("features", "autotune", str(iid), "--block", "spectral",
                              "--max-windows", "40", "--apply", "--json")).stdout)
    assert tuned["best"]["score"] >= tuned["current_score"]
    applied = tuned["applied_version"]
    latest = json.loads(ok(cli("impulse", "show", str(iid), "--json")).stdout)
    assert latest["version"] == applied
    assert latest["definition"]["processing"][0]["params"] == tuned["best"]["params"]


def test_cli_errors(cli, tenant, tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(ts_impulse(fft_length=5)))
    bad = cli("impulse", "create", "x", "--file", str(f))
    assert bad.exit_code == 1
    assert "INVALID_ARGUMENT" in bad.output and "processing[0].params.fft_length" in bad.output
    assert cli("impulse", "create", "x").exit_code == 1  # no definition given
    f.write_text(json.dumps(ts_impulse()))
    iid = json.loads(ok(cli("impulse", "create", "x", "-f", str(f), "--json")).stdout)[
        "impulse_id"]
    # no data: the job fails and its reason is shown, exit code 1
    failed = cli("features", "generate", str(iid))
    assert failed.exit_code == 1 and "no enabled samples" in failed.output
    missing = cli("features", "explore", str(iid))
    assert missing.exit_code == 1 and "FAILED_PRECONDITION" in missing.output
