"""Keras → TFLite conversion: float32 and full-int8 post-training quantization.

The int8 model has int8 input and output tensors (scale and zero point in the model),
int8 weights (per-channel for convolutions and dense layers) and int32 biases, calibrated on
representative windows drawn from the training features. The models are built with a fixed
batch size of 1, so the graph holds no SHAPE/STRIDED_SLICE/PACK ops (MCU runtimes and
:mod:`tinyforge.compiler` want static shapes).
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyforge.errors import FailedPrecondition, InvalidArgument

#: windows used to calibrate int8 ranges; more adds conversion time, not accuracy
DEFAULT_REPRESENTATIVE_SAMPLES = 300


@dataclass(frozen=True)
class ConvertedModels:
    """Both TFLite forms of one model and how long each conversion took (seconds)."""

    float32: bytes
    int8: bytes
    float32_seconds: float
    int8_seconds: float

    def sizes(self) -> dict[str, int]:
        return {"float32_bytes": len(self.float32), "int8_bytes": len(self.int8)}


def representative_subset(x: np.ndarray, max_samples: int, seed: int) -> np.ndarray:
    """Up to ``max_samples`` rows of ``x`` chosen with ``seed`` (all rows when fewer)."""
    if len(x) <= max_samples:
        return x
    idx = np.random.default_rng(seed).choice(len(x), size=max_samples, replace=False)
    return x[np.sort(idx)]


def keras_to_tflite(model: Any, representative: np.ndarray | None = None) -> bytes:
    """Convert a Keras model with input ``[1, F]`` to TFLite bytes.

    With ``representative`` (float32 ``[N, F]``) the result is full int8 (int8 in/out);
    without, it is float32.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    shape = tuple(model.inputs[0].shape)
    if shape[0] != 1:
        raise InvalidArgument(f"model input must have batch size 1, got shape {shape}",
                              field="model")
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if representative is not None:
        rep = np.asarray(representative, dtype=np.float32).reshape((-1,) + shape[1:])
        if len(rep) == 0:
            raise InvalidArgument("representative data is empty", field="representative")

        def gen():  # one window at a time: the calibration graph has batch 1 too
            for i in range(len(rep)):
                yield [rep[i:i + 1]]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = gen
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    # the converter prints the traced signature to stdout: keep it out of job logs
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        # benign: we quantize the model's own float input, not pre-quantized statistics
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return bytes(conv.convert())


def quantize_trained(
    trained: Any,
    x_representative: Any,
    *,
    max_samples: int = DEFAULT_REPRESENTATIVE_SAMPLES,
    seed: int = 0,
) -> ConvertedModels:
    """Float32 and full-int8 TFLite of a :class:`~tinyforge.learn.base.TrainedModel`.

    ``x_representative``: training features ``[N, *feature_shape]`` (a seeded subset of at
    most ``max_samples`` calibrates the int8 ranges). FailedPrecondition for blocks without
    a neural-network form (random forest, K-means, GMM).
    """
    model = trained.export_keras()
    if model is None:
        raise FailedPrecondition(
            f"block {trained.block!r} ({trained.params.get('algorithm', trained.task)}) has no "
            "neural-network form to convert to TFLite",
            field="block",
        )
    x = trained.check_input(x_representative, "representative")
    rep = representative_subset(x, max_samples, seed)
    t0 = time.perf_counter()
    f32 = keras_to_tflite(model)
    t1 = time.perf_counter()
    i8 = keras_to_tflite(model, rep)
    t2 = time.perf_counter()
    return ConvertedModels(f32, i8, t1 - t0, t2 - t1)
