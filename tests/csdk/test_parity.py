"""Parity of the C DSP blocks (tinyforge/csdk/dsp) with the Python blocks (tinyforge/dsp).

Every case below (block x parameters x input) is built into ONE host binary (inputs go through
a file), on real FSDD audio and HAR accelerometer windows and on synthetic edge cases.

Normalisation: ``err = |c - py| / max(1, |py|)`` per feature — an absolute difference for
features of magnitude <= 1 and a relative one above — must be <= 1e-4. Two documented
exceptions, both checked rather than skipped:
- MFE output is quantised to 1/256 steps: values must be equal, except that a one-step
  difference is allowed where the Python value before quantisation lies within 1e-4 of a
  rounding boundary (float32 rounding decides the side there);
- MFCC with CMVN on input whose cepstrum is constant over time (silence, DC, a steady square
  wave, a single frame): CMVN divides float32 rounding noise by ~1e-10 in both implementations,
  so those (numerically constant) coefficient columns are only checked to be finite; the same
  inputs are compared exactly with CMVN off (``win_size`` 0);
- skewness/kurtosis (flatten) of an axis whose spread is ~1e-3 of its mean are limited by
  float32 cancellation in both implementations: there C must be no farther from the float64
  value than the Python block is (+ 1e-4);
- log10 spectral bins of spectral_analysis whose power is below 1e-6 of the window's largest
  bin are float32 rounding noise in both implementations (e.g. the even harmonics of a square
  wave, exactly 0 in theory): there both sides must be below that floor, not equal.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.csdk.conftest import fit_window, fsdd_files, har_files, read_har_csv, read_wav
from tinyforge.csdk.dspverify import DspCase, run_cases
from tinyforge.dsp import filters
from tinyforge.dsp.audio import check_mel_range, preemphasis
from tinyforge.dsp.framing import frame_params, frame_signal
from tinyforge.dsp.mel import ei_filterbank
from tinyforge.dsp.normalize import noise_floor_db
from tinyforge.dsp.registry import get_block
from tinyforge.dsp.spectral_analysis import fft_bin_range
from tinyforge.dsp.spectrum import apply_matrix, power_spectrum, welch_max_hold

TOL = 1e-4
AUDIO_FS = 8000
HAR_FS = 26

MFCC_PARAMS = [
    {},
    {"frame_length": 0.025, "frame_stride": 0.01, "num_filters": 40, "fft_length": 512,
     "num_cepstral": 20, "win_size": 0},
    {"pre_cof": 0.9, "pre_shift": 2, "low_frequency": 300, "high_frequency": 3500,
     "win_size": 51},
    {"fft_length": 128, "num_filters": 16, "num_cepstral": 10, "frame_stride": 0.015},
]
MFE_PARAMS = [
    {},
    {"frame_length": 0.032, "frame_stride": 0.016, "num_filters": 32, "fft_length": 512,
     "low_frequency": 100, "noise_floor_db": -72},
]
SPECTROGRAM_PARAMS = [
    {},
    {"frame_length": 0.05, "frame_stride": 0.025, "fft_length": 512, "noise_floor_db": -40},
    {"frame_length": 0.064, "frame_stride": 0.032, "fft_length": 256},  # frame > FFT: truncated
]
# (params, window samples at 26 Hz)
SPECTRAL_PARAMS = [
    ({"filter_type": "low", "filter_cutoff": 3, "filter_order": 6, "fft_length": 32}, 52),
    ({"filter_type": "high", "filter_cutoff": 1.5, "filter_order": 4, "fft_length": 64,
      "do_log": False, "do_fft_overlap": False}, 104),
    ({"fft_length": 16, "extra_low_freq": True}, 260),
    ({"input_decimation_ratio": 3, "filter_type": "low", "filter_cutoff": 2, "fft_length": 16},
     312),
    ({"filter_type": "low", "filter_cutoff": 5, "filter_order": 8, "scale_axes": 0.001,
      "fft_length": 128}, 104),
    ({"filter_type": "low", "filter_cutoff": 6, "filter_order": 0}, 52),  # mask only
    ({"analysis_type": "Wavelet", "wavelet": "db4", "wavelet_level": 1}, 104),
    ({"analysis_type": "Wavelet", "wavelet": "haar", "wavelet_level": 2,
      "filter_type": "low", "filter_cutoff": 4}, 130),
    ({"analysis_type": "Wavelet", "wavelet": "sym5", "wavelet_level": 3}, 260),
]
FLATTEN_PARAMS = [{}, {"scale_axes": 0.001, "minimum": False, "skewness": False}]


def _audio_windows() -> list[np.ndarray]:
    files = fsdd_files((0, 3, 7, 9), range(0, 2))[::2]  # 4 digits x 6 speakers, every other
    return [fit_window(read_wav(p)[0], AUDIO_FS) for p, _ in files[:8]]


def _har_windows(n: int) -> list[np.ndarray]:
    out = []
    for path in har_files()[::15]:  # running, stationary and walking files
        x = read_har_csv(path)
        for start in (0, 400):
            if start + n <= len(x):
                out.append(np.ascontiguousarray(x[start:start + n]))
    return out


def _square(n: int, period: int, amp: float, axes: int = 1) -> np.ndarray:
    t = np.arange(n)
    s = np.where((t // (period // 2)) % 2 == 0, amp, -amp).astype(np.float32)
    return np.repeat(s[:, None], axes, axis=1)


def _edge_audio(n: int) -> list[np.ndarray]:
    return [np.zeros((n, 1), np.float32),                       # silence
            _square(n, 40, 32767.0),                            # full-scale 200 Hz square
            np.full((n, 1), 1000.0, np.float32)]                # DC


def _edge_motion(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [np.zeros((n, 3), np.float32), _square(n, 8, 4000.0, 3),
            np.full((n, 3), 981.0, np.float32),
            rng.normal(0, 500, (n, 3)).astype(np.float32)]


def build_cases() -> tuple[list[DspCase], list[tuple[int, np.ndarray]], list[str]]:
    """All parity cases and records; ``kinds[i]`` says where record i's input came from."""
    cases: list[DspCase] = []
    records: list[tuple[int, np.ndarray]] = []
    kinds: list[str] = []

    def add(case: DspCase, inputs: list[np.ndarray], kind: str) -> None:
        cases.append(case)
        for x in inputs:
            records.append((len(cases) - 1, x))
            kinds.append(kind)

    audio = _audio_windows()
    for block, plist in (("mfcc", MFCC_PARAMS), ("mfe", MFE_PARAMS),
                         ("spectrogram", SPECTROGRAM_PARAMS)):
        for p in plist:
            add(DspCase(block, p, AUDIO_FS, (AUDIO_FS, 1)), audio, "fsdd")
            add(DspCase(block, p, AUDIO_FS, (AUDIO_FS, 1)), _edge_audio(AUDIO_FS), "edge")
        if block == "mfcc":
            add(DspCase(block, {"win_size": 0}, AUDIO_FS, (AUDIO_FS, 1)),
                audio[:2] + _edge_audio(AUDIO_FS), "edge")
            add(DspCase(block, {"win_size": 0}, AUDIO_FS, (160, 1)), _edge_audio(160), "short")
        # very short windows: a single frame, and a window shorter than the CMVN window
        add(DspCase(block, {}, AUDIO_FS, (160, 1)), [audio[0][2000:2160]] + _edge_audio(160),
            "short")
    add(DspCase("mfcc", {"frame_stride": 0.01}, AUDIO_FS, (800, 1)), [audio[1][1000:1800]],
        "short")
    for p, n in SPECTRAL_PARAMS:
        add(DspCase("spectral_analysis", p, HAR_FS, (n, 3)), _har_windows(n), "har")
        add(DspCase("spectral_analysis", p, HAR_FS, (n, 3)), _edge_motion(n), "edge")
    add(DspCase("spectral_analysis", {"fft_length": 4}, HAR_FS, (8, 3)),
        [w[:8] for w in _har_windows(8)[:2]] + _edge_motion(8), "short")
    for p in FLATTEN_PARAMS:
        add(DspCase("flatten", p, HAR_FS, (52, 3)), _har_windows(52) + _edge_motion(52), "har")
    add(DspCase("flatten", {}, HAR_FS, (1, 3)), [np.array([[1.0, -2.0, 3.0]], np.float32)],
        "short")
    add(DspCase("raw", {"scale_axes": 0.001}, HAR_FS, (52, 3)), _har_windows(52), "har")
    add(DspCase("raw", {}, AUDIO_FS, (AUDIO_FS, 1)), audio[:2], "fsdd")
    rng = np.random.default_rng(2)
    img = [rng.integers(0, 256, (24, 32, 3)).astype(np.float32),
           np.full((24, 32, 3), 255.0, np.float32), np.zeros((24, 32, 3), np.float32)]
    add(DspCase("image", {"channels": "RGB"}, 0.0, (24, 32, 3)), img, "edge")
    add(DspCase("image", {"channels": "Grayscale"}, 0.0, (24, 32, 3)), img, "edge")
    add(DspCase("image", {"channels": "Grayscale"}, 0.0, (24, 32, 1)), [img[0][..., :1]], "edge")
    return cases, records, kinds


