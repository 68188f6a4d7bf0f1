"""Normalisations used by the audio blocks.

Noise floor (MFE, spectrogram; Edge Impulse implementation version 4): with power ``P`` clipped
to >= 1e-30, ``v = (10 log10 P - nf) / (-nf + 12)`` where ``nf`` is the noise floor in dB
(e.g. -52): ``nf`` dB maps to 0 and +12 dB maps to 1. MFE clips ``v`` to [0, 1] and quantises it
to 8 bits: ``min(floor(256 v + 0.5), 255) / 256``; the spectrogram only clips below at 0.

Cepstral mean and variance normalisation over a sliding window (MFCC, ``cmvnw``): the
``[frames, coeffs]`` matrix is extended at both ends by ``(w - 1) / 2`` rows of half-sample
symmetric reflection (numpy ``pad(mode='symmetric')``, repeated if the window is longer than the
signal); row i becomes ``y_i = x_i - mean(window_i)``, then ``z_i = y_i / (std(window'_i) + 1e-10)``
with the windows taken over the same reflection of ``y``. Each window mean is a fixed linear
combination of rows, so it is computed as a matrix product ``A @ x`` with ``A[i, j]`` = (times row
j appears in window i) / w.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def noise_floor_db(power: np.ndarray, noise_floor: float) -> np.ndarray:
    """Power → ``(10 log10(max(P, 1e-30)) - nf) / (-nf + 12)`` (float32, not clipped)."""
    # the same float32 operations in the same order, in place in one new buffer
    v = np.maximum(power, np.float32(1e-30))
    np.log10(v, out=v)
    v *= np.float32(10.0)
    v -= np.float32(noise_floor)
    v /= np.float32(-noise_floor + 12.0)
    return v


def quantize_u8(v: np.ndarray) -> np.ndarray:
    """Clip to [0, 1], round to 8 bits and back: ``min(floor(256 v + 0.5), 255) / 256``."""
    q = np.clip(v, 0, 1)
    q *= np.float32(256)
    q += np.float32(0.5)
    np.floor(q, out=q)
    np.minimum(q, np.float32(255), out=q)
    q /= np.float32(256)
    return q


@lru_cache(maxsize=64)
def sliding_mean_matrix(rows: int, win_size: int) -> np.ndarray:
    """``A`` ``[rows, rows]`` such that ``A @ x`` = symmetric-padded sliding-window means of x."""
    pad = (win_size - 1) // 2
    idx = np.pad(np.arange(rows), (pad, pad), mode="symmetric")
    a = np.zeros((rows, rows), dtype=np.float64)
    for i in range(rows):
        np.add.at(a[i], idx[i : i + win_size], 1.0)
    a = (a / win_size).astype(np.float32)
    a.flags.writeable = False
    return a


def cmvnw(x: np.ndarray, win_size: int, variance_normalization: bool = True) -> np.ndarray:
    """Sliding-window CMVN of ``x`` ``[..., frames, coeffs]`` (``win_size`` odd)."""
    a = sliding_mean_matrix(x.shape[-2], win_size)
    y = x - a @ x
    if not variance_normalization:
        return y
    m = a @ y
    var = np.maximum(a @ (y * y) - m * m, np.float32(0))
    return y / (np.sqrt(var) + np.float32(1e-10))
