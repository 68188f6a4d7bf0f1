"""``tinyforge train|test|classify|models`` against the real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.dsp_service.conftest import AXES, FS, envelope
from tests.train_service.conftest import generate, synthetic_dataset, synthetic_impulse
from tinyforge.cli.main import app
from tinyforge.quantize.runner import TFLiteModel

runner = CliRunner()


@pytest.fixture
def cli(platform, tenant, tmp_path: Path):  # noqa: ANN001, ANN201
    def run(*args: str) -> Any:
        env = {
            "TINYFORGE_ADDRESS": platform.address,
            "TINYFORGE_API_KEY": tenant.admin_key,
            "TINYFORGE_PROJECT_ID": str(tenant.project_id),
            "TINYFORGE_DATA_DIR": str(tmp_path),  # no client.json there
            "COLUMNS": "160",  # rich tables unwrapped
        }
        return runner.invoke(app, list(args), env=env)

    return run


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def test_train_test_classify_models(cli, client, tenant, tmp_path: Path) -> None:
    # no impulse yet: a clear error, exit code 1
    res = cli("train")
    assert res.exit_code == 1 and "0 impulses" in res.output
    ds = synthetic_dataset(client, tenant.project_id, train_per_class=4, test_per_class=1)
    imp = client.create_impulse("motion", synthetic_impulse())
    generate(client, imp.impulse_id)

    out = ok(cli("train", "--epochs", "6", "--learning-rate", "0.01", "--batch-size", "16",
                 "--seed", "1")).stdout
    # live per-epoch progress, then the model summary
    for i in range(1, 7):
        assert f"epoch {i}/6:" in out
    assert "succeeded" in out and "validation:    float" in out and "int8" in out
    model_id = client.list_models()[0].id
    assert f"\nmodel {model_id}: nn (classifier, classification)" in out
    assert f"from impulse {imp.impulse_id} v1" in out

    shown = json.loads(ok(cli("models", "show", str(model_id), "--json")).stdout)
    assert shown["impulse_version"] == 1 and shown["options"]["epochs"] == 6
    assert shown["options"]["batch_size"] == 16 and len(shown["dataset_hash"]) == 64
    listed = ok(cli("models", "ls")).stdout
    assert f"{imp.impulse_id} v1" in listed and "classifier" in listed
    assert [m["id"] for m in json.loads(ok(cli("models", "ls", "--json")).stdout)] == [model_id]

    pngs = tmp_path / "plots"
    out = ok(cli("test", "--png", str(pngs), "--threshold", "0.5")).stdout
    assert "float: accuracy" in out and " int8: accuracy" in out and "int8 - float" in out
    files = sorted(pngs.glob("*.png"))
    assert len(files) == 2
    for f in files:
        with Image.open(f) as img:
            assert img.format == "PNG"
    tested = json.loads(ok(cli("test", "--json")).stdout)
    assert {f["form"] for f in tested["forms"]} == {"float", "int8"}

    # classify a file; --float uses the float32 model
    sid = next(i for i, (_l, _v, c) in ds.samples.items() if c == "testing")
    label, values, _ = ds.samples[sid]
    sample = tmp_path / "sample.json"
    sample.write_bytes(envelope(values, AXES, 1000.0 / FS))
    out = ok(cli("classify", str(sample))).stdout
    assert out.startswith(label) and "(int8)" in out and "timing: DSP" in out
    res = json.loads(ok(cli("classify", str(sample), "--float", "--json")).stdout)
    assert res["form"] == "float" and res["label"] == label and len(res["windows"]) == 7
    bad = cli("classify", str(tmp_path / "missing.json"))
    assert bad.exit_code == 1 and "cannot read" in bad.output

    # download every file of the model; the int8 model loads
    out = ok(cli("models", "download", str(model_id), "--out", str(tmp_path / "dl"))).stdout
    root = tmp_path / "dl" / f"model-{model_id}"
    assert (root / "metadata.json").is_file() and (root / "learn" / "model.keras").is_file()
    assert TFLiteModel((root / "model_int8.tflite").read_bytes()).is_quantized
    assert json.loads((root / "metadata.json").read_text())["model_id"] == model_id
    err = cli("models", "download", str(model_id), "--file", "nope.bin")
    assert err.exit_code == 1 and "NOT_FOUND" in err.output and "model_int8.tflite" in err.output
    err = cli("train", "--epochs", "0")
    assert err.exit_code == 1 and "INVALID_ARGUMENT" in err.output and "epochs" in err.output
