"""FFT helpers: power spectra of frames and Edge Impulse's "Welch max-hold" spectrum.

Power spectrum of a frame ``x`` (length L) with an N-point FFT (``x`` truncated or zero-padded to
N samples first):

    P[k] = |sum_n x[n] exp(-2 pi i k n / N)|^2 / N,   k = 0 .. N/2

Welch max-hold (spectral-analysis block): the signal is cut into segments of N samples starting
at 0, N - overlap, 2 (N - overlap), ... while the start is <= T (a segment running past the end is
zero-padded); the result is the element-wise maximum over segments of ``P[k]``.
"""

from __future__ import annotations

import numpy as np
import scipy.fft


def power_spectrum(frames: np.ndarray, fft_length: int) -> np.ndarray:
    """``|rfft(frames, n=fft_length)|^2 / fft_length`` over the last axis (float32)."""
    n = frames.shape[-1]
    if n == fft_length:
        spec = scipy.fft.rfft(frames, axis=-1)
    else:  # zero-pad (or truncate) into one contiguous buffer, transformed in place
        buf = np.empty(frames.shape[:-1] + (fft_length,), dtype=np.float32)
        m = min(n, fft_length)
        buf[..., :m] = frames[..., :m]
        buf[..., m:] = 0
        spec = scipy.fft.rfft(buf, axis=-1, overwrite_x=True)
    # re^2 + im^2 (not abs()^2: no hypot/sqrt); np.square reads the strided real/imag views
    # several times faster than multiply(a, a) does, and the rest runs in place
    power = np.square(spec.real)
    power += np.square(spec.imag)
    power *= np.float32(1.0 / fft_length)
    return power.astype(np.float32, copy=False)  # float64 frames are transformed in float64


def welch_max_hold(x: np.ndarray, fft_length: int, overlap: bool) -> np.ndarray:
    """Max-hold power spectrum of ``x`` ``[..., T]`` → ``[..., fft_length // 2 + 1]``."""
    n = x.shape[-1]
    hop = fft_length - (fft_length // 2 if overlap else 0)
    starts = np.arange(0, n + 1, hop)
    # pad so that every segment [start, start + fft_length) exists; padding is zeros as in rfft(n=)
    total = int(starts[-1]) + fft_length
    pad = [(0, 0)] * (x.ndim - 1) + [(0, max(0, total - n))]
    xp = np.pad(x, pad)
    segs = np.lib.stride_tricks.sliding_window_view(xp, fft_length, axis=-1)[..., starts, :]
    return power_spectrum(segs, fft_length).max(axis=-2)


def rfft_frequencies(fft_length: int, fs: float) -> np.ndarray:
    """Centre frequency (Hz) of each rfft bin."""
    return np.fft.rfftfreq(fft_length, 1.0 / fs)


def apply_matrix(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``x @ m`` for ``x`` ``[..., k]`` and ``m`` ``[k, j]`` as one 2-D matrix product."""
    return (x.reshape(-1, x.shape[-1]) @ m).reshape(x.shape[:-1] + (m.shape[1],))
