"""Fixtures for the DSP/impulse service tests: the real in-process platform of
tests/api/conftest.py, a synthetic time-series dataset uploaded through the gRPC API, and
helpers to run and watch jobs."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.api.conftest import platform, tenant  # noqa: F401  (fixtures)
from tinyforge.client import TinyForgeClient
from tinyforge.v1 import common_pb2

SUCCEEDED, FAILED = common_pb2.JOB_STATUS_SUCCEEDED, common_pb2.JOB_STATUS_FAILED

DATASETS = (Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets").resolve()

FS = 50.0  # Hz, synthetic data
AXES = ["ax", "ay", "az"]
FREQS = {"slow": 2.0, "fast": 9.0}  # Hz of the sine on ax per class


def dataset(name: str) -> Path:
    """A shared real dataset, or skip with a clear message when absent."""
    path = DATASETS / name
    if not path.is_dir():
        pytest.skip(f"real dataset {name!r} not found at {path} (../shared/datasets absent)")
    return path


def envelope(values: np.ndarray, axes: list[str], interval_ms: float) -> bytes:
    """An unsigned Edge Impulse acquisition JSON, written by hand."""
    return json.dumps({
        "protected": {"ver": "v1", "alg": "none"}, "signature": "0" * 64,
        "payload": {"device_type": "TEST", "interval_ms": interval_ms,
                    "sensors": [{"name": a, "units": "m/s2"} for a in axes],
                    "values": np.asarray(values).round(4).tolist()}}).encode()


def synthetic_values(label: str, n: int, seed: int, axes: list[str] | None = None) -> np.ndarray:
    """[n, axes] float: a sine at the class frequency on ax, noise elsewhere."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FS
    cols = [3.0 * np.sin(2 * math.pi * FREQS[label] * t + seed)]
    cols += [rng.normal(0, 0.3, n) for _ in range((len(axes or AXES)) - 1)]
    return np.stack(cols, axis=1) + rng.normal(0, 0.05, (n, len(cols)))


@dataclass
class SyntheticSet:
    client: TinyForgeClient
    project_id: int
    samples: dict[int, tuple[str, np.ndarray, str]]  # id -> (label, values as uploaded, category)

    def add(self, label: str, n: int, seed: int, category: str = "training",
            axes: list[str] | None = None) -> int:
        values = synthetic_values(label, n, seed, axes).round(4)
        s = self.client.upload_sample(envelope(values, axes or AXES, 1000.0 / FS),
                                      f"{label}-{seed}.json", label=label, category=category)
        self.samples[s.id] = (label, values, category)
        return s.id


def make_synthetic(client: TinyForgeClient, project_id: int, per_class: int = 5,
                   n: int = 200) -> SyntheticSet:
    ds = SyntheticSet(client, project_id, {})
    seed = 0
    for label in FREQS:
        for i in range(per_class):
            seed += 1
            ds.add(label, n, seed, "testing" if i == 0 else "training")
    return ds


def ts_impulse(window_ms: float = 1000, stride_ms: float = 500, *, fs: float = FS,
               axes: list[str] | None = None, fft_length: int = 32,
               extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A time-series impulse: spectral analysis on ax+ay and flatten on every axis."""
    return {
        "input": {"type": "time-series", "window_size_ms": window_ms,
                  "window_stride_ms": stride_ms, "frequency_hz": fs,
                  "axes": axes or AXES, "zero_pad": True},
        "processing": [
            {"name": "spectral", "block": "spectral_analysis",
             "params": {"fft_length": fft_length}, "axes": ["ax", "ay"]},
            {"name": "stats", "block": "flatten"},
            *(extra or []),
        ],
        "learning": [{"name": "nn", "type": "keras-classifier", "inputs": ["spectral", "stats"]}],
    }


def run_job(client: TinyForgeClient, job_id: int) -> tuple[Any, list[str], list[float]]:
    """Watch a job through WatchJob until it ends: (final job, log lines, progress values)."""
    final, lines, progress = None, [], []
    for event in client.watch_job(job_id):
        if event.HasField("log"):
            lines.append(event.log.line)
        else:
            final = event.job
            progress.append(event.job.progress)
    assert final is not None
    return final, lines, progress


def generate(client: TinyForgeClient, impulse_id: int, version: int = 0,
             project_id: int | None = None) -> tuple[Any, dict[str, Any], list[str]]:
    """Start GenerateFeatures and watch it: (final job, result dict, log lines)."""
    resp = client.generate_features(impulse_id, version, project_id=project_id)
    job, lines, _ = run_job(client, resp.job_id)
    from google.protobuf.json_format import MessageToDict

    result = MessageToDict(job.result) if job.HasField("result") else {}
    return job, result, lines


@pytest.fixture
def client(tenant: Any) -> TinyForgeClient:  # noqa: F811
    return tenant.client(default_project_id=tenant.project_id)
