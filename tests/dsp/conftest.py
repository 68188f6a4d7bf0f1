"""Fixtures for the DSP tests: paths to the shared real datasets and small loaders.

The WAV/CSV parsing here is deliberately minimal (Python's wave module, numpy); the real ingest
parsers live in tinyforge.data and are tested there.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

DATASETS = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets"


def dataset_dir(name: str) -> Path:
    """The shared dataset folder ``name``, or skip the test with a clear message."""
    path = (DATASETS / name).resolve()
    if not path.is_dir():
        pytest.skip(f"shared dataset {name!r} not found at {path}")
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono PCM16 WAV → (float32 samples in int16 units, sampling rate)."""
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2
        raw = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return raw.reshape(-1, w.getnchannels())[:, 0].astype(np.float32), w.getframerate()


def read_har_csv(path: Path) -> np.ndarray:
    """STM32 HAR CSV (x,y,z in mg, no header) → float32 [T, 3]."""
    return np.loadtxt(path, delimiter=",", dtype=np.float32)


@pytest.fixture(scope="session")
def fsdd_dir() -> Path:
    return dataset_dir("fsdd") / "recordings"


@pytest.fixture(scope="session")
def har_dir() -> Path:
    return dataset_dir("har_stm32_accel")
