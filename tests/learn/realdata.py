"""Loaders turning the shared real datasets into window arrays for the learning tests.

Windowing here is plain test-data preparation (fixed-length windows, no resampling); the
features come from the real DSP blocks in :mod:`tinyforge.dsp`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from tinyforge.data.wav import parse_wav

FSDD_RATE = 8000
HAR_RATE = 26.0
BASICMOTIONS_RATE = 10.0


def fsdd_windows(root: Path, seconds: float = 1.0) -> tuple[np.ndarray, ...]:
    """FSDD as ``(x_train, y_train, x_test, y_test)``; x ``[N, T, 1]`` float32 at 8 kHz.

    Each recording is zero-padded (or cut) to ``seconds``. Test = recording index 0-4 (the
    dataset's standard split), train = 5-49.
    """
    n = int(round(seconds * FSDD_RATE))
    xs = {"train": [], "test": []}
    ys = {"train": [], "test": []}
    for path in sorted((root / "fsdd" / "recordings").glob("*.wav")):
        digit, _speaker, index = path.stem.split("_")
        ts = parse_wav(path.read_bytes())
        assert ts.values.shape[1] == 1
        w = np.zeros((n, 1), np.float32)
        v = ts.values[:n]
        w[: len(v)] = v
        split = "test" if int(index) < 5 else "train"
        xs[split].append(w)
        ys[split].append(digit)
    return (np.stack(xs["train"]), np.array(ys["train"]), np.stack(xs["test"]),
            np.array(ys["test"]))


def har_files(root: Path) -> list[tuple[str, str, np.ndarray]]:
    """``(file name, label, values [1000, 3] in mg)`` of every STM32 HAR recording."""
    out = []
    for path in sorted((root / "har_stm32_accel").glob("*/*.csv")):
        values = np.loadtxt(path, delimiter=",", dtype=np.float32)
        out.append((path.name, path.parent.name, values))
    return out


def har_file_split(files: list[tuple[str, str, np.ndarray]], test_fraction: float = 0.25
                   ) -> tuple[list, list]:
    """Hold out whole files: per class, the ``test_fraction`` of files with the lowest
    sha256(name) go to test (stable, independent of the code under test)."""
    train, test = [], []
    for label in sorted({f[1] for f in files}):
        members = sorted((f for f in files if f[1] == label),
                         key=lambda f: hashlib.sha256(f[0].encode()).hexdigest())
        k = max(1, round(test_fraction * len(members)))
        test += members[:k]
        train += members[k:]
    return train, test


def windows(files: list[tuple[str, str, np.ndarray]], size: int, stride: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sliding windows ``[N, size, axes]``, their labels and source file names."""
    xs, ys, names = [], [], []
    for name, label, values in files:
        for start in range(0, len(values) - size + 1, stride):
            xs.append(values[start:start + size])
            ys.append(label)
            names.append(name)
    return np.stack(xs), np.array(ys), np.array(names)


def basicmotions(root: Path) -> tuple[np.ndarray, ...]:
    """BasicMotions ``(x_train, y_train, x_test, y_test)``; x ``[N, 100, 6]`` at 10 Hz,
    from the original .ts files (its own train/test split)."""
    out = []
    for split in ("TRAIN", "TEST"):
        xs, ys = [], []
        in_data = False
        for line in (root / "imu_basicmotions" / f"BasicMotions_{split}.ts").read_text(
                errors="replace").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.lower() == "@data":
                in_data = True
                continue
            if not in_data or line.startswith("@"):
                continue
            *dims, label = line.split(":")
            xs.append(np.array([[float(v) for v in d.split(",")] for d in dims],
                               np.float32).T)
            ys.append(label)
        out += [np.stack(xs), np.array(ys)]
    return tuple(out)
