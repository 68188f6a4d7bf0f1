"""Every deployment format through the API (slow): each build of the trained model succeeds,
its firmware-style forms are verified on their target with on-target accuracy equal to the
platform's int8 accuracy, and the zip downloads intact."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from tests.builder.conftest import build_and_wait
from tests.dsp_service.conftest import SUCCEEDED
from tinyforge.deploy.registry import FORMATS
from tinyforge.deploy.targets import TARGETS

# (format, target) pairs: every format, every emulated / native / node runner
MATRIX = [
    ("c-library", "linux-x86_64"), ("c-library", "cortex-m7"), ("c-library", "esp32-c6"),
    ("arduino", "cortex-m4f-80mhz"), ("arduino", "nrf52840"),
    ("cortex-m-firmware", "cortex-m4f-80mhz"), ("cortex-m-firmware", "cortex-m7"),
    ("esp-idf", "esp32-c3"), ("esp-idf", "esp32-c6"),
    ("linux", "linux-x86_64"), ("wasm", "wasm"),
    ("tflite", "linux-x86_64"), ("kserve", "linux-x86_64"),
]


def test_matrix_covers_every_format() -> None:
    assert {f for f, _ in MATRIX} == set(FORMATS)


@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "target"), MATRIX, ids=[f"{f}@{t}" for f, t in MATRIX])
def test_every_format_builds_through_the_api(trained, tmp_path, fmt, target) -> None:
    job, b, _ = build_and_wait(trained.client, fmt, target, model_id=trained.model_id,
                               options={"test_windows": "40"})
    assert job.status == SUCCEEDED, job.error
    if FORMATS[fmt].verified and TARGETS[target].runner:
        assert b.compared_windows > 0
        assert b.on_target_accuracy == b.platform_accuracy
    path, size, sha = trained.client.download_artifact(b.id, tmp_path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha == b.artifact_sha256
    assert sorted(zipfile.ZipFile(path).namelist()) == sorted(b.files)


@pytest.mark.slow
def test_float32_builds(trained, tmp_path) -> None:
    client = trained.client
    job, b, _ = build_and_wait(client, "kserve", "linux-x86_64", model_id=trained.model_id,
                               use_float=True)
    assert job.status == SUCCEEDED, job.error
    assert b.precision == 2  # PRECISION_FLOAT32
    path = client.download_artifact(b.id, tmp_path)[0]
    isvc = next(n for n in zipfile.ZipFile(path).namelist() if n.endswith("inferenceservice.yaml"))
    assert "--model-type=float32" in zipfile.ZipFile(path).read(isvc).decode()
