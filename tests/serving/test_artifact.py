"""The ``kserve`` deployment format: the zip holds the model directory the predictor loads,
a README and an InferenceService valid for the official KServe CRD (strict mode) that names
the chart's ServingRuntime; bad bundles/options fail cleanly with no artifact left behind."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.crd_schemas import SCHEMAS, crd_errors
from tests.serving.conftest import REPO, Trained
from tinyforge.deploy.kserve_format import inference_service
from tinyforge.deploy.reference import platform_predictions
from tinyforge.deploy.registry import build_artifact
from tinyforge.errors import FailedPrecondition, InvalidArgument
from tinyforge.impulse import Impulse
from tinyforge.serving.model_dir import load_model_source

CHART_RUNTIME = REPO / "charts" / "tinyforge" / "templates" / "servingruntime.yaml"


def _isvc(artifact: Path) -> dict:
    with zipfile.ZipFile(artifact) as zf:
        name = next(n for n in zf.namelist() if n.endswith("/inferenceservice.yaml"))
        return yaml.safe_load(zf.read(name))


def test_zip_holds_the_model_directory(artifact: Path, har_model: Trained) -> None:
    b = har_model.bundle
    with zipfile.ZipFile(artifact) as zf:
        names = zf.namelist()
        top = names[0].split("/")[0]
        assert sorted(n.split("/", 1)[1] for n in names) == sorted([
            "README.md", "impulse.json", "inferenceservice.yaml", "labels.json",
            "model_float32.tflite", "model_int8.tflite", "tinyforge-model.json"])
        assert zf.read(f"{top}/model_int8.tflite") == b.model_int8
        assert zf.read(f"{top}/model_float32.tflite") == b.model_float32
        assert json.loads(zf.read(f"{top}/labels.json")) == list(b.labels)
        assert Impulse.from_json(zf.read(f"{top}/impulse.json")) == b.impulse
        readme = zf.read(f"{top}/README.md").decode()
    assert "tinyforge serve" in readme and "/v2/models/" in readme
    files = load_model_source(artifact)  # what the server loads
    assert files.labels == b.labels and files.model_int8 == b.model_int8
    assert files.impulse == b.impulse


def test_inference_service_is_valid_for_the_official_crd(artifact: Path) -> None:
    if not (SCHEMAS / "kserve").is_dir():
        pytest.skip(f"KServe CRD schemas not found at {SCHEMAS.resolve()} (../shared absent)")
    isvc = _isvc(artifact)
    assert crd_errors(isvc) == []
    model = isvc["spec"]["predictor"]["model"]
    assert model["storageUri"] == "s3://tinyforge/projects/3/builds/17/model/"
    # a typo'd key is caught by the same strict check (the check is not vacuous)
    bad = json.loads(json.dumps(isvc))
    bad["spec"]["predictor"]["model"]["storageURI"] = model.pop("storageUri")
    assert any("storageURI" in e for e in crd_errors(bad))


def test_inference_service_targets_the_chart_serving_runtime(artifact: Path) -> None:
    isvc = _isvc(artifact)
    text = CHART_RUNTIME.read_text()
    formats = re.findall(r"supportedModelFormats:\s*\n\s*- name: (\S+)", text)
    model = isvc["spec"]["predictor"]["model"]
    assert model["modelFormat"]["name"] == formats[0]
    # the chart names it {fullname}-impulse (TINYFORGE_KSERVE_RUNTIME in its ConfigMap)
    assert model["runtime"].endswith("-impulse")
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert isvc["metadata"]["name"] == "har-motion"
    assert isvc["metadata"]["annotations"] == {"serving.kserve.io/deploymentMode":
                                               "RawDeployment"}
    # camelCase keys and no nulls (kubernetes < 37 serialisation)
    dumped = json.dumps(isvc)
    assert "null" not in dumped and "storage_uri" not in dumped


def test_options_and_environment_shape_the_inference_service(monkeypatch) -> None:
    monkeypatch.setenv("TINYFORGE_KSERVE_RUNTIME", "tf-tinyforge-impulse")
    monkeypatch.setenv("TINYFORGE_KSERVE_NAMESPACE", "edge")
    monkeypatch.setenv("TINYFORGE_KSERVE_SERVICE_ACCOUNT", "tf-predictor")
    monkeypatch.setenv("TINYFORGE_S3_BUCKET", "models")
    isvc = inference_service("KWS_v2", {"project_id": "9", "build_id": "b1",
                                        "model_type": "float32"})
    pred = isvc["spec"]["predictor"]
    assert isvc["metadata"]["name"] == "kws-v2" and isvc["metadata"]["namespace"] == "edge"
    assert pred["serviceAccountName"] == "tf-predictor"
    assert pred["model"]["runtime"] == "tf-tinyforge-impulse"
    assert pred["model"]["storageUri"] == "s3://models/projects/9/builds/b1/model/"
    assert pred["model"]["args"] == ["--model-type=float32"]
    if (SCHEMAS / "kserve").is_dir():
        assert crd_errors(isvc) == []
    with pytest.raises(InvalidArgument) as exc:
        inference_service("kws", {"isvc_name": "Bad_Name"})
    assert exc.value.field == "options.isvc_name"
    with pytest.raises(InvalidArgument) as exc:
        inference_service("kws", {"model_type": "int4"})
    assert exc.value.field == "options.model_type"
    with pytest.raises(InvalidArgument):
        inference_service("kws", {"build_id": "../../etc"})


def _build(bundle, out: Path):
    return build_artifact("kserve", "linux-x86_64", bundle, out, options={},
                          log=lambda _m: None, timeout_s=300)


def test_build_verifies_the_packaged_predictor(build, har_model: Trained) -> None:
    """The registry build re-loads the staged directory as the server does and predicts every
    test window as the platform's int8 path (deploy.reference) does."""
    b = har_model.bundle
    m = build.metrics
    assert m["compared"] == len(b.test_windows)
    assert "kserve" in str(m["verified_on"])
    platform = platform_predictions(b.impulse, b.model_int8, b.test_windows)
    truth = [b.labels.index(t) for t in b.test_labels]
    assert m["platform_accuracy"] == pytest.approx(np.mean(np.equal(truth, platform)))
    assert m["on_target_accuracy"] == m["platform_accuracy"]
    assert m["storage_uri"] == "s3://tinyforge/projects/3/builds/17/model/"
    assert m["flash_bytes"] == len(b.model_int8) + len(b.model_float32)


