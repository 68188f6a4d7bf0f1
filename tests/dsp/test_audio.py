"""Audio blocks and their shared maths: framing, FFT, mel filterbank, spectrogram, MFE, MFCC."""

import math

import librosa
import numpy as np
import pytest
import scipy.fft

from tinyforge.dsp import mel, mfcc, mfe, mlperf_kws, spectrogram
from tinyforge.dsp.framing import ceil_unless_very_close_to_floor, frame_params, frame_signal
from tinyforge.dsp.spectrum import power_spectrum

RNG = np.random.default_rng(7)


def tone(freq_hz, fs, n, amp=10000.0):
    return (amp * np.sin(2 * np.pi * freq_hz * np.arange(n) / fs)).astype(np.float32)


# -- framing ----------------------------------------------------------------------------------
def test_ceil_rule_absorbs_float_noise():
    assert ceil_unless_very_close_to_floor(0.018 * 1000) == 18  # 18.000000000000004
    assert ceil_unless_very_close_to_floor(160.5) == 161
    assert ceil_unless_very_close_to_floor(160.0) == 160


@pytest.mark.parametrize("n, fl, fs_, expect", [(8000, 0.02, 0.02, 50), (8000, 0.02, 0.01, 99),
                                                (8000, 0.025, 0.01, 98), (159, 0.02, 0.01, 0)])
def test_frame_count(n, fl, fs_, expect):
    count, flen, stride = frame_params(n, 8000, fl, fs_)
    assert count == expect
    if count:  # every frame lies inside the signal and one more would not
        assert (count - 1) * stride + flen <= n < count * stride + flen


def test_frame_signal_matches_index_arithmetic():
    x = np.arange(100, dtype=np.float32)
    frames = frame_signal(x, 10, 7, 13)
    assert frames.shape == (13, 10)
    for i in range(13):
        np.testing.assert_array_equal(frames[i], x[i * 7 : i * 7 + 10])


# -- FFT --------------------------------------------------------------------------------------
def test_sine_energy_lands_in_its_bin():
    fs, n_fft = 8000, 256
    k = 19  # bin-centred tone: all energy in bin k
    x = tone(k * fs / n_fft, fs, n_fft, amp=1.0)
    p = power_spectrum(x[None], n_fft)[0]
    assert int(np.argmax(p)) == k
    # Parseval: the tone's energy sum(x^2) = N/2 splits into bins k and N-k of the full FFT
    assert p[k] == pytest.approx(n_fft / 4, rel=1e-4)
    assert np.sum(p) - p[k] < 1e-6 * p[k]


def test_power_spectrum_matches_librosa_stft():
    fs, n_fft, flen, hop = 8000, 256, 160, 80
    x = RNG.standard_normal(4000).astype(np.float32)
    n, _, _ = frame_params(len(x), fs, flen / fs, hop / fs)
    ours = power_spectrum(frame_signal(x, flen, hop, n), n_fft)
    # librosa centres a shorter window inside n_fft: shift the signal so frames line up
    off = (n_fft - flen) // 2
    padded = np.concatenate([np.zeros(off, np.float32), x, np.zeros(n_fft, np.float32)])
    stft = librosa.stft(padded, n_fft=n_fft, hop_length=hop, win_length=flen, window="boxcar",
                        center=False)[:, :n].T  # fmt: skip
    np.testing.assert_allclose(ours, np.abs(stft) ** 2 / n_fft, rtol=1e-3, atol=1e-3)


# -- mel --------------------------------------------------------------------------------------
def test_mel_scale_is_htk():
    f = np.array([0.0, 300.0, 1000.0, 4000.0, 7999.0])
    np.testing.assert_allclose(mel.hz_to_mel(f), 1127 * np.log(1 + f / 700), rtol=1e-12)
    # librosa's HTK mel uses 2595 log10(.): the same curve up to its rounded constant
    np.testing.assert_allclose(mel.hz_to_mel(f), librosa.hz_to_mel(f, htk=True), rtol=1e-5)
    np.testing.assert_allclose(mel.mel_to_hz(mel.hz_to_mel(f)), f, atol=1e-9)


