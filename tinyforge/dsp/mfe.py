"""MFE block: mel-filterbank energies (Edge Impulse implementation version 4).

1. Scale int16 audio to [-1, 1): ``x / 32768``; pre-emphasis ``y[t] = x[t] - 0.98 x[t-1]``
   (circular, see :mod:`tinyforge.dsp.audio`).
2. Frames (rectangular, Edge Impulse rounding, at most 500) and power spectrum
   ``P = |FFT_N|^2 / N`` (:mod:`tinyforge.dsp.spectrum`).
3. Mel energies ``E = P @ F^T`` with the Edge Impulse filterbank ``F`` (:mod:`tinyforge.dsp.mel`);
   exact zeros become 1e-10.
4. Noise floor: ``v = clip((10 log10(max(E, 1e-30)) - nf) / (-nf + 12), 0, 1)`` and 8-bit
   quantisation ``min(floor(256 v + 0.5), 255) / 256`` (:mod:`tinyforge.dsp.normalize`).
   Edge Impulse's Python rounds half to even and lets 256 wrap to 0; we round half up and
   saturate at 255, which is what an on-device implementation does.

Output ``[frames, num_filters]`` (kind ``spectrogram``). One axis only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyforge.dsp.audio import (
    FFT_LENGTH,
    FRAME_LENGTH,
    FRAME_STRIDE,
    HIGH_FREQUENCY,
    LOW_FREQUENCY,
    NOISE_FLOOR,
    NUM_FILTERS,
    check_frames,
    check_mel_range,
    preemphasis,
)  # fmt: skip
from tinyforge.dsp.base import ProcessingBlock
from tinyforge.dsp.framing import frame_params, frame_signal
from tinyforge.dsp.mel import ei_filterbank
from tinyforge.dsp.normalize import noise_floor_db, quantize_u8
from tinyforge.dsp.spectrum import apply_matrix, power_spectrum

INT16_SCALE = 1.0 / 32768.0
PREEMPHASIS = 0.98


class MfeBlock(ProcessingBlock):
    name = "mfe"
    title = "Audio (MFE)"
    description = "Mel-filterbank energy spectrogram; great for non-voice audio."
    implementation_version = 4
    output_kind = "spectrogram"
    single_axis = True
    params = (
        FRAME_LENGTH, FRAME_STRIDE, NUM_FILTERS, FFT_LENGTH, LOW_FREQUENCY, HIGH_FREQUENCY,
        NOISE_FLOOR,
    )  # fmt: skip

    def _check(self, p, fs, window_shape, field_prefix) -> tuple[int, ...]:
        n, _, _ = check_frames(p, fs, window_shape[0], field_prefix)
        low, high = check_mel_range(p, fs, field_prefix)
        ei_filterbank(p["num_filters"], p["fft_length"], fs, low, high,
                      field=field_prefix + "num_filters")  # fmt: skip
        return (n, p["num_filters"])

    def _run(self, x: np.ndarray, fs: float, p: dict[str, Any]) -> np.ndarray:
        low, high = check_mel_range(p, fs, "")
        fb = ei_filterbank(p["num_filters"], p["fft_length"], fs, low, high)
        n, flen, stride = frame_params(x.shape[1], fs, p["frame_length"], p["frame_stride"])
        sig = preemphasis(x[..., 0] * np.float32(INT16_SCALE), PREEMPHASIS, 1)
        power = power_spectrum(frame_signal(sig, flen, stride, n), p["fft_length"])
        energies = apply_matrix(power, fb.T)  # one GEMM over all frames of all windows
        np.copyto(energies, np.float32(1e-10), where=energies == 0)
        v = noise_floor_db(energies, p["noise_floor_db"])
        return quantize_u8(v)


BLOCK = MfeBlock()


def mfe(signal: np.ndarray, fs: float, params: dict[str, Any] | None = None) -> np.ndarray:
    """MFE of one window ``[T, 1]`` (int16-scaled audio) → ``[frames, num_filters]``."""
    return BLOCK.features(signal, fs, params)