def _mfe_unquantised(x: np.ndarray, p: dict) -> np.ndarray:
    """MFE before its 8-bit quantisation, from the Python block's own building blocks."""
    block = get_block("mfe")
    p = block.validate(p)
    low, high = check_mel_range(p, AUDIO_FS, "")
    fb = ei_filterbank(p["num_filters"], p["fft_length"], AUDIO_FS, low, high)
    n, flen, stride = frame_params(x.shape[0], AUDIO_FS, p["frame_length"], p["frame_stride"])
    sig = preemphasis(x[:, 0] * np.float32(1 / 32768), 0.98, 1)
    e = apply_matrix(power_spectrum(frame_signal(sig, flen, stride, n), p["fft_length"]), fb.T)
    e = np.where(e == 0, np.float32(1e-10), e)
    return np.clip(noise_floor_db(e, p["noise_floor_db"]), 0, 1)


def _flatten_float64(x: np.ndarray, params: dict) -> np.ndarray:
    """Flatten features computed in float64 (from the float32-scaled window)."""
    import warnings

    import scipy.stats

    p = get_block("flatten").validate(params)
    xs = (x * np.float32(p["scale_axes"])).astype(np.float64)
    sd = xs.std(axis=0)
    const = sd <= 1e-6 * np.abs(xs.mean(axis=0)) + 1e-30
    with warnings.catch_warnings():  # scipy warns on the very cancellation this handles
        warnings.simplefilter("ignore", RuntimeWarning)
        skew, kurt = scipy.stats.skew(xs, axis=0), scipy.stats.kurtosis(xs, axis=0)
    stats = {"average": xs.mean(axis=0), "minimum": xs.min(axis=0), "maximum": xs.max(axis=0),
             "rms": np.sqrt((xs * xs).mean(axis=0)), "stdev": sd,
             "skewness": np.where(const, 0, skew), "kurtosis": np.where(const, 0, kurt)}
    names = [s for s in stats if p[s]]
    return np.stack([stats[s] for s in names], axis=-1).reshape(-1)


