"""MFCC front end of the MLPerf Tiny keyword-spotting benchmark (``kws01``, DS-CNN).

The recipe of mlcommons/tiny ``benchmark/training/keyword_spotting`` (TensorFlow ops), for
16 kHz audio in 1 s windows giving the model's ``[49, 10]`` input:

1. ``x = x / max(x)`` (peak of the positive samples; skipped when max(x) <= 0).
2. Frames of ``frame_length`` = 30 ms (480 samples), stride 20 ms (320), whole frames only;
   periodic Hann window ``w[n] = 0.5 - 0.5 cos(2 pi n / L)``.
3. Magnitude spectrum ``|FFT_N|`` with N the next power of two >= frame length (512).
4. ``M = |X| @ W`` with TensorFlow's ``linear_to_mel_weight_matrix`` (40 bins, 20..4000 Hz,
   :func:`tinyforge.dsp.mel.tf_mel_matrix`), then ``ln(M + 1e-6)``.
5. ``c[k] = sqrt(2 / B) sum_b ln M[b] cos(pi k (2b + 1) / (2B))`` (TensorFlow's
   ``mfccs_from_log_mel_spectrograms``: DCT-II scaled by ``1/sqrt(2B)``, all k including 0),
   first ``num_cepstral`` (10) coefficients.

Output ``[frames, num_cepstral]`` (kind ``spectrogram``). One axis only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyforge.dsp.audio import check_frames
from tinyforge.dsp.base import ProcessingBlock
from tinyforge.dsp.framing import frame_params, frame_signal
from tinyforge.dsp.mel import tf_mel_matrix
from tinyforge.dsp.params import ParamSpec
from tinyforge.dsp.spectrum import power_spectrum
from tinyforge.errors import InvalidArgument


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def tf_dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``[n_out, n_in]`` matrix of TensorFlow's MFCC DCT: ``sqrt(2/n) cos(pi k (2b+1) / 2n)``."""
    b = np.arange(n_in)
    k = np.arange(n_out)[:, None]
    return (np.sqrt(2.0 / n_in) * np.cos(np.pi * k * (2 * b + 1) / (2.0 * n_in))).astype(
        np.float32
    )


class MlperfKwsMfccBlock(ProcessingBlock):
    name = "mfcc_mlperf_kws"
    title = "Audio (MLPerf Tiny KWS MFCC)"
    description = (
        "MFCC exactly as the MLPerf Tiny keyword-spotting reference model was trained with "
        "(16 kHz, 30 ms frames, 20 ms stride, 40 mel bins, 10 coefficients)."
    )
    implementation_version = 1
    output_kind = "spectrogram"
    single_axis = True
    params = (
        ParamSpec("frame_length", "Frame length", "float", 0.03, "Frame length in seconds",
                  minimum=0.001, maximum=1.0),
        ParamSpec("frame_stride", "Frame stride", "float", 0.02, "Frame stride in seconds",
                  minimum=0.001, maximum=1.0),
        ParamSpec("num_filters", "Mel bins", "int", 40, "Number of mel bins",
                  minimum=2, maximum=256),
        ParamSpec("num_cepstral", "Coefficients", "int", 10, "Number of MFCCs kept",
                  minimum=1, maximum=256),
        ParamSpec("low_frequency", "Low frequency", "float", 20.0, "Lowest mel edge (Hz)",
                  minimum=0.0, maximum=1e6),
        ParamSpec("high_frequency", "High frequency", "float", 4000.0, "Highest mel edge (Hz)",
                  minimum=1.0, maximum=1e6),
        ParamSpec("normalize_peak", "Peak normalisation", "boolean", True,
                  "Divide the window by its maximum first, as the reference training did"),
    )  # fmt: skip

    def _check(self, p, fs, window_shape, field_prefix) -> tuple[int, ...]:
        n, _, _ = check_frames(p, fs, window_shape[0], field_prefix)
        if p["high_frequency"] > fs / 2 or p["low_frequency"] >= p["high_frequency"]:
            raise InvalidArgument(
                f"mel range must satisfy 0 <= low < high <= {fs / 2:g} Hz (half the sampling "
                f"rate), got {p['low_frequency']:g}..{p['high_frequency']:g}",
                field=field_prefix + "high_frequency",
            )
        if p["num_cepstral"] > p["num_filters"]:
            raise InvalidArgument(
                "num_cepstral must be at most num_filters", field=field_prefix + "num_cepstral"
            )
        return (n, p["num_cepstral"])

    def _run(self, x: np.ndarray, fs: float, p: dict[str, Any]) -> np.ndarray:
        n, flen, stride = frame_params(x.shape[1], fs, p["frame_length"], p["frame_stride"])
        nfft = _next_pow2(flen)
        sig = x[..., 0]
        if p["normalize_peak"]:
            peak = sig.max(axis=-1, keepdims=True)
            sig = sig / np.where(peak > 0, peak, np.float32(1))
        window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(flen) / flen)).astype(np.float32)
        frames = frame_signal(sig, flen, stride, n) * window
        mag = np.sqrt(power_spectrum(frames, nfft) * np.float32(nfft))
        mel_w = tf_mel_matrix(p["num_filters"], nfft // 2 + 1, fs, p["low_frequency"],
                              p["high_frequency"])  # fmt: skip
        log_mel = np.log(mag @ mel_w + np.float32(1e-6))
        return log_mel @ tf_dct_matrix(p["num_filters"], p["num_cepstral"]).T


BLOCK = MlperfKwsMfccBlock()


def mlperf_kws_mfcc(
    signal: np.ndarray, fs: float = 16000.0, params: dict[str, Any] | None = None
) -> np.ndarray:
    """MLPerf Tiny KWS MFCC of one window ``[T, 1]`` → ``[frames, 10]`` (``[49, 10]`` for 1 s)."""
    return BLOCK.features(signal, fs, params)
