"""Keras model building and training helpers shared by the neural-network blocks.

Every network takes flat float32 features ``[N, F]`` and reshapes them inside, so the
deployed model reads the flat feature buffer the DSP produces. Architectures:

- ``dense``: ``Dense(n, relu)`` per entry of ``dense_layers`` (Edge Impulse's default for
  spectral features is 20 then 10 neurons), then the output layer;
- ``conv1d``: features as ``[frames, bins]`` (images as ``[H, W*C]``); per entry of
  ``conv_filters`` a ``Conv1D(f, kernel_size, relu, same)`` + ``MaxPool1D(2, same)`` +
  ``Dropout(dropout)`` (Edge Impulse's MFCC default: 8 then 16 filters, dropout 0.25);
  then Flatten, optional dense layers, output;
- ``conv2d``: the same with 2-D convolutions on ``[frames, bins, 1]`` or ``[H, W, C]``.

Imports TensorFlow/Keras at module level: import this module lazily (inside functions).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ info lines out of job logs

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from tinyforge.learn.base import EpochCallback  # noqa: E402
from tinyforge.learn.checks import TrainOptions  # noqa: E402


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TF, and make TF ops deterministic (same seed, same model)."""
    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()


def _conv_input_shape(arch: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    if arch == "conv1d":
        if len(shape) == 1:
            return (shape[0], 1)
        return (shape[0], int(np.prod(shape[1:])))
    if len(shape) == 2:
        return (shape[0], shape[1], 1)
    return shape


def build_network(
    arch: str,
    feature_shape: tuple[int, ...],
    n_out: int,
    out_activation: str | None,
    *,
    dense_layers: Sequence[int],
    conv_filters: Sequence[int] = (),
    kernel_size: int = 3,
    dropout: float = 0.0,
    name: str = "network",
) -> keras.Model:
    """A network with flat input ``[None, F]`` and ``n_out`` outputs (see module docstring)."""
    size = int(np.prod(feature_shape))
    inp = keras.Input((size,), name="features")
    x = inp
    if arch in ("conv1d", "conv2d"):
        cshape = _conv_input_shape(arch, feature_shape)
        x = keras.layers.Reshape(cshape)(x)
        conv = keras.layers.Conv1D if arch == "conv1d" else keras.layers.Conv2D
        pool = keras.layers.MaxPooling1D if arch == "conv1d" else keras.layers.MaxPooling2D
        for f in conv_filters:
            x = conv(f, kernel_size, padding="same", activation="relu")(x)
            x = pool(2, padding="same")(x)
            if dropout > 0:
                x = keras.layers.Dropout(dropout)(x)
        x = keras.layers.Flatten()(x)
    for n in dense_layers:
        x = keras.layers.Dense(n, activation="relu")(x)
    out = keras.layers.Dense(n_out, activation=out_activation, name="output")(x)
    return keras.Model(inp, out, name=name)


def batch1_model(model: keras.Model, feature_size: int) -> keras.Model:
    """``model`` behind an input of fixed batch size 1 (no SHAPE/PACK ops after conversion)."""
    inp = keras.Input((feature_size,), batch_size=1, name="features")
    return keras.Model(inp, model(inp, training=False), name=model.name + "_b1")


def _dense_layers(model: keras.Model) -> list[keras.layers.Dense]:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def fold_input_standardization(model: keras.Model, mean: np.ndarray, std: np.ndarray) -> None:
    """Make a dense network trained on ``(x - mean) / std`` accept raw ``x``.

    Rewrites the first Dense layer: ``W' = W / std[:, None]``, ``b' = b - (mean / std) @ W``.
    Only valid when that Dense layer reads the input directly (the ``dense`` architecture).
    """
    first = _dense_layers(model)[0]
    w, b = first.get_weights()
    w2 = w / std[:, None]
    b2 = b - (mean / std) @ w
    first.set_weights([w2.astype(np.float32), b2.astype(np.float32)])


def fold_output_scale(model: keras.Model, mean: np.ndarray, std: np.ndarray) -> None:
    """Make a linear output layer trained on ``(y - mean) / std`` predict raw ``y``."""
    last = _dense_layers(model)[-1]
    w, b = last.get_weights()
    last.set_weights([(w * std[None, :]).astype(np.float32),
                      (b * std + mean).astype(np.float32)])


def fit(
    train_model: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray | None,
    y_val: np.ndarray | None,
    options: TrainOptions,
    *,
    loss: str,
    metrics: list[Any],
    class_weight: dict[int, float] | None = None,
    on_epoch: EpochCallback | None = None,
) -> list[dict[str, float]]:
    """Compile with Adam(``learning_rate``) and fit; return one metrics dict per epoch."""
    train_model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=options.learning_rate),
        loss=loss,
        metrics=metrics,
        # XLA ("auto") costs seconds of compile and runs these small graphs slower on CPU
        jit_compile=False,
    )
    callbacks: list[keras.callbacks.Callback] = []
    if on_epoch is not None:
        def _report(epoch: int, logs: dict[str, Any] | None) -> None:
            on_epoch(epoch + 1, {k: float(v) for k, v in (logs or {}).items()})

        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=_report))
    has_val = x_val is not None and len(x_val) > 0
    if options.early_stopping and has_val:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=options.patience, restore_best_weights=True))
    h = train_model.fit(
        x_train, y_train,
        validation_data=(x_val, y_val) if has_val else None,
        epochs=options.epochs, batch_size=options.batch_size, shuffle=True,
        class_weight=class_weight, callbacks=callbacks, verbose=0,
    )  # fmt: skip
    return [
        {"epoch": i + 1, **{k: float(v[i]) for k, v in h.history.items()}}
        for i in range(len(h.epoch))
    ]
