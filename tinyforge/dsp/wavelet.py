"""Discrete wavelet transform and the wavelet statistics of the spectral-analysis block.

DWT (one level, 'symmetric' boundary as PyWavelets' default): with decomposition filter ``h`` of
length F, the signal x[0..n-1] is extended by half-sample symmetry (x[-1-k] = x[k],
x[n+k] = x[n-1-k]) and

    out[k] = sum_{j=0}^{F-1} h[j] x[2k + 1 - j],   k = 0 .. floor((n + F - 1) / 2) - 1

for the low-pass (approximation, cA) and high-pass (detail, cD) filters. ``level`` levels
repeat this on the approximation; the result is ``[cA_level, cD_level, ..., cD_1]``. Filter
coefficients come from PyWavelets (``pywt.Wavelet(name).dec_lo / dec_hi``); the transform
itself is plain multiply-adds.

Per coefficient array (Edge Impulse's wavelet features, 14 per level): entropy of a 100-bin
histogram over [min, max] (natural log, of counts / n), zero-crossing rate and mean-crossing
rate (sign changes of ``x > 0`` / ``x > mean``, divided by n), the 5/25/75/95/50th percentiles as
``sorted[int((n - 1) p / 100 + 0.5)]``, mean, stdev (population), variance (n - 1), rms,
skewness and kurtosis (both 0 when rms is 0 or the signal is constant).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

WAVELETS = (
    "bior1.3", "bior1.5", "bior2.2", "bior2.4", "bior2.6", "bior2.8", "bior3.1", "bior3.3",
    "bior3.5", "bior3.7", "bior3.9", "bior4.4", "bior5.5", "bior6.8", "coif1", "coif2", "coif3",
    "db2", "db3", "db4", "db5", "db6", "db7", "db8", "db9", "db10", "haar", "rbio1.3", "rbio1.5",
    "rbio2.2", "rbio2.4", "rbio2.6", "rbio2.8", "rbio3.1", "rbio3.3", "rbio3.5", "rbio3.7",
    "rbio3.9", "rbio4.4", "rbio5.5", "rbio6.8", "sym2", "sym3", "sym4", "sym5", "sym6", "sym7",
    "sym8", "sym9", "sym10",
)  # fmt: skip

STAT_NAMES = (
    "entropy", "zcross", "mcross", "n5", "n25", "n75", "n95", "median", "mean", "std", "var",
    "rms", "skew", "kurtosis",
)  # fmt: skip


@lru_cache(maxsize=64)
def wavelet_filters(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(dec_lo, dec_hi) float32 decomposition filters of the named wavelet."""
    import pywt  # only the coefficient tables are used

    w = pywt.Wavelet(name)
    return np.asarray(w.dec_lo, np.float32), np.asarray(w.dec_hi, np.float32)


def min_length(level: int) -> int:
    """Shortest window (samples) the wavelet features accept at ``level`` (as Edge Impulse)."""
    return 32 * 2**level


def _symmetric_extend(x: np.ndarray, pad: int) -> np.ndarray:
    widths = [(0, 0)] * (x.ndim - 1) + [(pad, pad)]
    return np.pad(x, widths, mode="symmetric")


def dwt(x: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One DWT level over the last axis of ``x``: (cA, cD), each ``[..., (n + F - 1) // 2]``."""
    lo, hi = wavelet_filters(name)
    f = lo.shape[0]
    n = x.shape[-1]
    n_out = (n + f - 1) // 2
    xp = _symmetric_extend(x, f - 1)
    # window k starts at extended index 2k + 1 and holds x[2k+1-(F-1)] .. x[2k+1]
    win = np.lib.stride_tricks.sliding_window_view(xp, f, axis=-1)[..., 1 : 2 * n_out : 2, :]
    return win @ lo[::-1], win @ hi[::-1]


def wavedec(x: np.ndarray, name: str, level: int) -> list[np.ndarray]:
    """Multilevel DWT ``[cA_level, cD_level, ..., cD_1]``, as ``pywt.wavedec(x, name, level)``."""
    details = []
    a = x.astype(np.float32, copy=False)
    for _ in range(level):
        a, d = dwt(a, name)
        details.append(d)
    return [a] + details[::-1]


def _entropy(x: np.ndarray) -> np.ndarray:
    n = x.shape[-1]
    lo = x.min(axis=-1, keepdims=True)
    hi = x.max(axis=-1, keepdims=True)
    flat = hi == lo
    scale = np.where(flat, 1.0, 100.0 / np.where(flat, 1.0, hi - lo))
    idx = np.clip(np.floor((x - lo) * scale), 0, 99).astype(np.int64)
    rows = np.arange(int(np.prod(x.shape[:-1]))).reshape(x.shape[:-1] + (1,))
    counts = np.zeros(x.shape[:-1] + (100,), np.float32)
    np.add.at(counts.reshape(-1, 100), (rows.reshape(-1, 1), idx.reshape(-1, n)), 1)
    p = counts / np.float32(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1)), 0)
    return terms.sum(axis=-1).astype(np.float32)


def _crossings(x: np.ndarray, level: np.ndarray) -> np.ndarray:
    above = x > level
    return (above[..., 1:] != above[..., :-1]).sum(axis=-1).astype(np.float32) / np.float32(
        x.shape[-1]
    )


def coefficient_stats(x: np.ndarray) -> np.ndarray:
    """The 14 statistics (:data:`STAT_NAMES` order) of each row of ``x`` ``[..., n]``."""
    from tinyforge.dsp.stats import moments

    n = x.shape[-1]
    m = moments(x)
    srt = np.sort(x, axis=-1)

    def pct(p: float) -> np.ndarray:
        return srt[..., int(((n - 1) * p / 100) + 0.5)]

    mean = m["mean"]
    var = (m["stdev"] ** 2) * np.float32(n / max(n - 1, 1))
    zero_rms = m["rms"] == 0
    out = [
        _entropy(x),
        _crossings(x, np.float32(0)),
        _crossings(x, mean[..., None]),
        pct(5), pct(25), pct(75), pct(95), pct(50),
        mean, m["stdev"], var, m["rms"],
        np.where(zero_rms, 0, m["skewness"]),
        np.where(zero_rms, 0, m["kurtosis"]),
    ]  # fmt: skip
    return np.stack(out, axis=-1).astype(np.float32)


def wavelet_features(x: np.ndarray, name: str, level: int) -> np.ndarray:
    """Wavelet features of ``x`` ``[..., T]`` → ``[..., (level + 1) * 14]``."""
    coeffs = wavedec(x, name, level)
    return np.concatenate([coefficient_stats(c) for c in coeffs], axis=-1)
