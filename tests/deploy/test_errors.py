"""Bad input for deployment builds: unknown format/target, bad bundle, model too big for the
target, toolchain missing, on-target prediction differing from the platform's, time limit —
each fails with its domain error and leaves nothing in the output directory."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from tinyforge.deploy.bundle import DeployBundle
from tinyforge.deploy.registry import FORMATS, TARGETS, build_artifact
from tinyforge.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
)
from tinyforge.impulse import Impulse, LearningBlockDef, ProcessingBlockDef, TimeSeriesInput


def _build(fmt, target, bundle, out_dir, timeout_s=300.0):
    return build_artifact(fmt, target, bundle, out_dir, options={}, log=lambda _m: None,
                          timeout_s=timeout_s)


def _nothing_left(out_dir) -> None:
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_unknown_format_and_target(synthetic_bundle, tmp_path):
    with pytest.raises(InvalidArgument, match="valid formats: c-library, arduino") as e:
        _build("zip-of-wishes", "cortex-m4f-80mhz", synthetic_bundle, tmp_path)
    assert e.value.field == "format"
    for name in FORMATS:
        assert name in e.value.message
    with pytest.raises(InvalidArgument, match="valid targets: ") as e:
        _build("c-library", "pdp-11", synthetic_bundle, tmp_path)
    assert e.value.field == "target" and all(t in e.value.message for t in TARGETS)
    with pytest.raises(InvalidArgument, match="valid targets for it: cortex-m4f-80mhz"):
        _build("cortex-m-firmware", "esp32-c3", synthetic_bundle, tmp_path)
    with pytest.raises(InvalidArgument, match="timeout_s"):
        _build("c-library", "linux-x86_64", synthetic_bundle, tmp_path, timeout_s=0)
    _nothing_left(tmp_path)


def test_bad_bundle_fields(synthetic_bundle, tmp_path):
    b = synthetic_bundle
    cases = [
        (dict(name="my model"), "name"),
        (dict(labels=("still", "still", "fast")), "labels"),
        (dict(model_int8=b"not a model"), "model_int8"),
        (dict(test_windows=b.test_windows[:, :50]), "test_windows"),
        (dict(platform_int8_predictions=(0,) * 3), "platform_int8_predictions"),
        (dict(test_labels=("walking",) * len(b.test_windows)), "test_labels"),
    ]
    for change, field in cases:
        with pytest.raises(InvalidArgument) as e:
            _build("c-library", "linux-x86_64", dataclasses.replace(b, **change), tmp_path)
        assert e.value.field == field, (change, e.value)
    _nothing_left(tmp_path)


@pytest.fixture(scope="module")
def huge_bundle() -> DeployBundle:
    """A raw-signal impulse whose window (80000 samples) and dense layer (1.28 M weights) fit
    neither the RAM nor the flash of a 256 KB / 1 MB Cortex-M4F."""
    import tensorflow as tf

    n = 80000
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input(shape=(n,), batch_size=1)
    h = tf.keras.layers.Dense(16, activation="relu")(inp)
    model = tf.keras.Model(inp, tf.keras.layers.Dense(2, activation="softmax")(h))
    rng = np.random.default_rng(0)

    def rep():
        for _ in range(4):
            yield [rng.normal(0, 1, (1, n)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    impulse = Impulse(
        input=TimeSeriesInput(window_size_ms=2000, window_stride_ms=2000, frequency_hz=40000,
                              axes=["audio"]),
        processing=[ProcessingBlockDef(name="raw", block="raw")],
        learning=[LearningBlockDef(name="nn", type="keras", inputs=["raw"])])
    return DeployBundle(impulse=impulse, labels=("a", "b"), model_int8=conv.convert(),
                        model_float32=None, test_windows=None, test_labels=None,
                        platform_int8_predictions=None, name="huge")


def test_model_too_big_for_target(huge_bundle, tmp_path):
    with pytest.raises(ResourceExhausted) as e:
        _build("c-library", "cortex-m4f-80mhz", huge_bundle, tmp_path)
    msg = e.value.message
    assert "cortex-m4f-80mhz" in msg
    assert "262144 B available" in msg and "1048576 B available" in msg
    ram = int(msg.split("RAM ")[1].split(" B needed")[0])
    assert ram > 2 * 80000 * 4  # window + features buffers at least
    flash = int(msg.split("flash ")[1].split(" B needed")[0])
    assert flash >= 80000 * 16  # the weights
    _nothing_left(tmp_path)


def test_toolchain_missing_names_the_debian_package(synthetic_bundle, tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(FailedPrecondition, match="gcc-arm-none-eabi") as e:
        _build("cortex-m-firmware", "cortex-m4f-80mhz", synthetic_bundle, tmp_path / "out")
    assert "make install" in e.value.message
    with pytest.raises(FailedPrecondition, match="gcc-riscv64-unknown-elf"):
        _build("esp-idf", "esp32-c3", synthetic_bundle, tmp_path / "out")
    _nothing_left(tmp_path / "out")


@pytest.mark.toolchain
def test_prediction_mismatch_fails_naming_the_sample(synthetic_bundle, tmp_path):
    b = synthetic_bundle
    preds = list(b.platform_int8_predictions)
    preds[5] = (preds[5] + 1) % len(b.labels)  # the platform "said" something else there
    bad = dataclasses.replace(b, platform_int8_predictions=tuple(preds))
    with pytest.raises(FailedPrecondition, match="test sample 5 ") as e:
        _build("linux", "linux-x86_64", bad, tmp_path / "out")
    assert "1 of 24 windows differ" in e.value.message
    _nothing_left(tmp_path / "out")


@pytest.mark.toolchain
def test_time_limit(synthetic_bundle, tmp_path):
    with pytest.raises(DeadlineExceeded, match="time limit of 0.3 s"):
        _build("cortex-m-firmware", "cortex-m4f-80mhz", synthetic_bundle, tmp_path / "out",
               timeout_s=0.3)
    _nothing_left(tmp_path / "out")
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]