def _noise_bins(case: DspCase, x: np.ndarray) -> np.ndarray:
    """Mask of spectral_analysis features that are log10 of sub-noise-floor power."""
    p = get_block("spectral_analysis").validate(case.params)
    out = np.zeros(get_block("spectral_analysis").output_spec(p, case.fs, x.shape).shape, bool)
    if p["analysis_type"] != "FFT" or not p["do_log"]:
        return out
    fx = x.T * np.float32(p["scale_axes"])
    fs = case.fs
    if p["input_decimation_ratio"] > 1:
        fx = filters.decimate(fx, int(p["input_decimation_ratio"]))
        fs = fs / int(p["input_decimation_ratio"])
    if p["filter_type"] != "none" and p["filter_order"] > 0:
        sos = filters.butterworth_sos(p["filter_type"], p["filter_order"], p["filter_cutoff"], fs)
        fx = filters.sos_filter(sos, fx)
    fx = fx - fx.mean(axis=-1, keepdims=True)
    spec = welch_max_hold(fx, p["fft_length"], p["do_fft_overlap"])
    start, stop = fft_bin_range(p["filter_type"], p["filter_cutoff"], p["fft_length"], fs)
    floor = 1e-6 * max(float(spec.max()), 1e-30)
    per_axis = 5 + stop - start
    for a in range(x.shape[1]):
        out[a * per_axis + 5: (a + 1) * per_axis] = spec[a, start:stop] < floor
    return out


