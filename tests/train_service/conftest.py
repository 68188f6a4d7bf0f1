"""Fixtures for the train service tests: the real in-process platform of tests/api/conftest.py
(every embedded service), a synthetic dataset uploaded through the API, helpers to run jobs."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict

from tests.api.conftest import platform, tenant  # noqa: F401  (fixtures)
from tests.dsp_service.conftest import (
    FAILED,
    SUCCEEDED,
    SyntheticSet,
    dataset,
    generate,
    run_job,
)
from tinyforge.client import TinyForgeClient

__all__ = ["FAILED", "SUCCEEDED", "dataset", "generate", "run_job"]


def synthetic_impulse(learning: list[dict[str, Any]] | None = None,
                      fft_length: int = 32) -> dict[str, Any]:
    """Spectral analysis on ax+ay and flatten on every axis, feeding a classifier."""
    return {
        "input": {"type": "time-series", "window_size_ms": 1000, "window_stride_ms": 500,
                  "frequency_hz": 50, "axes": ["ax", "ay", "az"], "zero_pad": True},
        "processing": [
            {"name": "spectral", "block": "spectral_analysis",
             "params": {"fft_length": fft_length}, "axes": ["ax", "ay"]},
            {"name": "stats", "block": "flatten"},
        ],
        "learning": learning if learning is not None else [
            {"name": "nn", "type": "classifier", "inputs": ["spectral", "stats"],
             "params": {"dense_layers": "16"}}],
    }


def synthetic_dataset(client: TinyForgeClient, project_id: int, train_per_class: int = 5,
                      test_per_class: int = 2, n: int = 200,
                      labels: tuple[str, ...] = ("slow", "fast")) -> SyntheticSet:
    """Sines at a class frequency on ax (tests/dsp_service/conftest.py) in training/testing."""
    ds = SyntheticSet(client, project_id, {})
    seed = 0
    for label in labels:
        for i in range(train_per_class + test_per_class):
            seed += 1
            ds.add(label, n, seed, "testing" if i < test_per_class else "training")
    return ds


def job_result(job: Any) -> dict[str, Any]:
    return MessageToDict(job.result) if job.HasField("result") else {}


def train(client: TinyForgeClient, impulse_id: int, **kw: Any) -> tuple[Any, dict, list[str]]:
    """StartTraining and watch the job: (final job, result, log lines)."""
    resp = client.start_training(impulse_id, **kw)
    job, lines, _ = run_job(client, resp.job_id)
    return job, job_result(job), lines


@pytest.fixture
def client(tenant: Any) -> TinyForgeClient:  # noqa: F811
    return tenant.client(default_project_id=tenant.project_id)
