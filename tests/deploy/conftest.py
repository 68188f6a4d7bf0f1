"""Fixtures for the deployment tests: bundles built from models trained here, on real FSDD
audio (MFCC + small conv) and STM32 HAR accelerometer CSVs (spectral analysis + dense), and a
synthetic motion set that needs no dataset (always runs).

The platform's int8 predictions are computed here the platform's way — the Python DSP blocks
(``tinyforge.dsp``) and LiteRT's int8 kernels — independently of the C code under test."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from tinyforge.deploy.bundle import DeployBundle
from tinyforge.dsp.registry import get_block
from tinyforge.impulse import Impulse, LearningBlockDef, ProcessingBlockDef, TimeSeriesInput

DATASETS = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets"


def dataset_dir(name: str) -> Path:
    """The shared dataset folder ``name``, or skip with a clear message."""
    path = (DATASETS / name).resolve()
    if not path.is_dir():
        pytest.skip(f"shared dataset {name!r} not found at {path} (real-data deployment tests "
                    "need ../shared/datasets; the synthetic tests still run)")
    return path


def python_features(impulse: Impulse, windows: np.ndarray) -> np.ndarray:
    """Platform features: each processing block (one axis set) in learning-input order."""
    inp = impulse.input
    parts = []
    for name in impulse.learning[0].inputs:
        b = impulse.processing_block(name)
        idx = [inp.axes.index(a) for a in impulse.block_axes(b)]
        f = get_block(b.block).features_batch(windows[..., idx], inp.frequency_hz, b.params)
        parts.append(f.reshape(len(windows), -1))
    return np.concatenate(parts, axis=1)


def train_int8(x: np.ndarray, y: np.ndarray, n_classes: int, conv_shape: tuple | None = None,
               epochs: int = 30) -> tuple[bytes, bytes]:
    """(int8 .tflite, float32 .tflite) of a small Keras net trained on features ``x``."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    mean, std = x.mean(0), x.std(0) + 1e-3

    def net(batch):
        inp = tf.keras.Input(shape=(x.shape[1],), batch_size=batch)
        h = tf.keras.layers.Rescaling(1.0 / std, offset=-mean / std)(inp)
        if conv_shape:
            h = tf.keras.layers.Reshape((*conv_shape, 1))(h)
            h = tf.keras.layers.Conv2D(8, 3, strides=2, activation="relu")(h)
            h = tf.keras.layers.MaxPooling2D(2)(h)
            h = tf.keras.layers.Flatten()(h)
        else:
            h = tf.keras.layers.Dense(16, activation="relu")(h)
        return tf.keras.Model(inp, tf.keras.layers.Dense(n_classes, activation="softmax")(h))

    train = net(None)
    train.compile(optimizer=tf.keras.optimizers.Adam(0.01),
                  loss="sparse_categorical_crossentropy")
    train.fit(x, y, epochs=epochs, batch_size=16, verbose=0)
    deploy = net(1)  # fixed batch 1: no SHAPE/STRIDED_SLICE ops in the MCU graph
    deploy.set_weights(train.get_weights())

    def rep():
        for row in x[:100]:
            yield [row[None].astype(np.float32)]

    f32 = tf.lite.TFLiteConverter.from_keras_model(deploy).convert()
    conv = tf.lite.TFLiteConverter.from_keras_model(deploy)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert(), f32


def make_bundle(impulse: Impulse, labels: list[str], train: tuple[np.ndarray, np.ndarray],
                test: tuple[np.ndarray, np.ndarray], name: str,
                conv_shape: tuple | None = None) -> DeployBundle:
    """Train on ``train`` windows, compute the platform's int8 predictions on ``test``."""
    from tinyforge.quantize.runner import TFLiteModel

    xtr, ytr = train
    xte, yte = test
    int8, f32 = train_int8(python_features(impulse, xtr), ytr, len(labels), conv_shape)
    scores = TFLiteModel(int8).predict(python_features(impulse, xte))
    preds = tuple(int(i) for i in np.argmax(scores, axis=1))
    return DeployBundle(impulse=impulse, labels=tuple(labels), model_int8=int8,
                        model_float32=f32, test_windows=xte.astype(np.float32),
                        test_labels=tuple(labels[i] for i in yte),
                        platform_int8_predictions=preds, name=name)


# -- synthetic motion (always available) --------------------------------------------------------
SYN_FS = 50.0


