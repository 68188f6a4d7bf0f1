"""Every block x parameter edge cases: declared shape/kind, float32, finite, batch == single."""

import numpy as np
import pytest

from tinyforge.dsp import registry

RNG = np.random.default_rng(11)

CASES = [
    ("raw", (100, 3), 50, {}),
    ("raw", (1, 1), 50, {"scale_axes": -2}),
    ("flatten", (2, 6), 10, {}),
    ("flatten", (100, 1), 10, {"average": False, "kurtosis": False}),
    ("spectral_analysis", (260, 3), 26, {}),
    ("spectral_analysis", (16, 1), 26, {"fft_length": 64}),  # window shorter than the FFT
    ("spectral_analysis", (260, 3), 26, {"filter_type": "high", "filter_cutoff": 12.9,
                                         "filter_order": 2}),
    ("spectral_analysis", (2600, 2), 26, {"extra_low_freq": True, "fft_length": 128,
                                          "input_decimation_ratio": 3, "filter_type": "low",
                                          "filter_cutoff": 1}),
    ("spectral_analysis", (32, 3), 26, {"analysis_type": "Wavelet", "wavelet_level": 0}),
    ("spectral_analysis", (1024, 1), 26, {"analysis_type": "Wavelet", "wavelet_level": 5,
                                          "wavelet": "db10"}),
    ("spectrogram", (8000, 1), 8000, {}),
    ("spectrogram", (4, 1), 8000, {"frame_length": 0.0005, "frame_stride": 0.0005,
                                   "fft_length": 16}),  # exactly one 4-sample frame
    ("mfe", (16000, 1), 16000, {"fft_length": 512, "num_filters": 64, "low_frequency": 300}),
    ("mfe", (160, 1), 8000, {"frame_stride": 0.02}),  # one frame
    ("mfcc", (8000, 1), 8000, {}),
    ("mfcc", (8000, 1), 8000, {"win_size": 0, "num_cepstral": 32, "pre_cof": 0}),
    ("mfcc", (16000, 1), 16000, {"frame_length": 0.025, "frame_stride": 0.01, "fft_length": 512,
                                 "num_filters": 40, "high_frequency": 7600, "win_size": 1}),
    ("mfcc_mlperf_kws", (16000, 1), 16000, {}),
    ("image", (1, 1, 3), 0, {}),
    ("image", (48, 64, 3), 0, {"channels": "Grayscale"}),
    ("image", (48, 64, 1), 0, {"channels": "Grayscale"}),
]  # fmt: skip


@pytest.mark.parametrize("name, shape, fs, params", CASES)
def test_block_shape_dtype_and_batch(name, shape, fs, params):
    block = registry.get_block(name)
    scale = 255 if block.image_input else 1000
    batch = (np.abs(RNG.standard_normal((3,) + shape)) * scale).astype(np.float32)
    if block.image_input:
        batch = np.clip(batch, 0, 255)
    spec = block.output_spec(params, fs, shape)
    assert spec.kind == block.output_kind
    out = block.features_batch(batch, fs, params)
    assert out.dtype == np.float32 and out.shape == (3,) + spec.shape
    assert np.all(np.isfinite(out))
    one = block.features(batch[1], fs, params)
    assert one.shape == spec.shape
    np.testing.assert_allclose(one, out[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["raw", "flatten", "spectral_analysis", "spectrogram", "mfe",
                                  "mfcc", "mfcc_mlperf_kws"])  # fmt: skip
def test_silence_gives_finite_features(name):
    fs = 16000 if "audio" in name or name.startswith("m") or name == "spectrogram" else 26
    out = registry.get_block(name).features(np.zeros((16000 if fs > 100 else 260, 1)), fs)
    assert np.all(np.isfinite(out))