def compare(case: DspCase, x: np.ndarray, c: np.ndarray) -> tuple[float, float]:
    """(checked, raw) max normalised difference of C features ``c`` vs the Python block's.

    ``raw`` is before the documented exceptions (module docstring), for the report."""
    py = get_block(case.block).features(x, case.fs, case.params)
    assert c.shape == py.shape
    assert np.all(np.isfinite(c)), "C features hold NaN/inf"
    if case.block == "mfe":
        step = np.abs(c - py)
        v = _mfe_unquantised(x, case.params) * 256 + 0.5
        near = np.abs(v - np.round(v)) < TOL * 256
        assert np.all((step == 0) | ((np.abs(step - 1 / 256) < 1e-7) & near)), \
            f"MFE differs away from a rounding boundary: {step.max()}"
        return (float(step[~near].max()) if np.any(~near) else 0.0), float(step.max())
    err = np.abs(c.astype(np.float64) - py) / np.maximum(1.0, np.abs(py))
    raw_err = float(err.max())
    if case.block == "mfcc":
        p = get_block("mfcc").validate(case.params)
        if p["win_size"] > 0:
            raw = get_block("mfcc").features(x, case.fs, {**p, "win_size": 0})
            flat = np.ptp(raw, axis=0) <= 1e-5 * np.maximum(1.0, np.abs(raw).max(axis=0))
            assert np.all(np.isfinite(c[:, flat]))
            err[:, flat] = 0.0
    if case.block == "flatten":
        truth = _flatten_float64(x, case.params)
        ok = np.abs(c - truth) <= np.abs(py - truth) + TOL
        err = np.where(ok, np.minimum(err, TOL), err)
    if case.block == "spectral_analysis":
        noise = _noise_bins(case, x)
        if noise.any():  # both sides report power below the float32 noise floor
            floor_log = np.log10(1e-6 * 10 ** float(np.max(py[~noise & (py < 20)], initial=0)))
            assert np.all(c[noise] < floor_log + 1) and np.all(py[noise] < floor_log + 1)
            err = np.where(noise, 0.0, err)
    return float(err.max()), raw_err


@pytest.fixture(scope="module")
def host_run(tmp_path_factory):
    cases, records, kinds = build_cases()
    run = run_cases(cases, records, "host", tmp_path_factory.mktemp("parity"))
    return cases, records, kinds, run


def test_every_block_matches_python(host_run):
    cases, records, kinds, run = host_run
    worst: dict[str, float] = {}
    raw: dict[str, float] = {}
    failures = []
    for (k, x), kind, feats in zip(records, kinds, run.features, strict=True):
        case = cases[k]
        try:
            err, raw_err = compare(case, x, feats)
        except AssertionError as e:
            failures.append(f"case {k} {case.block} {case.params} on {kind}: {e}")
            continue
        if err > TOL:
            failures.append(f"case {k} {case.block} {case.params} on {kind}: {err:.3g}")
        worst[case.block] = max(worst.get(case.block, 0.0), err)
        if kind in ("fsdd", "har"):
            raw[case.block] = max(raw.get(case.block, 0.0), raw_err)
    print("\nmax normalised |C - Python| per block (checked):",
          {b: f"{e:.2e}" for b, e in worst.items()})
    print("same on real data before any exception:", {b: f"{e:.2e}" for b, e in raw.items()})
    assert not failures, "\n".join(failures)
    assert set(worst) == {"raw", "flatten", "spectral_analysis", "spectrogram", "mfe", "mfcc",
                          "image"}
    assert {"fsdd", "har", "edge", "short"} <= set(kinds)