def synthetic_windows(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """3-axis 2 s windows at 50 Hz: still (noise), slow (2 Hz) and fast (9 Hz) oscillations."""
    rng = np.random.default_rng(seed)
    t = np.arange(100) / SYN_FS
    xs, ys = [], []
    for cls, f in enumerate((0.0, 2.0, 9.0)):
        for _ in range(n_per_class):
            amp = rng.uniform(200, 800, 3) * (f > 0)
            ph = rng.uniform(0, 2 * np.pi, 3)
            sig = amp * np.sin(2 * np.pi * f * t[:, None] + ph) + rng.normal(0, 60, (100, 3))
            xs.append(sig + np.array([0.0, 0.0, 981.0]))
            ys.append(cls)
    return np.asarray(xs, np.float32), np.asarray(ys)


def synthetic_impulse() -> Impulse:
    return Impulse(
        input=TimeSeriesInput(window_size_ms=2000, window_stride_ms=500, frequency_hz=SYN_FS,
                              axes=["x", "y", "z"]),
        processing=[ProcessingBlockDef(name="spectral", block="spectral_analysis",
                                       params={"scale_axes": 0.001, "fft_length": 32})],
        learning=[LearningBlockDef(name="nn", type="keras", inputs=["spectral"])])


@pytest.fixture(scope="session")
def synthetic_bundle() -> DeployBundle:
    return make_bundle(synthetic_impulse(), ["still", "slow", "fast"],
                       synthetic_windows(20, 0), synthetic_windows(8, 1), "motion")


# -- FSDD (real audio) ---------------------------------------------------------------------------
FSDD_DIGITS = (0, 1, 2)
FSDD_MFCC = {"num_cepstral": 13, "frame_length": 0.02, "frame_stride": 0.02,
             "num_filters": 32, "fft_length": 256, "win_size": 101}


def read_wav(path: Path) -> np.ndarray:
    """Mono PCM16 WAV → float32 samples in int16 units."""
    with wave.open(str(path)) as w:
        raw = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return raw.reshape(-1, w.getnchannels())[:, 0].astype(np.float32)


def fsdd_windows(indices: range, window: int = 8000) -> tuple[np.ndarray, np.ndarray]:
    rec = dataset_dir("fsdd") / "recordings"
    xs, ys = [], []
    for path in sorted(rec.glob("*.wav")):
        d, _, i = path.stem.split("_")
        if int(d) in FSDD_DIGITS and int(i) in indices:
            a = read_wav(path)[:window]
            w = np.zeros((window, 1), np.float32)
            w[: len(a), 0] = a
            xs.append(w)
            ys.append(FSDD_DIGITS.index(int(d)))
    if not xs:
        pytest.skip(f"no FSDD recordings in {rec}")
    return np.stack(xs), np.asarray(ys)


def fsdd_impulse() -> Impulse:
    return Impulse(
        input=TimeSeriesInput(window_size_ms=1000, window_stride_ms=250, frequency_hz=8000,
                              axes=["audio"]),
        processing=[ProcessingBlockDef(name="mfcc", block="mfcc", params=dict(FSDD_MFCC))],
        learning=[LearningBlockDef(name="nn", type="keras", inputs=["mfcc"])])


@pytest.fixture(scope="session")
def fsdd_bundle() -> DeployBundle:
    """MFCC (50 frames x 13) + small conv on three FSDD digits; test = indices 0-7."""
    return make_bundle(fsdd_impulse(), ["zero", "one", "two"], fsdd_windows(range(10, 25)),
                       fsdd_windows(range(0, 8)), "fsdd_kws", conv_shape=(50, 13))


# -- HAR (real accelerometer) --------------------------------------------------------------------
HAR_FS = 26.0
HAR_CLASSES = ("running", "stationary", "walking")


def har_windows(files_slice: slice, per_file: int = 2,
                window: int = 52) -> tuple[np.ndarray, np.ndarray]:
    root = dataset_dir("har_stm32_accel")
    xs, ys = [], []
    for cls, name in enumerate(HAR_CLASSES):
        for path in sorted((root / name).glob("*.csv"))[files_slice]:
            data = np.loadtxt(path, delimiter=",", dtype=np.float32)
            for k in range(per_file):
                xs.append(data[100 + k * window: 100 + (k + 1) * window])
                ys.append(cls)
    if not xs:
        pytest.skip(f"no HAR CSVs in {root}")
    return np.stack(xs), np.asarray(ys)


def har_impulse() -> Impulse:
    return Impulse(
        input=TimeSeriesInput(window_size_ms=2000, window_stride_ms=1000, frequency_hz=HAR_FS,
                              axes=["x", "y", "z"]),
        processing=[ProcessingBlockDef(name="spectral", block="spectral_analysis",
                                       params={"scale_axes": 0.001})],
        learning=[LearningBlockDef(name="nn", type="keras", inputs=["spectral"])])


@pytest.fixture(scope="session")
def har_bundle() -> DeployBundle:
    """spectral_analysis (scale_axes 0.001) + dense on the three HAR classes."""
    return make_bundle(har_impulse(), list(HAR_CLASSES), har_windows(slice(4, 16)),
                       har_windows(slice(0, 4), per_file=3), "har_motion")