def test_prediction_mismatch_fails_the_build_with_no_artifact(har_model: Trained,
                                                              tmp_path: Path) -> None:
    b = har_model.bundle
    platform = platform_predictions(b.impulse, b.model_int8, b.test_windows)
    wrong = list(platform)
    wrong[1] = (wrong[1] + 1) % len(b.labels)
    with pytest.raises(FailedPrecondition) as exc:
        _build(dataclasses.replace(b, platform_int8_predictions=tuple(wrong)), tmp_path)
    assert "test sample 1" in exc.value.message
    assert list(tmp_path.iterdir()) == []


def test_model_that_disagrees_with_the_impulse_leaves_no_artifact(har_model: Trained,
                                                                  tmp_path: Path) -> None:
    """A model whose input size is not the DSP output is refused before anything is written."""
    b = har_model.bundle
    other = Impulse.from_dict({**b.impulse.to_dict(), "processing": [
        {"name": "spectral", "block": "raw", "params": {}, "axes": []}]})
    with pytest.raises(InvalidArgument) as exc:
        _build(dataclasses.replace(b, impulse=other), tmp_path)
    assert "features" in exc.value.message
    assert list(tmp_path.iterdir()) == []


def test_serve_refuses_a_broken_model_directory(artifact: Path, tmp_path: Path) -> None:
    """`tinyforge serve` on a model directory with a corrupt model exits 2 with the reason."""
    with zipfile.ZipFile(artifact) as zf:
        zf.extractall(tmp_path)
    model_dir = next(tmp_path.iterdir())
    (model_dir / "model_int8.tflite").write_bytes(b"not a model")
    proc = subprocess.run([sys.executable, "-m", "tinyforge.cli.main", "serve", str(model_dir),
                           "--http-port", "1", "--grpc-port", "2"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2, proc.stderr
    assert "TFLite" in proc.stderr
    assert "Traceback" not in proc.stderr
