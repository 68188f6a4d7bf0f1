"""Fixtures for the builder tests: the real in-process platform (tests/api/conftest.py) and a
model trained through the API — on real STM32 HAR accelerometer files (a few per class,
spectral analysis with scale_axes 0.001 + dense; one held-out file per class as testing) or,
when ../shared/datasets is absent, on the synthetic motion set of tests/train_service."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import RunningPlatform, platform, tenant  # noqa: F401  (fixtures)
from tests.dsp_service.conftest import SUCCEEDED, generate, run_job
from tests.train_service.conftest import job_result, synthetic_dataset, synthetic_impulse
from tinyforge.client import TinyForgeClient

DATASETS = (Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets").resolve()
HAR_TRAIN_FILES, HAR_TEST_FILES = 4, 1


@dataclass
class Trained:
    """A project with a trained model: its client, ids, and the testing sample ids."""

    tenant: Any
    client: TinyForgeClient
    project_id: int
    model_id: int
    labels: list[str]
    testing: list[int]  # testing sample ids, ascending
    source: str  # "har" | "synthetic"


def _har(client: TinyForgeClient) -> tuple[dict[str, Any], list[int]]:
    from tinyforge.data.importers import import_har_stm32

    by_label: dict[str, list[Any]] = {}
    for it in import_har_stm32(DATASETS / "har_stm32_accel"):
        by_label.setdefault(it.label, []).append(it)
    testing = []
    for label, items in sorted(by_label.items()):
        items.sort(key=lambda it: it.path.name)
        for i, it in enumerate(items[:HAR_TRAIN_FILES + HAR_TEST_FILES]):
            cat = "testing" if i < HAR_TEST_FILES else "training"
            s = client.upload_file(it.path, label=label, frequency_hz=it.frequency_hz,
                                   category=cat)
            if cat == "testing":
                testing.append(s.id)
    axes = [a.name for a in client.get_sample(testing[0]).axes]
    impulse = {
        "input": {"type": "time-series", "window_size_ms": 2000, "window_stride_ms": 1000,
                  "frequency_hz": 26, "axes": axes},
        "processing": [{"name": "spectral", "block": "spectral_analysis",
                        "params": {"scale_axes": 0.001}}],
        "learning": [{"name": "nn", "type": "classifier", "inputs": ["spectral"]}],
    }
    return impulse, testing


def train_project(platform: RunningPlatform, use_real: bool = True) -> Trained:  # noqa: F811
    """A fresh tenant whose project holds a model trained through the API."""
    t = platform.new_tenant()
    client = t.client(default_project_id=t.project_id)
    if use_real and (DATASETS / "har_stm32_accel").is_dir():
        impulse, testing = _har(client)
        source = "har"
    else:
        ds = synthetic_dataset(client, t.project_id, train_per_class=5, test_per_class=2)
        testing = [sid for sid, (_l, _v, cat) in ds.samples.items() if cat == "testing"]
        impulse = synthetic_impulse()
        source = "synthetic"
    imp = client.create_impulse("deploy-me", impulse)
    job, _, _ = generate(client, imp.impulse_id)
    assert job.status == SUCCEEDED, job.error
    resp = client.start_training(imp.impulse_id, epochs=15, learning_rate=0.01, seed=0)
    job, _, _ = run_job(client, resp.job_id)
    assert job.status == SUCCEEDED, job.error
    model = client.get_model(int(job_result(job)["model_id"]))
    return Trained(t, client, t.project_id, model.id, list(model.labels), sorted(testing),
                   source)


@pytest.fixture(scope="session")
def trained(platform: RunningPlatform) -> Trained:  # noqa: F811
    return train_project(platform)


def build_and_wait(client: TinyForgeClient, fmt: str, target: str,
                   **kw: Any) -> tuple[Any, Any, list[str]]:
    """StartBuild, watch its job to the end: (final job, build record, log lines)."""
    resp = client.start_build(fmt, target, **kw)
    job, lines, _ = run_job(client, resp.job_id)
    return job, client.get_build(resp.build_id), lines
