"""Butterworth and decimation filters as second-order sections (SOS), float32.

Butterworth low/high-pass of even order 2..8 at cut-off ``fc`` Hz for sampling rate ``fs``:
``scipy.signal.butter(order, 2 fc / fs, btype, output='sos')``, rounded to float32 (the
coefficients the C SDK ships). Each section is a biquad
``y[n] = b0 x[n] + b1 x[n-1] + b2 x[n-2] - a1 y[n-1] - a2 y[n-2]`` run in cascade from zero
state (direct form II transposed). The cut-off must lie strictly below Nyquist (fs / 2) and
every pole of the float32 sections must lie inside the unit circle.

Decimation by r (r in 3, 10; 30 = 3*10, 100 = 10*10, 1000 = 10*10*10): Chebyshev type I,
order 8, 0.05 dB ripple, edge 0.8 / r of Nyquist, run with its state initialised to the steady
state for a constant input equal to the first sample, then every r-th sample is kept.
"""

from __future__ import annotations

import numpy as np
import scipy.signal

from tinyforge.errors import InvalidArgument

DECIMATION_RATIOS = (1, 3, 10, 30, 100, 1000)
_RATIO_STAGES = {1: (), 3: (3,), 10: (10,), 30: (3, 10), 100: (10, 10), 1000: (10, 10, 10)}


def butterworth_sos(
    kind: str, order: int, cutoff_hz: float, fs: float, field: str = "filter_cutoff"
) -> np.ndarray:
    """Float32 SOS ``[order/2, 6]`` of a Butterworth ``kind`` ('low'|'high') filter."""
    if order % 2 or not 2 <= order <= 8:
        raise InvalidArgument(
            f"filter order must be even, 2..8 (got {order})", field="filter_order"
        )
    nyquist = fs / 2.0
    if not 0 < cutoff_hz < nyquist:
        raise InvalidArgument(
            f"filter cut-off {cutoff_hz:g} Hz must be above 0 and below Nyquist "
            f"({nyquist:g} Hz at a sampling rate of {fs:g} Hz): lower the cut-off or raise "
            "the sampling rate",
            field=field,
        )
    sos = scipy.signal.butter(order, cutoff_hz / nyquist, btype=kind, output="sos")
    sos = sos.astype(np.float32)
    poles = np.concatenate([np.roots(s[3:].astype(np.float64)) for s in sos])
    if np.max(np.abs(poles)) >= 1.0:
        raise InvalidArgument(
            f"the {kind}-pass filter at {cutoff_hz:g} Hz (fs {fs:g} Hz) is numerically unstable "
            "in float32; move the cut-off away from 0 and from Nyquist",
            field=field,
        )
    return sos


def sos_filter(sos: np.ndarray, x: np.ndarray, zi: np.ndarray | None = None) -> np.ndarray:
    """Run the SOS cascade over the last axis of ``x`` (float32, zero state unless ``zi``)."""
    if zi is None:
        return scipy.signal.sosfilt(sos, x, axis=-1).astype(np.float32, copy=False)
    y, _ = scipy.signal.sosfilt(sos, x, axis=-1, zi=zi)
    return y.astype(np.float32, copy=False)


def _decimation_sos(ratio: int) -> tuple[np.ndarray, np.ndarray]:
    sos = scipy.signal.cheby1(8, 0.05, 0.8 / ratio, output="sos")
    return sos.astype(np.float32), scipy.signal.sosfilt_zi(sos).astype(np.float32)


def decimate(x: np.ndarray, ratio: int) -> np.ndarray:
    """Low-pass and keep every ``ratio``-th sample of ``x`` ``[..., T]``.

    ``ratio`` must be one of DECIMATION_RATIOS.
    """
    if ratio not in _RATIO_STAGES:
        raise InvalidArgument(
            f"decimation ratio must be one of {DECIMATION_RATIOS}, got {ratio}",
            field="input_decimation_ratio",
        )
    for r in _RATIO_STAGES[ratio]:
        sos, zi = _decimation_sos(r)
        # zi has shape [sections, 2]; broadcast to [sections, ..., 2] scaled by each first sample
        x0 = x[..., :1]
        z = zi.reshape((zi.shape[0],) + (1,) * (x.ndim - 1) + (2,)) * x0[None]
        x = sos_filter(sos, x, z)[..., ::r]
    return x


def decimated_length(n: int, ratio: int) -> int:
    """Number of samples left after :func:`decimate` of ``n`` samples."""
    for r in _RATIO_STAGES.get(ratio, ()):
        n = -(-n // r)
    return n
