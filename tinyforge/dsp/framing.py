"""Framing: cutting a window into (overlapping) frames, with Edge Impulse's rounding rule.

Frame length and stride are given in seconds and converted to samples with
``ceil_unless_very_close_to_floor(fs * seconds)``: the product is rounded up, except when it lies
less than 0.001 above an integer (floating-point noise such as 0.018 * 1000 = 18.000000000000004),
in which case it is rounded down. No zero padding: only whole frames are kept, so

    n_frames = floor((T - (frame_len - stride)) / stride) = floor((T - frame_len) / stride) + 1

Frame ``i`` covers samples ``[i * stride, i * stride + frame_len)``. No window function is
applied (a rectangular window), as in Edge Impulse's MFE/MFCC/spectrogram blocks.
"""

from __future__ import annotations

import math

import numpy as np

#: the most frames an audio block may produce (Edge Impulse's limit; bounds on-device RAM)
MAX_FRAMES = 500


def ceil_unless_very_close_to_floor(v: float) -> int:
    """Round ``v`` up unless it is within 0.001 above an integer (then round down)."""
    f = math.floor(v)
    if v > f and v - f < 0.001:
        return int(f)
    return int(math.ceil(v))


def frame_params(n_samples: int, fs: float, frame_length_s: float, frame_stride_s: float):
    """``(n_frames, frame_len, stride)`` in samples for a signal of ``n_samples`` samples."""
    frame_len = ceil_unless_very_close_to_floor(fs * frame_length_s)
    stride = ceil_unless_very_close_to_floor(fs * frame_stride_s)
    if frame_len < 1 or stride < 1:
        return 0, frame_len, stride
    n_frames = (n_samples - (frame_len - stride)) // stride
    return int(max(n_frames, 0)), frame_len, stride


def frame_signal(x: np.ndarray, frame_len: int, stride: int, n_frames: int) -> np.ndarray:
    """Frames of ``x`` ``[..., T]`` → ``[..., n_frames, frame_len]`` (a strided view, no copy)."""
    x = np.asarray(x)
    if n_frames < 0 or (n_frames > 0 and (n_frames - 1) * stride + frame_len > x.shape[-1]):
        raise ValueError(
            f"{n_frames} frames of {frame_len} samples every {stride} do not fit in "
            f"{x.shape[-1]} samples"
        )
    # as_strided directly: sliding_window_view's checks cost more than the view, once per chunk
    step = x.strides[-1]
    return np.lib.stride_tricks.as_strided(
        x, x.shape[:-1] + (n_frames, frame_len), x.strides[:-1] + (stride * step, step),
        writeable=False,
    )  # fmt: skip
