"""Pieces shared by the audio blocks (spectrogram, MFE, MFCC): frame checks, pre-emphasis.

Pre-emphasis (Edge Impulse / speechpy): ``y[t] = x[t] - cof * x[(t - shift) mod T]``, i.e. the
signal rotated by ``shift`` samples, so the first ``shift`` samples use the end of the window.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyforge.dsp.framing import MAX_FRAMES, frame_params
from tinyforge.dsp.params import ParamSpec
from tinyforge.errors import InvalidArgument

FRAME_LENGTH = ParamSpec(
    "frame_length", "Frame length", "float", 0.02, "The length of each frame in seconds",
    minimum=0.0001, maximum=10.0,
)  # fmt: skip
FRAME_STRIDE = ParamSpec(
    "frame_stride", "Frame stride", "float", 0.01,
    "The step between successive frames in seconds", minimum=0.0001, maximum=10.0,
)  # fmt: skip
FFT_LENGTH = ParamSpec(
    "fft_length", "FFT length", "int", 256, "Number of FFT points", minimum=16, maximum=16384,
    power_of_two=True,
)  # fmt: skip
NUM_FILTERS = ParamSpec(
    "num_filters", "Filter number", "int", 40, "The number of filters in the mel filterbank",
    minimum=2, maximum=512,
)  # fmt: skip
LOW_FREQUENCY = ParamSpec(
    "low_frequency", "Low frequency", "int", 0, "Lowest band edge of mel filters (Hz)",
    minimum=0, maximum=1_000_000,
)  # fmt: skip
HIGH_FREQUENCY = ParamSpec(
    "high_frequency", "High frequency", "int", 0,
    "Highest band edge of mel filters (Hz); 0 means half the sampling rate",
    minimum=0, maximum=1_000_000,
)  # fmt: skip
NOISE_FLOOR = ParamSpec(
    "noise_floor_db", "Noise floor (dB)", "int", -52,
    "Everything less loud than the noise floor will be dropped", minimum=-200, maximum=0,
)  # fmt: skip


def check_frames(
    p: dict[str, Any], fs: float, n_samples: int, field_prefix: str
) -> tuple[int, int, int]:
    """``(n_frames, frame_len, stride)``; raises if no frame fits or more than MAX_FRAMES."""
    n, frame_len, stride = frame_params(n_samples, fs, p["frame_length"], p["frame_stride"])
    if frame_len < 1 or stride < 1:
        raise InvalidArgument(
            f"frame length and stride must be at least one sample at {fs:g} Hz",
            field=field_prefix + "frame_length",
        )
    if n < 1:
        raise InvalidArgument(
            f"frame length {p['frame_length']:g} s ({frame_len} samples) is longer than the "
            f"window ({n_samples} samples at {fs:g} Hz)",
            field=field_prefix + "frame_length",
        )
    if n > MAX_FRAMES:
        raise InvalidArgument(
            f"{n} frames is more than the limit of {MAX_FRAMES}: increase the frame stride or "
            "shorten the window",
            field=field_prefix + "frame_stride",
        )
    return n, frame_len, stride


def check_mel_range(p: dict[str, Any], fs: float, field_prefix: str) -> tuple[float, float]:
    """``(low, high)`` Hz of the filterbank, checked against Nyquist."""
    low = float(p["low_frequency"])
    high = float(p["high_frequency"]) or fs / 2.0
    if high > fs / 2.0:
        raise InvalidArgument(
            f"high frequency {high:g} Hz is above half the sampling rate ({fs / 2:g} Hz)",
            field=field_prefix + "high_frequency",
        )
    if low >= high:
        raise InvalidArgument(
            f"low frequency {low:g} Hz must be below the high frequency {high:g} Hz",
            field=field_prefix + "low_frequency",
        )
    return low, high


def preemphasis(x: np.ndarray, cof: float, shift: int = 1) -> np.ndarray:
    """``x - cof * roll(x, shift)`` over the last axis (float32).

    Written as two slices (no rolled copy); element by element the same float32 operations.
    """
    if cof == 0:
        return x
    c = np.float32(cof)
    shift %= x.shape[-1]
    if shift == 0:
        return x - c * x
    out = np.multiply(x[..., : x.shape[-1] - shift], c)  # c * x[t - shift] for t >= shift
    y = np.empty_like(out, shape=x.shape)
    np.subtract(x[..., shift:], out, out=y[..., shift:])
    tail = np.multiply(x[..., x.shape[-1] - shift :], c)  # wraps around to the first samples
    np.subtract(x[..., :shift], tail, out=y[..., :shift])
    return y
