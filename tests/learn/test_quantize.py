"""Float32 and full-int8 TFLite conversion, running both, and the float-vs-int8 report."""

from __future__ import annotations

import numpy as np
import pytest

from tinyforge.errors import FailedPrecondition, InvalidArgument
from tinyforge.learn.registry import get_block
from tinyforge.quantize.compare import compare_float_int8
from tinyforge.quantize.convert import quantize_trained
from tinyforge.quantize.runner import TFLiteModel


@pytest.fixture(scope="module")
def spectro_model():
    """A conv1d classifier on 3-class synthetic 'spectrograms' [16, 6], and its TFLite forms."""
    rng = np.random.default_rng(0)
    n = 300
    y = np.arange(n) % 3
    x = rng.normal(size=(n, 16, 6)).astype(np.float32)
    x[np.arange(n), :, y * 2] += 2.0  # the class lights up one frequency band
    labels = np.array(["lo", "mid", "hi"])[y]
    m = get_block("classifier").train(x, labels, epochs=8, seed=0)
    return m, quantize_trained(m, x), x, labels


def test_int8_model_has_int8_io_batch1_and_static_shape_ops(spectro_model):
    m, conv, x, _ = spectro_model
    q = TFLiteModel(conv.int8)
    assert q.is_quantized
    assert q.input_shape == (1, 16 * 6)
    assert q.output_dtype == np.int8
    ops = q.op_names()
    assert {"CONV_2D", "FULLY_CONNECTED", "SOFTMAX"} <= ops
    assert not ops & {"SHAPE", "STRIDED_SLICE", "PACK", "DEQUANTIZE", "QUANTIZE"}
    f = TFLiteModel(conv.float32)
    assert not f.is_quantized and f.input_shape == (1, 96)
    assert len(conv.int8) < len(conv.float32)


def test_float_tflite_matches_keras_and_int8_error_is_bounded(spectro_model):
    m, conv, x, labels = spectro_model
    keras_p = m.predict(x[:60])
    np.testing.assert_allclose(TFLiteModel(conv.float32).predict(x[:60]), keras_p, atol=1e-5)
    int8_p = TFLiteModel(conv.int8).predict(x[:60])
    # softmax output quantized to 1/256 steps; activations add a few steps of error
    assert np.abs(int8_p - keras_p).max() < 0.08
    assert (int8_p.argmax(1) == keras_p.argmax(1)).mean() >= 0.95


def test_input_quantization_uses_model_scale_and_zero_point(spectro_model):
    _, conv, _, _ = spectro_model
    q = TFLiteModel(conv.int8)
    scale, zp = q._in["quantization"]
    v = np.array([0.0, scale * 10, -1e6, 1e6], np.float32)
    assert q.quantize_input(v).tolist() == [zp, zp + 10, -128, 127]


def test_report_on_test_set(spectro_model):
    m, conv, x, labels = spectro_model
    r = compare_float_int8(m, conv, x, labels)
    assert r.float_accuracy > 0.9
    assert abs(r.accuracy_difference) <= 2.0
    assert r.accuracy_difference == pytest.approx((r.int8_accuracy - r.float_accuracy) * 100)
    assert r.int8_bytes == len(conv.int8) and r.float32_bytes == len(conv.float32)
    assert r.int8_seconds > 0


def test_wrong_feature_shape_and_bad_model_bytes(spectro_model):
    m, conv, x, labels = spectro_model
    with pytest.raises(InvalidArgument, match="features have 95 values per sample, the model "
                                              "expects 96"):
        TFLiteModel(conv.int8).predict(x.reshape(len(x), -1)[:, :95])
    with pytest.raises(InvalidArgument, match=r"expected \(16, 6\)"):
        m.predict(x[:, :15])
    with pytest.raises(InvalidArgument, match="not a TFLite flatbuffer"):
        TFLiteModel(b"PK\x03\x04 definitely not a model")
    with pytest.raises(InvalidArgument, match="'cat'"):
        compare_float_int8(m, conv, x[:3], ["lo", "cat", "hi"])


def test_regression_and_logistic_regression_quantize():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5, 0.0], np.float32) * 10 + 50
    m = get_block("regression").train(x, y, epochs=30, learning_rate=0.01)
    conv = quantize_trained(m, x)
    r = compare_float_int8(m, conv, x, y)
    assert r.float_mae < 3.0
    # int8 output step is (range of y) / 255 ~ 0.5: error stays within a few steps
    assert r.int8_mae < r.float_mae + 2.0
    labels = np.where(x[:, 0] + x[:, 1] > 0, "pos", "neg")
    lr = get_block("classical").train(x, labels, params={"algorithm": "logistic_regression"})
    r2 = compare_float_int8(lr, quantize_trained(lr, x), x, labels)
    assert r2.float_accuracy > 0.95 and r2.agreement >= 0.97


def test_blocks_without_network_form_cannot_be_converted():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3)).astype(np.float32)
    rf = get_block("classical").train(x, np.arange(50) % 2)
    with pytest.raises(FailedPrecondition, match="random_forest"):
        quantize_trained(rf, x)
    km = get_block("anomaly_kmeans").train(x, params={"clusters": 2})
    with pytest.raises(FailedPrecondition, match="no neural-network form"):
        quantize_trained(km, x)


def test_features_of_very_different_scale_are_reported_as_coarse():
    from tinyforge.quantize.compare import coarse_features

    rng = np.random.default_rng(0)
    x = np.stack([rng.normal(1000, 300, 500), rng.normal(0, 1, 500)], axis=1)
    scale = (x.max() - x.min()) / 255  # one int8 scale across both features
    assert coarse_features(x, scale).tolist() == [1]
    xs = x / [300, 1]
    assert coarse_features(xs, np.ptp(xs) / 255).tolist() == []
