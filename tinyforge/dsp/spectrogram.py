"""Spectrogram block (Edge Impulse implementation version 4).

1. Frames: rectangular, length ``ceil'(fs * frame_length)``, stride ``ceil'(fs * frame_stride)``,
   whole frames only (rule in :mod:`tinyforge.dsp.framing`); at most 500 frames.
2. Power spectrum per frame: ``P[k] = |FFT_N(frame)[k]|^2 / N``, k = 0..N/2 (N = fft_length).
3. Noise floor: ``v = (10 log10(max(P, 1e-30)) - nf) / (-nf + 12)``, clipped below at 0 (no upper
   clip in version 4).

Output ``[frames, N/2 + 1]`` (kind ``spectrogram``). The signal is used as given (for audio,
in int16 units as Edge Impulse stores it). One axis only.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from tinyforge.dsp.audio import FFT_LENGTH, FRAME_LENGTH, FRAME_STRIDE, NOISE_FLOOR, check_frames
from tinyforge.dsp.base import ProcessingBlock
from tinyforge.dsp.framing import frame_signal
from tinyforge.dsp.normalize import noise_floor_db
from tinyforge.dsp.spectrum import power_spectrum
from tinyforge.errors import InvalidArgument


class SpectrogramBlock(ProcessingBlock):
    name = "spectrogram"
    title = "Spectrogram"
    description = "Power spectrum over time (dB above a noise floor); for audio and vibration."
    implementation_version = 4
    output_kind = "spectrogram"
    single_axis = True
    params = (
        FRAME_LENGTH,
        FRAME_STRIDE,
        replace(FFT_LENGTH, default=128),
        NOISE_FLOOR,
    )

    def _check(self, p, fs, window_shape, field_prefix) -> tuple[int, ...]:
        for key in ("frame_length", "frame_stride"):
            if p[key] < 4 / fs:
                raise InvalidArgument(
                    f"{key} {p[key]:g} s is shorter than 4 samples at {fs:g} Hz "
                    f"(minimum {4 / fs:g} s)",
                    field=field_prefix + key,
                )
        n, _, _ = check_frames(p, fs, window_shape[0], field_prefix)
        return (n, p["fft_length"] // 2 + 1)

    def _run(self, x: np.ndarray, fs: float, p: dict[str, Any]) -> np.ndarray:
        from tinyforge.dsp.framing import frame_params

        n, flen, stride = frame_params(x.shape[1], fs, p["frame_length"], p["frame_stride"])
        frames = frame_signal(x[..., 0], flen, stride, n)
        power = power_spectrum(frames, p["fft_length"])
        return np.maximum(noise_floor_db(power, p["noise_floor_db"]), np.float32(0))


BLOCK = SpectrogramBlock()


def spectrogram(signal: np.ndarray, fs: float, params: dict[str, Any] | None = None) -> np.ndarray:
    """Spectrogram of one window ``[T, 1]`` → ``[frames, fft_length / 2 + 1]``."""
    return BLOCK.features(signal, fs, params)