@pytest.mark.parametrize("nf, nfft, fs, low, high", [(40, 256, 8000, 0, 4000),
                                                     (32, 512, 16000, 300, 8000),
                                                     (20, 128, 8000, 100, 3000)])
def test_ei_filterbank_triangles(nf, nfft, fs, low, high):
    fb = mel.ei_filterbank(nf, nfft, fs, low, high)
    assert fb.shape == (nf, nfft // 2 + 1) and fb.dtype == np.float32
    # the edges: equally spaced in mel, on bin floor((N+1) f / fs)
    mels = np.linspace(1127 * math.log(1 + low / 700), 1127 * math.log(1 + high / 700), nf + 2)
    hz = 700 * (np.exp(mels / 1127) - 1)
    hz[-1] -= 0.001
    edges = np.floor((nfft + 1) * hz / fs).astype(int)
    for m in range(nf):
        left, mid, right = edges[m : m + 3]
        row = fb[m]
        assert row[mid] == 1.0  # peak at the centre bin
        assert np.all(row[:left + 1] == 0) and np.all(row[right:] == 0)  # support (left, right)
        assert np.all(np.diff(row[left : mid + 1]) >= 0) and np.all(np.diff(row[mid:right]) <= 0)
        # unnormalised discrete triangle: sum = (right - left) / 2
        assert row.sum() == pytest.approx((right - left) / 2, rel=1e-6)
    # adjacent triangles overlap into a partition of unity between the first and last centre
    cols = fb.sum(axis=0)[edges[1] : edges[nf] + 1]
    np.testing.assert_allclose(cols, 1.0, rtol=1e-6)


def test_dct_matrix_matches_scipy_ortho_dct():
    x = RNG.standard_normal((5, 32))
    d = mel.dct2_ortho_matrix(32, 13)
    np.testing.assert_allclose(x @ d.T, scipy.fft.dct(x, type=2, norm="ortho")[:, :13],
                               rtol=1e-5, atol=1e-5)  # fmt: skip


# -- spectrogram / MFE ---------------------------------------------------------------------------
def test_spectrogram_peak_and_db_scale():
    fs = 8000
    x = tone(1000, fs, 8000)[:, None]
    s = spectrogram.spectrogram(x, fs, {"frame_length": 0.032, "frame_stride": 0.032,
                                        "fft_length": 256})  # fmt: skip
    assert s.shape == (31, 129)
    assert np.all(np.argmax(s, axis=1) == 32)  # 1000 Hz * 256 / 8000
    # value = (10 log10 P - nf) / (12 - nf) with P of the first frame computed independently
    frame = x[:256, 0].astype(np.float64)
    p = np.abs(np.fft.rfft(frame)) ** 2 / 256
    expect = np.maximum((10 * np.log10(np.maximum(p, 1e-30)) + 52) / 64, 0)
    np.testing.assert_allclose(s[0], expect, atol=1e-4)


def test_silence_gives_mfe_at_the_noise_floor():
    out = mfe.mfe(np.zeros((8000, 1), np.float32), 8000)
    assert out.shape == (99, 40) and out.dtype == np.float32
    assert np.all(out == 0)


def test_mfe_is_quantised_and_loud_tone_saturates_its_band():
    out = mfe.mfe(tone(1000, 8000, 8000, amp=30000)[:, None], 8000)
    np.testing.assert_array_equal(out * 256, np.round(out * 256))
    assert out.min() >= 0 and out.max() <= 255 / 256
    band = int(np.argmax(out.mean(axis=0)))
    centres = mel.mel_to_hz(np.linspace(0, mel.hz_to_mel(4000), 42))[1:-1]
    assert abs(centres[band] - 1000) < 120  # the filter centred nearest 1 kHz


def test_mfe_level_follows_the_noise_floor_formula():
    # white noise: mean band energy known analytically -> compare the dB mapping
    fs = 8000
    x = (RNG.standard_normal(8000) * 3000).astype(np.float32)[:, None]
    out = mfe.mfe(x, fs, {"noise_floor_db": -80})
    sig = x[:, 0] / 32768
    sig = sig - 0.98 * np.roll(sig, 1)
    n, flen, stride = frame_params(8000, fs, 0.02, 0.01)
    frames = np.stack([sig[i * stride : i * stride + flen] for i in range(n)]).astype(np.float64)
    p = np.abs(np.fft.rfft(frames, 256)) ** 2 / 256
    e = p @ mel.ei_filterbank(40, 256, fs).T.astype(np.float64)
    v = np.clip((10 * np.log10(e) + 80) / 92, 0, 1)
    np.testing.assert_allclose(out, np.minimum(np.floor(v * 256 + 0.5), 255) / 256, atol=1 / 256)


# -- MFCC -------------------------------------------------------------------------------------
def reference_mfcc(x, fs, fl, stride_s, nf, nfft, ncep, win, cof):
    """MFCC by the documented definition, in float64 with librosa/scipy building blocks."""
    y = x - cof * np.roll(x, 1)
    n, flen, stride = frame_params(len(y), fs, fl, stride_s)
    off = (nfft - flen) // 2
    padded = np.concatenate([np.zeros(off), y, np.zeros(nfft)])
    power = np.abs(librosa.stft(padded, n_fft=nfft, hop_length=stride, win_length=flen,
                                window="boxcar", center=False)[:, :n].T) ** 2 / nfft  # fmt: skip
    mel_e = power @ mel.ei_filterbank(nf, nfft, fs).T.astype(np.float64)
    c = scipy.fft.dct(np.log(mel_e), type=2, norm="ortho", axis=-1)[:, :ncep]
    c[:, 0] = np.log(power.sum(axis=1))
    if win == 0:
        return c
    pad = (win - 1) // 2
    cp = np.pad(c, ((pad, pad), (0, 0)), mode="symmetric")
    ms = np.stack([c[i] - cp[i : i + win].mean(axis=0) for i in range(n)])
    mp = np.pad(ms, ((pad, pad), (0, 0)), mode="symmetric")
    return np.stack([ms[i] / (mp[i : i + win].std(axis=0) + 1e-10) for i in range(n)])


@pytest.mark.parametrize("win", [0, 101, 7])
def test_mfcc_matches_reference_definition(win):
    fs = 8000
    t = np.arange(8000) / fs
    x = (3000 * np.sin(2 * np.pi * 440 * t * (1 + t)) + 300 * RNG.standard_normal(8000))
    ours = mfcc.mfcc(x.astype(np.float32)[:, None], fs, {"win_size": win})
    ref = reference_mfcc(x, fs, 0.02, 0.02, 32, 256, 13, win, 0.98)
    assert ours.shape == ref.shape == (50, 13)
    np.testing.assert_allclose(ours, ref, atol=2e-3 if win else 2e-3 * np.abs(ref).max())


def test_mfcc_normalised_columns_have_zero_mean_unit_variance_with_full_window():
    x = (RNG.standard_normal(8000) * 1000).astype(np.float32)[:, None]
    # window 99 covers all 50 frames (with reflection): columns ~ standardised
    c = mfcc.mfcc(x, 8000, {"win_size": 99})
    assert np.abs(c.mean(axis=0)).max() < 0.1
    assert np.abs(c.std(axis=0) - 1).max() < 0.1


# -- MLPerf Tiny KWS MFCC -----------------------------------------------------------------------
@pytest.mark.slow  # imports TensorFlow (~10 s); test_real_data checks the same front end via kws01
def test_mlperf_kws_mfcc_matches_tensorflow_ops():
    tf = pytest.importorskip("tensorflow")
    x = (RNG.standard_normal(16000) * 2000).astype(np.float32)
    ours = mlperf_kws.mlperf_kws_mfcc(x[:, None], 16000)
    assert ours.shape == (49, 10)
    # the reference recipe, with TensorFlow's own ops
    w = tf.constant(x / x.max())
    stft = tf.signal.stft(w, frame_length=480, frame_step=320, fft_length=None,
                          window_fn=tf.signal.hann_window)  # fmt: skip
    spec = tf.abs(stft)
    mw = tf.signal.linear_to_mel_weight_matrix(40, stft.shape[-1], 16000, 20.0, 4000.0)
    log_mel = tf.math.log(tf.tensordot(spec, mw, 1) + 1e-6)
    ref = tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., :10].numpy()
    np.testing.assert_allclose(ours, ref, atol=2e-3)
