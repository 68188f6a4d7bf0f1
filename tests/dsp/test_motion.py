"""Motion/flat blocks: flatten, raw, spectral analysis (filters, FFT, wavelet), image."""

import numpy as np
import pytest
import pywt
import scipy.signal
import scipy.stats

from tinyforge.dsp import filters, flatten, image, raw, spectral_analysis, wavelet
from tinyforge.dsp.spectral_analysis import fft_bin_range
from tinyforge.dsp.spectrum import welch_max_hold

RNG = np.random.default_rng(3)


def test_flatten_equals_numpy_and_scipy():
    x = (RNG.standard_normal((200, 3)) * [1, 5, 0.1] + [0, 100, -3]).astype(np.float32)
    x[:, 2] = x[:, 2] ** 3  # a skewed axis
    out = flatten.flatten(x, 50, {"scale_axes": 2.0})
    xs = x.astype(np.float64) * 2
    expect = []
    for a in range(3):
        c = xs[:, a]
        expect += [c.mean(), c.min(), c.max(), np.sqrt(np.mean(c**2)), c.std(),
                   scipy.stats.skew(c), scipy.stats.kurtosis(c)]  # fmt: skip
    np.testing.assert_allclose(out, expect, rtol=2e-4, atol=1e-4)


def test_flatten_subset_and_constant_axis():
    x = np.full((50, 2), 7.0, np.float32)
    out = flatten.flatten(x, 10, {"average": False, "minimum": False, "maximum": False,
                                  "rms": True, "stdev": True})  # fmt: skip
    # per axis: rms, stdev, skewness, kurtosis; constant -> skew/kurt defined as 0 (not NaN)
    np.testing.assert_allclose(out, [7, 0, 0, 0, 7, 0, 0, 0], atol=1e-5)


def test_raw_scales_and_interleaves():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_array_equal(raw.raw(x, 10, {"scale_axes": 0.5}), x.reshape(-1) * 0.5)


# -- filters ----------------------------------------------------------------------------------
def direct_form_sos(sos, x):
    """Plain biquad cascade (direct form II transposed), float64, the textbook recursion."""
    y = np.asarray(x, np.float64)
    for b0, b1, b2, _a0, a1, a2 in sos.astype(np.float64):
        z1 = z2 = 0.0
        out = np.empty_like(y)
        for i, v in enumerate(y):
            o = b0 * v + z1
            z1 = b1 * v - a1 * o + z2
            z2 = b2 * v - a2 * o
            out[i] = o
        y = out
    return y


def test_sos_filter_matches_textbook_recursion():
    sos = filters.butterworth_sos("low", 6, 3.0, 26.0)
    x = RNG.standard_normal(300).astype(np.float32)
    np.testing.assert_allclose(filters.sos_filter(sos, x), direct_form_sos(sos, x), atol=1e-4)


def test_butterworth_response_at_cutoff_is_minus_3db():
    for kind in ("low", "high"):
        sos = filters.butterworth_sos(kind, 4, 5.0, 50.0)
        _, h = scipy.signal.sosfreqz(sos, worN=[5.0], fs=50.0)
        assert 20 * np.log10(abs(h[0])) == pytest.approx(-3.01, abs=0.05)


def test_high_pass_removes_dc():
    fs = 100.0
    t = np.arange(2000) / fs
    x = (50.0 + np.sin(2 * np.pi * 10 * t)).astype(np.float32)
    y = filters.sos_filter(filters.butterworth_sos("high", 4, 1.0, fs), x)
    tail = y[1000:]  # after the transient
    assert abs(tail.mean()) < 0.01  # the 50.0 offset is gone
    assert np.sqrt(np.mean(tail**2)) == pytest.approx(np.sqrt(0.5), rel=0.02)  # 10 Hz kept


def test_decimate_keeps_low_tone_and_length():
    fs, r = 300.0, 3
    x = np.sin(2 * np.pi * 5 * np.arange(900) / fs).astype(np.float32)
    y = filters.decimate(x, r)
    assert y.shape == (300,) and filters.decimated_length(900, r) == 300
    ref = np.sin(2 * np.pi * 5 * np.arange(300) / (fs / r))
    # after the filter's group delay the tone survives with its amplitude
    assert np.sqrt(np.mean(y[100:] ** 2)) == pytest.approx(np.sqrt(np.mean(ref**2)), rel=0.02)


# -- spectral analysis -----------------------------------------------------------------------
def test_welch_max_hold_matches_segment_loop():
    x = RNG.standard_normal((2, 100)).astype(np.float32)
    for overlap in (True, False):
        ours = welch_max_hold(x, 32, overlap)
        hop = 16 if overlap else 32
        for row, out in zip(x, ours, strict=True):
            segs = [row[i : i + 32] for i in range(0, 101, hop)]
            ref = np.max([np.abs(np.fft.rfft(s, 32)) ** 2 / 32 for s in segs], axis=0)
            np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


