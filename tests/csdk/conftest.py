"""Fixtures and loaders for the C SDK tests: shared datasets (skip when absent) and the FSDD
MFCC classifier that several tests compile (trained once per session)."""

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
        raw = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return raw.reshape(-1, w.getnchannels())[:, 0].astype(np.float32), w.getframerate()


def fit_window(x: np.ndarray, n: int) -> np.ndarray:
    """First ``n`` samples of ``x``, zero-padded at the end: float32 ``[n, 1]``."""
    out = np.zeros((n, 1), np.float32)
    out[: min(n, len(x)), 0] = x[:n]
    return out


def fsdd_files(digits: tuple[int, ...], indices: range) -> list[tuple[Path, int]]:
    """FSDD recordings ``{digit}_{speaker}_{index}.wav`` for ``digits`` and ``indices``."""
    rec = dataset_dir("fsdd") / "recordings"
    out = []
    for path in sorted(rec.glob("*.wav")):
        d, _, i = path.stem.split("_")
        if int(d) in digits and int(i) in indices:
            out.append((path, int(d)))
    if not out:
        pytest.skip(f"no FSDD recordings found in {rec}")
    return out


def har_files() -> list[Path]:
    """STM32 HAR CSVs (x,y,z in mg at 26 Hz)."""
    files = sorted(dataset_dir("har_stm32_accel").glob("*/*.csv"))
    if not files:
        pytest.skip("no HAR CSV files in the shared dataset")
    return files


def read_har_csv(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", dtype=np.float32)
