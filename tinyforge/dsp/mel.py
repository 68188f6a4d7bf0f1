"""Mel scale and mel filterbanks.

Mel scale (HTK / Edge Impulse): ``mel(f) = 1127 ln(1 + f / 700)``,
``f(mel) = 700 (e^(mel/1127) - 1)`` (within 1e-5 of ``2595 log10(1 + f/700)``).

Edge Impulse filterbank (:func:`ei_filterbank`, used by the MFE and MFCC blocks, implementation
version 4): ``num_filters + 2`` edge frequencies equally spaced in mel between ``low`` and
``high`` Hz; the last edge is lowered by 0.001 Hz (so it never rounds onto the next bin on any
platform); each edge goes to FFT bin ``floor((N + 1) * f / fs)`` (N = FFT length). Filter ``m`` is a
triangle over bins ``left = b[m] .. right = b[m+2]``, peak 1 at ``middle = b[m+1]``:
``(k - left) / (middle - left)`` on ``left < k <= middle``, ``(right - k) / (right - middle)`` on
``middle <= k < right``, 0 elsewhere. Filters are not area-normalised. A filter that covers no bin
is an error (too many filters for the FFT length).

TensorFlow filterbank (:func:`tf_mel_matrix`, used by the MLPerf Tiny KWS front end): triangles
in mel space evaluated at the mel value of each rfft bin centre ``k fs / N``; bin 0 is excluded.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from tinyforge.errors import InvalidArgument


def hz_to_mel(f):
    """Hz → mel (HTK scale)."""
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    """mel → Hz (HTK scale)."""
    return 700.0 * (np.exp(np.asarray(m, dtype=np.float64) / 1127.0) - 1.0)


def ei_filterbank_edges(
    num_filters: int, fft_length: int, fs: float, low_hz: float, high_hz: float
) -> np.ndarray:
    """FFT bin index of the ``num_filters + 2`` filter edges (int array)."""
    mels = np.linspace(hz_to_mel(low_hz), hz_to_mel(high_hz), num_filters + 2)
    hertz = mel_to_hz(mels)
    hertz[-1] -= 0.001
    return np.floor((fft_length + 1) * hertz / fs).astype(np.int64)


def ei_filterbank(
    num_filters: int,
    fft_length: int,
    fs: float,
    low_hz: float = 0.0,
    high_hz: float | None = None,
    field: str = "num_filters",
) -> np.ndarray:
    """Edge Impulse mel filterbank, float32 ``[num_filters, fft_length // 2 + 1]`` (read-only)."""
    high_hz = high_hz or fs / 2.0
    fb, has_empty_filter = _ei_filterbank(
        num_filters, fft_length, float(fs), float(low_hz), float(high_hz)
    )
    if has_empty_filter:
        n_bins = fft_length // 2 + 1
        raise InvalidArgument(
            f"at least one mel filter covers no FFT bin with {num_filters} filters and FFT "
            f"length {fft_length}; use at most {n_bins // 4} filters or a longer FFT",
            field=field,
        )
    return fb


@lru_cache(maxsize=64)
def _ei_filterbank(
    num_filters: int, fft_length: int, fs: float, low_hz: float, high_hz: float
) -> tuple[np.ndarray, bool]:
    """The filterbank and whether a filter covers no bin (cached: checked once, not per call)."""
    n_bins = fft_length // 2 + 1
    edges = ei_filterbank_edges(num_filters, fft_length, fs, low_hz, high_hz)
    fb = np.zeros((num_filters, n_bins), dtype=np.float64)
    k = np.arange(n_bins)
    for m in range(num_filters):
        left, middle, right = edges[m], edges[m + 1], edges[m + 2]
        row = np.zeros(n_bins)
        rise = (k > left) & (k <= middle)
        if middle > left:
            row[rise] = (k[rise] - left) / (middle - left)
        fall = (k >= middle) & (k < right)
        if right > middle:
            row[fall] = (right - k[fall]) / (right - middle)
        fb[m] = row
    out = fb.astype(np.float32)
    out.flags.writeable = False  # cached: shared by every caller
    return out, bool(np.any(np.all(out == 0, axis=1)))


@lru_cache(maxsize=16)
def tf_mel_matrix(
    num_mel_bins: int, num_spectrogram_bins: int, fs: float, low_hz: float, high_hz: float
) -> np.ndarray:
    """``tf.signal.linear_to_mel_weight_matrix`` equivalent, float32 ``[bins, num_mel_bins]``."""
    freqs = np.linspace(0.0, fs / 2.0, num_spectrogram_bins)[1:]
    spec_mel = hz_to_mel(freqs)[:, None]
    edges = np.linspace(hz_to_mel(low_hz), hz_to_mel(high_hz), num_mel_bins + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    lower_slope = (spec_mel - lower) / (center - lower)
    upper_slope = (upper - spec_mel) / (upper - center)
    w = np.maximum(0.0, np.minimum(lower_slope, upper_slope))
    out = np.vstack([np.zeros((1, num_mel_bins)), w]).astype(np.float32)
    out.flags.writeable = False
    return out


@lru_cache(maxsize=16)
def dct2_ortho_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II as a matrix ``[n_out, n_in]`` (``D @ x`` = scipy dct(norm='ortho'))."""
    n = np.arange(n_in)
    k = np.arange(n_out)[:, None]
    d = np.cos(np.pi * k * (2 * n + 1) / (2.0 * n_in)) * np.sqrt(2.0 / n_in)
    d[0] *= np.sqrt(0.5)
    d = d.astype(np.float32)
    d.flags.writeable = False
    return d
