"""Training benchmark: FSDD MFCC + 1-D conv classifier trained through the learning-block API
next to a plain Keras script that trains the same network on the same feature arrays (same
train/validation split, epochs, batch size, optimizer), in the same process. Also the int8 /
float32 TFLite conversion times and model sizes. Goal: block API <= 1.1x plain Keras.

Baselines: "plain Keras (same settings)" compiles with jit_compile=False like the block does;
"plain Keras (defaults)" leaves Keras' default (jit_compile="auto"). Each timing is the best of
``--repeats`` runs after a warm-up fit (TensorFlow's one-time start-up is not counted).

Run: .venv/bin/python bench/train/run.py [--epochs 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
FSDD = ROOT / ".." / "shared" / "datasets" / "fsdd" / "recordings"
RATE = 8000
GOAL = 1.1
PARAMS = {"conv_filters": "16,32"}  # MFCC [50, 13] -> Conv1D 16 -> 32, dropout 0.25


def load_features() -> tuple[np.ndarray, np.ndarray]:
    """MFCC features [N, 50, 13] of the FSDD training recordings (index 5-49), 1 s windows."""
    from tinyforge.data.wav import parse_wav
    from tinyforge.dsp.registry import get_block

    xs, ys = [], []
    for path in sorted(FSDD.glob("*.wav")):
        digit, _speaker, index = path.stem.split("_")
        if int(index) < 5:
            continue  # the standard test split
        v = parse_wav(path.read_bytes()).values[:RATE]
        w = np.zeros((RATE, 1), np.float32)
        w[: len(v)] = v
        xs.append(w)
        ys.append(int(digit))
    return get_block("mfcc").features_batch(np.stack(xs), RATE, {}), np.array(ys)


def plain_keras(xtr, ytr, xva, yva, epochs: int, lr: float, jit: object) -> float:
    """The same network written directly in Keras; returns the fit wall time (s)."""
    import keras

    t0 = time.perf_counter()
    keras.utils.set_random_seed(0)
    frames, bins = xtr.shape[1:]
    inp = keras.Input((frames * bins,))
    h = keras.layers.Reshape((frames, bins))(inp)
    for f in (16, 32):
        h = keras.layers.Conv1D(f, 3, padding="same", activation="relu")(h)
        h = keras.layers.MaxPooling1D(2, padding="same")(h)
        h = keras.layers.Dropout(0.25)(h)
    out = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(h))
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=jit)
    model.fit(xtr.reshape(len(xtr), -1), ytr, validation_data=(xva.reshape(len(xva), -1), yva),
              epochs=epochs, batch_size=32, shuffle=True, verbose=0)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if not FSDD.is_dir():
        print(f"skipped: FSDD not found at {FSDD.resolve()}")
        return 0
    from tinyforge.learn.registry import get_block
    from tinyforge.learn.split import stratified_split
    from tinyforge.quantize.convert import quantize_trained

    t0 = time.perf_counter()
    x, y = load_features()
    feat_s = time.perf_counter() - t0
    tr, va = stratified_split(y, 0.2, seed=0)
    xtr, ytr, xva, yva = x[tr], y[tr], x[va], y[va]
    lr = 0.005
    block = get_block("classifier")
    block.train(xtr[::30], ytr[::30], epochs=1, params=PARAMS)  # warm-up: TF start-up, tracing

    def run_block() -> tuple[float, object]:
        t = time.perf_counter()
        m = block.train(xtr, ytr, xva, yva, epochs=args.epochs, learning_rate=lr,
                        batch_size=32, seed=0, params=PARAMS,
                        on_epoch=lambda e, logs: None)
        return time.perf_counter() - t, m

    times = {"block": [], "same": [], "default": []}
    model = None
    for _ in range(args.repeats):  # interleaved so machine load hits all alike
        t, model = run_block()
        times["block"].append(t)
        times["same"].append(plain_keras(xtr, ytr, xva, yva, args.epochs, lr, False))
        times["default"].append(plain_keras(xtr, ytr, xva, yva, args.epochs, lr, "auto"))
    best = {k: min(v) for k, v in times.items()}
    conv = quantize_trained(model, xtr)
    ratio = best["block"] / best["same"]
    rows = [
        ("features (MFCC, 2700 recordings)", f"{feat_s:.2f} s", ""),
        (f"block API classifier, {args.epochs} epochs", f"{best['block']:.2f} s",
         f"{ratio:.3f}x plain Keras (same settings)"),
        ("plain Keras (same settings)", f"{best['same']:.2f} s", "baseline"),
        ("plain Keras (defaults, jit auto)", f"{best['default']:.2f} s",
         f"block = {best['block'] / best['default']:.3f}x"),
        ("float32 TFLite conversion", f"{conv.float32_seconds:.2f} s",
         f"{len(conv.float32)} bytes"),
        ("int8 TFLite conversion", f"{conv.int8_seconds:.2f} s", f"{len(conv.int8)} bytes"),
        ("Keras parameters", f"{model.extra['parameters']}", ""),
    ]
    print(f"{'what':<42} {'value':>10}  note")
    for what, val, note in rows:
        print(f"{what:<42} {val:>10}  {note}")
    print(f"all runs (s): {({k: [round(t, 2) for t in v] for k, v in times.items()})}")
    status = "OK" if ratio <= GOAL else "MISSED"
    print(f"goal block/plain <= {GOAL}: {ratio:.3f} {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
