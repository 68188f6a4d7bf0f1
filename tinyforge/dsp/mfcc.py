"""MFCC block: mel-frequency cepstral coefficients (Edge Impulse implementation version 4).

1. Pre-emphasis ``y[t] = x[t] - pre_cof * x[t - pre_shift]`` (circular; :mod:`.audio`). The
   signal is not rescaled: the log and the normalisation make the result scale-invariant up to
   the constant the mean removal takes out.
2. Frames (rectangular, Edge Impulse rounding, at most 500) and power spectrum
   ``P = |FFT_N|^2 / N``.
3. Mel energies ``E = P @ F^T`` (Edge Impulse filterbank) and frame energy ``e = sum_k P[k]``;
   exact zeros become 1e-10.
4. ``c = DCT-II_ortho(ln E)[:num_cepstral]``; ``c[0]`` is replaced by ``ln e``.
5. If ``win_size > 0``: sliding-window cepstral mean and variance normalisation over
   ``win_size`` frames with symmetric edge reflection (:mod:`tinyforge.dsp.normalize`).

Output ``[frames, num_cepstral]`` (kind ``spectrogram``). One axis only.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from tinyforge.dsp.audio import (
    FFT_LENGTH,
    FRAME_LENGTH,
    FRAME_STRIDE,
    HIGH_FREQUENCY,
    LOW_FREQUENCY,
    NUM_FILTERS,
    check_frames,
    check_mel_range,
    preemphasis,
)  # fmt: skip
from tinyforge.dsp.base import ProcessingBlock
from tinyforge.dsp.framing import frame_params, frame_signal
from tinyforge.dsp.mel import dct2_ortho_matrix, ei_filterbank
from tinyforge.dsp.normalize import cmvnw
from tinyforge.dsp.params import ParamSpec
from tinyforge.dsp.spectrum import apply_matrix, power_spectrum
from tinyforge.errors import InvalidArgument


class MfccBlock(ProcessingBlock):
    name = "mfcc"
    title = "Audio (MFCC)"
    description = "Mel-frequency cepstral coefficients; great for human voice."
    implementation_version = 4
    output_kind = "spectrogram"
    single_axis = True
    params = (
        ParamSpec("num_cepstral", "Number of coefficients", "int", 13,
                  "Number of cepstral coefficients", minimum=1, maximum=512),
        replace(FRAME_LENGTH, default=0.02),
        replace(FRAME_STRIDE, default=0.02),
        replace(NUM_FILTERS, default=32),
        FFT_LENGTH,
        ParamSpec("win_size", "Normalization window size", "int", 101,
                  "Frames in the sliding normalization window (odd); 0 disables normalization",
                  minimum=0, maximum=1001),
        LOW_FREQUENCY,
        HIGH_FREQUENCY,
        ParamSpec("pre_cof", "Pre-emphasis coefficient", "float", 0.98,
                  "Pre-emphasis filter coefficient; 0 disables it", minimum=0.0, maximum=1.0),
        ParamSpec("pre_shift", "Pre-emphasis shift", "int", 1,
                  "Pre-emphasis delay in samples", minimum=1, maximum=1000),
    )  # fmt: skip

    def _check(self, p, fs, window_shape, field_prefix) -> tuple[int, ...]:
        n, _, _ = check_frames(p, fs, window_shape[0], field_prefix)
        if p["win_size"] and p["win_size"] % 2 == 0:
            raise InvalidArgument(
                f"win_size must be 0 or odd, got {p['win_size']}", field=field_prefix + "win_size"
            )
        if p["num_cepstral"] > p["num_filters"]:
            raise InvalidArgument(
                f"num_cepstral ({p['num_cepstral']}) must be at most num_filters "
                f"({p['num_filters']})",
                field=field_prefix + "num_cepstral",
            )
        if p["pre_shift"] >= window_shape[0]:
            raise InvalidArgument(
                f"pre_shift must be below the window length ({window_shape[0]} samples)",
                field=field_prefix + "pre_shift",
            )
        low, high = check_mel_range(p, fs, field_prefix)
        ei_filterbank(p["num_filters"], p["fft_length"], fs, low, high,
                      field=field_prefix + "num_filters")  # fmt: skip
        return (n, p["num_cepstral"])

    def _run(self, x: np.ndarray, fs: float, p: dict[str, Any]) -> np.ndarray:
        low, high = check_mel_range(p, fs, "")
        fb = ei_filterbank(p["num_filters"], p["fft_length"], fs, low, high)
        dct = dct2_ortho_matrix(p["num_filters"], p["num_cepstral"])
        n, flen, stride = frame_params(x.shape[1], fs, p["frame_length"], p["frame_stride"])
        sig = preemphasis(x[..., 0], p["pre_cof"], p["pre_shift"])
        power = power_spectrum(frame_signal(sig, flen, stride, n), p["fft_length"])
        tiny = np.float32(1e-10)
        energy = power.sum(axis=-1)
        np.copyto(energy, tiny, where=energy == 0)
        mel = apply_matrix(power, fb.T)  # one GEMM over all frames of all windows
        np.copyto(mel, tiny, where=mel == 0)
        c = np.log(mel, out=mel) @ dct.T  # batched: a 2-D GEMM rounds differently
        c[..., 0] = np.log(energy, out=energy)
        if p["win_size"] > 0:
            c = cmvnw(c, p["win_size"], variance_normalization=True)
        return c


BLOCK = MfccBlock()


def mfcc(signal: np.ndarray, fs: float, params: dict[str, Any] | None = None) -> np.ndarray:
    """MFCC of one window ``[T, 1]`` → ``[frames, num_cepstral]``."""
    return BLOCK.features(signal, fs, params)
