"""Spectral analysis block (Edge Impulse implementation version 4), for motion/vibration data.

Per axis, on ``fx = scale_axes * x``:

1. Optional input decimation by r in {1, 3, 10, 30, 100, 1000} (:func:`filters.decimate`);
   the effective rate becomes ``fs / r``.
2. Optional Butterworth low/high-pass of even order 2..8 at ``filter_cutoff`` Hz as float32
   second-order sections from zero state (:mod:`tinyforge.dsp.filters`); order 0 skips filtering
   but still masks the FFT bins. The cut-off must be below the (decimated) Nyquist rate.
3. ``fx -= mean(fx)``.

FFT variant (``analysis_type = FFT``), per axis:
``[rms(fx), skewness(fx), kurtosis(fx), skewness(S), kurtosis(S), S[start:stop]]`` where ``S`` is
the Welch max-hold power spectrum with ``fft_length`` points (half-overlapping segments if
``do_fft_overlap``; :mod:`tinyforge.dsp.spectrum`), replaced by ``log10(S)`` (zeros → 1e-10) if
``do_log`` before the bins are taken. Bins (DC is skipped): with ``b = min(fc, fs/2) N / fs``,
low-pass: ``1 .. int(b + 0.5)``; high-pass: ``max(1, int(b - 0.5) + 1) .. N/2``; none: ``1 .. N/2``.
With ``extra_low_freq`` the filtered signal is decimated by 10 again, mean-removed, and the
same five statistics + bins at ``fs / 10`` are appended after all axes ("LF" features).

Wavelet variant (``analysis_type = Wavelet``): ``wavelet_level``-level DWT with the named
wavelet and 14 statistics per coefficient array (:mod:`tinyforge.dsp.wavelet`), per axis; the
window needs at least ``32 * 2^level`` samples.

Statistics (rms, skewness, kurtosis) are defined in :mod:`tinyforge.dsp.stats`.
Output ``[features]`` (kind ``flat``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyforge.dsp.base import ProcessingBlock
from tinyforge.dsp.filters import (
    DECIMATION_RATIOS,
    butterworth_sos,
    decimate,
    decimated_length,
    sos_filter,
)  # fmt: skip
from tinyforge.dsp.params import ParamSpec
from tinyforge.dsp.spectrum import welch_max_hold
from tinyforge.dsp.stats import moments
from tinyforge.dsp.wavelet import STAT_NAMES, WAVELETS, min_length, wavelet_features
from tinyforge.errors import InvalidArgument

LF_RATIO = 10


def fft_bin_range(filter_type: str, cutoff: float, fft_length: int, fs: float) -> tuple[int, int]:
    """``(start, stop)`` (stop exclusive) of the spectral-power bins kept as features."""
    cutoff = min(cutoff, fs / 2)
    bin_val = cutoff * fft_length / fs
    if filter_type == "high":
        start = int(bin_val - 0.5) + 1
        return (1 if start == 0 else start), fft_length // 2 + 1
    if filter_type == "low":
        return 1, int(bin_val + 0.5) + 1
    return 1, fft_length // 2 + 1


class SpectralAnalysisBlock(ProcessingBlock):
    name = "spectral_analysis"
    title = "Spectral features"
    description = ("Frequency and power characteristics of a signal (FFT or wavelet), for "
                   "repetitive motion such as accelerometer data.")  # fmt: skip
    implementation_version = 4
    output_kind = "flat"
    params = (
        ParamSpec("scale_axes", "Scale axes", "float", 1.0, "Multiplies axes by this number",
                  minimum=-1e9, maximum=1e9),
        ParamSpec("input_decimation_ratio", "Input decimation ratio", "select", 1,
                  "Decimate the signal first to improve efficiency", valid=DECIMATION_RATIOS),
        ParamSpec("filter_type", "Filter type", "select", "none",
                  "Type of filter applied to the raw data (low = low-pass)",
                  valid=("low", "high", "none")),
        ParamSpec("filter_cutoff", "Cut-off frequency", "float", 3.0, "Cut-off frequency (Hz)",
                  minimum=0.0, maximum=1e6),
        ParamSpec("filter_order", "Filter order", "int", 6,
                  "Number of poles (even); 0 only masks FFT bins and skips filtering",
                  minimum=0, maximum=8),
        ParamSpec("analysis_type", "Analysis type", "select", "FFT",
                  "Type of spectral analysis", valid=("FFT", "Wavelet")),
        ParamSpec("fft_length", "FFT length", "int", 16, "Number of FFT points",
                  minimum=4, maximum=8192, power_of_two=True),
        ParamSpec("do_log", "Take log of spectrum", "boolean", True,
                  "Apply log10 to the spectral power"),
        ParamSpec("do_fft_overlap", "Overlap FFT frames", "boolean", True,
                  "Half-overlap FFT segments when more than one covers the window"),
        ParamSpec("extra_low_freq", "Improve low frequency resolution", "boolean", False,
                  "Also analyse the signal decimated by 10"),
        ParamSpec("wavelet_level", "Wavelet decomposition level", "int", 1,
                  "Decomposition level", minimum=0, maximum=10),
        ParamSpec("wavelet", "Wavelet", "select", "db4", "Wavelet to use", valid=WAVELETS),
    )  # fmt: skip

    def _check(self, p, fs, window_shape, field_prefix) -> tuple[int, ...]:
        n_samples, n_axes = window_shape
        ratio = int(p["input_decimation_ratio"])
        fs_eff = fs / ratio
        n_eff = decimated_length(n_samples, ratio)
        filtering = p["filter_type"] != "none"
        if ratio > 1 and filtering and p["filter_cutoff"] > fs_eff / 2 * 0.9:
            raise InvalidArgument(
                f"input decimation ratio {ratio} leaves a Nyquist rate of {fs_eff / 2:g} Hz, too "
                f"low for the {p['filter_cutoff']:g} Hz cut-off: lower the ratio",
                field=field_prefix + "input_decimation_ratio",
            )
        if filtering and p["filter_order"] > 0:
            butterworth_sos(p["filter_type"], p["filter_order"], p["filter_cutoff"], fs_eff,
                            field=field_prefix + "filter_cutoff")  # fmt: skip
        if p["analysis_type"] == "Wavelet":
            need = min_length(p["wavelet_level"])
            if n_eff < need:
                ms = int(np.ceil(need / fs_eff * 1000))
                raise InvalidArgument(
                    f"wavelet level {p['wavelet_level']} needs at least {need} samples; increase "
                    f"the window to at least {ms} ms or reduce the level",
                    field=field_prefix + "wavelet_level",
                )
            return (n_axes * (p["wavelet_level"] + 1) * len(STAT_NAMES),)
        n = self._axis_features(p, fs_eff, field_prefix)
        total = n_axes * n
        if p["extra_low_freq"]:
            if decimated_length(n_eff, LF_RATIO) < p["fft_length"] / 2:
                raise InvalidArgument(
                    f"extra low-frequency analysis needs at least "
                    f"{p['fft_length'] // 2 * LF_RATIO} samples after decimation",
                    field=field_prefix + "extra_low_freq",
                )
            total += n_axes * self._axis_features(p, fs_eff / LF_RATIO, field_prefix)
        return (total,)

    @staticmethod
    def _axis_features(p, fs, field_prefix) -> int:
        start, stop = fft_bin_range(p["filter_type"], p["filter_cutoff"], p["fft_length"], fs)
        if stop <= start:
            raise InvalidArgument(
                "the cut-off frequency masks every FFT bin: raise the cut-off or the FFT length",
                field=field_prefix + "filter_cutoff",
            )
        return 5 + (stop - start)

    @staticmethod
    def _fft_features(fx: np.ndarray, fs: float, p: dict[str, Any]) -> np.ndarray:
        """``fx`` [N, A, T] (mean removed) → [N, A, 5 + bins]."""
        m = moments(fx)
        spec = welch_max_hold(fx, p["fft_length"], p["do_fft_overlap"])
        sm = moments(spec)
        if p["do_log"]:
            spec = np.log10(np.where(spec == 0, np.float32(1e-10), spec))
        start, stop = fft_bin_range(p["filter_type"], p["filter_cutoff"], p["fft_length"], fs)
        head = np.stack([m["rms"], m["skewness"], m["kurtosis"], sm["skewness"], sm["kurtosis"]],
                        axis=-1)  # fmt: skip
        return np.concatenate([head, spec[..., start:stop]], axis=-1)

    def _run(self, x: np.ndarray, fs: float, p: dict[str, Any]) -> np.ndarray:
        n = x.shape[0]
        fx = np.ascontiguousarray(np.swapaxes(x, 1, 2)) * np.float32(p["scale_axes"])
        ratio = int(p["input_decimation_ratio"])
        if ratio > 1:
            fx = decimate(fx, ratio)
            fs = fs / ratio
        if p["filter_type"] != "none" and p["filter_order"] > 0:
            sos = butterworth_sos(p["filter_type"], p["filter_order"], p["filter_cutoff"], fs)
            fx = sos_filter(sos, fx)
        fx = fx - fx.mean(axis=-1, keepdims=True)
        if p["analysis_type"] == "Wavelet":
            return wavelet_features(fx, p["wavelet"], p["wavelet_level"]).reshape(n, -1)
        out = [self._fft_features(fx, fs, p).reshape(n, -1)]
        if p["extra_low_freq"]:
            lf = decimate(fx, LF_RATIO)
            lf = lf - lf.mean(axis=-1, keepdims=True)
            out.append(self._fft_features(lf, fs / LF_RATIO, p).reshape(n, -1))
        return np.concatenate(out, axis=-1)


BLOCK = SpectralAnalysisBlock()


def spectral_analysis(
    signal: np.ndarray, fs: float, params: dict[str, Any] | None = None
) -> np.ndarray:
    """Spectral features of one window ``[T, axes]`` → ``[features]``."""
    return BLOCK.features(signal, fs, params)
