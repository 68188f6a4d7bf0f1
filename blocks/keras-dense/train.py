"""Learning block: a small dense Keras classifier exported to TensorFlow Lite.

Contract (TinyForge learn): --data-directory DIR (X_split_train.npy, Y_split_train.npy and,
optionally, X_split_test.npy, Y_split_test.npy), --out-directory DIR, --epochs N,
--learning-rate LR, plus the parameters of parameters.json. X is N x features (any trailing
shape is flattened); Y is N integer labels or N x classes one-hot. Writes model.tflite
(float32, or full int8 with --quantize true; the input standardisation is folded into the
first layer, so the model is FULLY_CONNECTED ops only) and metrics.json (accuracies of the
Keras model and of the exported .tflite on the test split, or on the training split when
there is none).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load(d: Path, split: str) -> tuple[np.ndarray, np.ndarray] | None:
    xp, yp = d / f"X_split_{split}.npy", d / f"Y_split_{split}.npy"
    if not xp.exists() or not yp.exists():
        return None
    x = np.load(xp, allow_pickle=False).astype(np.float32)
    y = np.load(yp, allow_pickle=False)
    x = x.reshape(x.shape[0], -1)
    y = y.argmax(axis=1) if y.ndim == 2 else y.reshape(-1)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{split}: X has {x.shape[0]} rows but Y has {y.shape[0]}")
    return x, y.astype(np.int64)


def tflite_accuracy(model_bytes: bytes, x: np.ndarray, y: np.ndarray) -> float:
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_content=model_bytes)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    correct = 0
    for xi, yi in zip(x, y, strict=True):
        v = xi[None, :]
        if inp["dtype"] == np.int8:
            scale, zero = inp["quantization"]
            v = np.clip(np.round(v / scale + zero), -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], v)
        interp.invoke()
        correct += int(np.argmax(interp.get_tensor(out["index"])[0]) == yi)
    return correct / len(y)


def fold_normalization(tf, model, features: int, min_std: float = 0.0):  # noqa: ANN001, ANN201
    """The trained model with its Normalization layer folded into the first Dense layer.

    (x - mean) / std @ W + b == x @ (W / std[:, None]) + (b - (mean / std) @ W), so the exported
    model takes raw features with plain FULLY_CONNECTED ops only (no SUB/MUL for the
    normalisation, which small-device compilers need not support). Features whose spread is at
    most ``min_std`` (constant ones, or, for an int8 export, ones finer than one step of the
    int8 input) get no weight: their 1/std weights would dominate the first layer's per-channel
    int8 scales and zero every other weight.
    """
    norm, first, *rest = model.layers
    mean = np.asarray(norm.mean).reshape(-1)
    std = np.sqrt(np.asarray(norm.variance).reshape(-1))
    floor = max(min_std, 1e-6 * float(np.max(np.abs(mean), initial=1.0)))
    inv = np.where(std > floor, 1.0 / np.maximum(std, 1e-30), 0.0)
    w, b = first.get_weights()
    folded = tf.keras.layers.Dense(w.shape[1], activation="relu")
    export = tf.keras.Sequential([tf.keras.Input(shape=(features,), batch_size=None), folded,
                                  *rest])
    folded.set_weights([(w * inv[:, None]).astype(np.float32),
                        (b - (mean * inv) @ w).astype(np.float32)])
    return export


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-directory", type=Path, required=True)
    ap.add_argument("--out-directory", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--learning-rate", type=float, default=0.001)
    ap.add_argument("--hidden-units", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--quantize", choices=["true", "false"], default="false")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    try:
        train = load(a.data_directory, "train")
        if train is None:
            raise ValueError("X_split_train.npy / Y_split_train.npy missing")
        test = load(a.data_directory, "test") or train
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    x, y = train
    classes = int(max(y.max(), test[1].max())) + 1
    import tensorflow as tf

    tf.keras.utils.set_random_seed(a.seed)
    # Standardise with training statistics inside the model, so the .tflite takes raw features.
    norm = tf.keras.layers.Normalization()
    norm.adapt(x)
    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(x.shape[1],), batch_size=None),
            norm,
            tf.keras.layers.Dense(a.hidden_units, activation="relu"),
            tf.keras.layers.Dense(max(a.hidden_units // 2, 1), activation="relu"),
            tf.keras.layers.Dense(classes, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=tf.keras.optimizers.Adam(a.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    hist = model.fit(x, y, epochs=a.epochs, batch_size=a.batch_size, verbose=2)
    keras_acc = float(model.evaluate(test[0], test[1], verbose=0)[1])
    # an int8 input resolves 1/255 of the features' joint range: finer features are noise there
    step = float(x.max() - x.min()) / 255.0 if a.quantize == "true" else 0.0
    export = fold_normalization(tf, model, x.shape[1], min_std=step)
    conv = tf.lite.TFLiteConverter.from_keras_model(export)
    if a.quantize == "true":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([x[i : i + 1]] for i in range(min(len(x), 200)))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    tfl = conv.convert()
    a.out_directory.mkdir(parents=True, exist_ok=True)
    (a.out_directory / "model.tflite").write_bytes(tfl)
    metrics = {
        "classes": classes,
        "train_loss": float(hist.history["loss"][-1]),
        "keras_accuracy": keras_acc,
        "tflite_accuracy": tflite_accuracy(tfl, *test),
        "evaluated_on": "test" if test is not train else "train",
        "quantized": a.quantize == "true",
    }
    (a.out_directory / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