def test_spectral_fft_sine_peak_and_layout():
    fs, n = 64.0, 256
    t = np.arange(n) / fs
    x = np.stack([np.sin(2 * np.pi * 8 * t), 0.5 * np.sin(2 * np.pi * 4 * t)], 1)
    p = {"fft_length": 64, "do_log": False}
    out = spectral_analysis.spectral_analysis(x.astype(np.float32), fs, p)
    per_axis = 5 + 32  # rms, skew, kurt, spectral skew, spectral kurt + bins 1..32
    assert out.shape == (2 * per_axis,)
    for a, (f, amp) in enumerate([(8, 1.0), (4, 0.5)]):
        feats = out[a * per_axis : (a + 1) * per_axis]
        assert feats[0] == pytest.approx(amp / np.sqrt(2), rel=1e-3)  # rms of a sine
        bins = feats[5:]  # bin i+1 is (i+1) * fs / 64 Hz = i+1 Hz
        assert int(np.argmax(bins)) + 1 == f


def test_spectral_bins_follow_filter_type():
    assert fft_bin_range("none", 3, 16, 26) == (1, 9)
    assert fft_bin_range("low", 3, 16, 26) == (1, int(3 * 16 / 26 + 0.5) + 1)
    assert fft_bin_range("high", 3, 16, 26) == (int(3 * 16 / 26 - 0.5) + 1, 9)
    x = RNG.standard_normal((260, 3)).astype(np.float32)
    low = spectral_analysis.spectral_analysis(x, 26, {"filter_type": "low", "filter_cutoff": 3})
    assert low.shape == (3 * (5 + 2),)
    low_mask_only = spectral_analysis.spectral_analysis(
        x, 26, {"filter_type": "low", "filter_cutoff": 3, "filter_order": 0})
    assert low_mask_only.shape == low.shape and not np.allclose(low_mask_only, low)


def test_spectral_log_is_log10_of_linear():
    x = RNG.standard_normal((128, 1)).astype(np.float32)
    lin = spectral_analysis.spectral_analysis(x, 50, {"do_log": False})
    log = spectral_analysis.spectral_analysis(x, 50, {"do_log": True})
    np.testing.assert_allclose(log[:5], lin[:5], rtol=1e-5)
    np.testing.assert_allclose(log[5:], np.log10(lin[5:]), rtol=1e-4, atol=1e-5)


def test_wavedec_matches_pywavelets():
    x = RNG.standard_normal((2, 300)).astype(np.float32)
    for name in ("db4", "haar", "sym5", "bior3.5", "coif2"):
        ours = wavelet.wavedec(x, name, 3)
        ref = pywt.wavedec(x.astype(np.float64), name, level=3, mode="symmetric", axis=-1)
        assert len(ours) == len(ref)
        for a, b in zip(ours, ref, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-4)


def test_wavelet_statistics_match_numpy():
    x = RNG.standard_normal(101).astype(np.float32)
    s = dict(zip(wavelet.STAT_NAMES, wavelet.coefficient_stats(x[None])[0], strict=True))
    xs = np.sort(x.astype(np.float64))
    counts = np.histogram(x, bins=100)[0]
    p = counts[counts > 0] / len(x)
    assert s["entropy"] == pytest.approx(-(p * np.log(p)).sum(), rel=1e-3)
    assert s["median"] == pytest.approx(xs[50]) and s["n5"] == pytest.approx(xs[5])
    assert s["var"] == pytest.approx(np.var(xs, ddof=1), rel=1e-4)
    assert s["zcross"] == pytest.approx(np.count_nonzero(np.diff(x > 0)) / 101)
    assert s["skew"] == pytest.approx(scipy.stats.skew(xs), rel=1e-3, abs=1e-5)
    assert s["kurtosis"] == pytest.approx(scipy.stats.kurtosis(xs), rel=1e-3, abs=1e-5)


def test_wavelet_features_shape():
    x = RNG.standard_normal((256, 3)).astype(np.float32)
    out = spectral_analysis.spectral_analysis(x, 50, {"analysis_type": "Wavelet",
                                                      "wavelet_level": 2})  # fmt: skip
    assert out.shape == (3 * 3 * 14,) and np.all(np.isfinite(out))


# -- image ------------------------------------------------------------------------------------
def test_image_scaling_and_luma():
    px = RNG.integers(0, 256, (4, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(image.image(px), px / 255, rtol=1e-6)
    gray = image.image(px, 0, {"channels": "Grayscale"})
    assert gray.shape == (4, 6, 1)
    np.testing.assert_allclose(gray[..., 0], (px @ [0.299, 0.587, 0.114]) / 255, rtol=1e-5)


def test_moments_of_tiny_amplitude_signals_are_finite_and_scale_free() -> None:
    """Skewness/kurtosis don't depend on scale; at 1e-12 amplitude (below float32's m2^2 range)
    they must still equal those of the unscaled signal instead of turning into NaN."""
    from tinyforge.dsp.stats import moments

    rng = np.random.default_rng(3)
    x = rng.gamma(2.0, size=(3, 400)).astype(np.float32)
    big = moments(x)
    small = moments(x * np.float32(1e-12))
    for k in ("skewness", "kurtosis"):
        assert np.isfinite(small[k]).all()
        np.testing.assert_allclose(small[k], big[k], rtol=1e-4)


def test_spectral_analysis_has_no_nan_on_quiet_scaled_motion() -> None:
    """A near-still accelerometer window in milli-g scaled to g (scale_axes=0.001)."""
    from tinyforge.dsp.registry import get_block

    rng = np.random.default_rng(4)
    w = (1037 + rng.integers(-2, 3, size=(52, 3))).astype(np.float32)
    f = get_block("spectral_analysis").features(w, 26.0, {"scale_axes": 0.001})
    assert np.isfinite(f).all()
