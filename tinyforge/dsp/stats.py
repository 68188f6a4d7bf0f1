"""Moments and summary statistics over the time axis, float32.

For x[0..n-1] with mean m: ``rms = sqrt(mean(x^2))``, ``stdev = sqrt(mean((x - m)^2))``
(population), ``skewness = m3 / m2^1.5`` and ``kurtosis = m4 / m2^2 - 3`` (Fisher, biased: the
definitions of scipy.stats.skew / kurtosis with their defaults), where ``mk = mean((x - m)^k)``.
For a constant signal (m2 == 0) skewness and kurtosis are defined as 0 instead of NaN, so
features never hold NaN. Skewness and kurtosis are scale-free, so they are computed on the
deviations divided by their largest magnitude: that keeps ``m2^2`` far from float32 underflow
for signals of tiny amplitude (e.g. milli-g data scaled by 0.001).
"""

from __future__ import annotations

import numpy as np


def moments(x: np.ndarray, axis: int = -1) -> dict[str, np.ndarray]:
    """mean, min, max, rms, stdev, skewness, kurtosis of ``x`` along ``axis`` (float32)."""
    x = x.astype(np.float32, copy=False)
    n = np.float32(x.shape[axis])
    mean = x.sum(axis=axis, keepdims=True) / n
    d = x - mean
    m2 = (d * d).sum(axis=axis) / n
    # a numerically constant signal: deviations at the float32 noise level of the mean
    peak = np.abs(d).max(axis=axis, keepdims=True)
    tiny = peak <= np.float32(1e-6) * np.abs(mean) + np.float32(1e-30)
    z = d / np.where(tiny, np.float32(1), peak)  # |z| <= 1 and max |z| == 1: no underflow
    z2 = z * z
    m2z = z2.sum(axis=axis) / n
    m3z = (z2 * z).sum(axis=axis) / n
    m4z = (z2 * z2).sum(axis=axis) / n
    tiny = tiny.squeeze(axis)
    safe = np.where(tiny, np.float32(1), m2z)
    skew = np.where(tiny, np.float32(0), m3z / (safe * np.sqrt(safe)))
    kurt = np.where(tiny, np.float32(0), m4z / (safe * safe) - np.float32(3))
    return {
        "mean": mean.squeeze(axis),
        "min": x.min(axis=axis),
        "max": x.max(axis=axis),
        "rms": np.sqrt((x * x).sum(axis=axis) / n),
        "stdev": np.sqrt(m2),
        "skewness": skew.astype(np.float32),
        "kurtosis": kurt.astype(np.float32),
    }
