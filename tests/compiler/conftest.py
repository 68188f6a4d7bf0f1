"""Fixtures for the compiler tests: paths to the shared MLPerf Tiny models and a cached
Keras -> full-int8 TFLite converter (conversions are the slow part, so each is done once)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets"
MLPERF = SHARED / "mlperf_tiny_models"
MODELS = {
    "kws": "keyword_spotting/kws_ref_model.tflite",
    "vww": "visual_wake_words/vww_96_int8.tflite",
    "ic": "image_classification/pretrainedResnet_quant.tflite",
    "ad": "anomaly_detection/ad01_int8.tflite",
    "sww": "streaming_wakeword/str_ww_ref_model.tflite",
}


def mlperf_model(key: str) -> Path:
    path = MLPERF / MODELS[key]
    if not path.is_file():
        pytest.skip(f"MLPerf Tiny model {path} is not staged (../shared/datasets)")
    return path


def to_int8(model, input_shape, lo: float = -4.0, hi: float = 4.0, float_io: bool = False,
            seed: int = 0) -> bytes:
    """Full-integer quantize a Keras model, calibrating on uniform inputs in [lo, hi]."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)

    def rep():
        for _ in range(32):
            yield [rng.uniform(lo, hi, (1, *input_shape)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if not float_io:
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()
