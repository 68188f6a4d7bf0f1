"""The on-disk learn-block contract (DESIGN.md §5), for built-in blocks too.

Input ``--data-directory`` holds ``X_split_train.npy``, ``Y_split_train.npy``,
``X_split_test.npy``, ``Y_split_test.npy`` (the "test" split is the validation set used
during training, as in Edge Impulse). ``X`` is ``[N, *feature_shape]``; ``Y`` holds class ids
``[N]``/``[N, 1]``, one-hot rows ``[N, classes]``, or regression targets. Output in
``--out-directory``:

- ``model.tflite``: full-int8 TFLite (int8 in/out, batch 1), when the block has a network form;
- ``model_float32.tflite``: the float32 TFLite of the same model;
- ``model.keras`` (Keras blocks) or ``model.pkl`` (scikit-learn blocks);
- ``metadata.json``: block, labels, feature shape, params, history, quantization report.

Files are written to a temporary directory first and moved in with ``metadata.json`` last,
so a reader never sees a half-written model. Run as
``python -m tinyforge.learn.contract --data-directory D --out-directory O --epochs 30
--learning-rate 0.005 [--block classifier] [--params JSON]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tinyforge.errors import InvalidArgument, TinyForgeError

INPUT_FILES = ("X_split_train.npy", "Y_split_train.npy", "X_split_test.npy", "Y_split_test.npy")


def _load(directory: Path, name: str) -> np.ndarray:
    path = directory / name
    if not path.is_file():
        raise InvalidArgument(f"{name} is missing from the data directory {directory}",
                              field="data_directory")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise InvalidArgument(f"{name} is not a readable .npy array: {e}",
                              field="data_directory") from None


def decode_y(y: np.ndarray, task: str) -> np.ndarray:
    """Class ids from one-hot rows (classification); other layouts are returned unchanged."""
    if task == "classification" and y.ndim == 2 and y.shape[1] > 1:
        if np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all():
            return y.argmax(axis=1)
        raise InvalidArgument(
            f"Y has shape {y.shape}: expected class ids [N] or one-hot rows [N, classes]",
            field="Y_split_train",
        )
    return y


def run_learn_block(
    data_directory: str | os.PathLike[str],
    out_directory: str | os.PathLike[str],
    *,
    epochs: int,
    learning_rate: float,
    block: str = "classifier",
    params: dict[str, Any] | None = None,
    batch_size: int = 32,
    seed: int = 0,
    early_stopping: bool = False,
    feature_shape: Sequence[int] | None = None,
    feature_kind: str | None = None,
) -> dict[str, Any]:
    """Train ``block`` on the contract's input files and write its outputs; return the
    metadata written to ``metadata.json``."""
    from tinyforge.learn.registry import get_block

    learn = get_block(block)
    data = Path(data_directory)
    if not data.is_dir():
        raise InvalidArgument(f"data directory {data} does not exist", field="data_directory")
    x_tr, y_tr, x_te, y_te = (_load(data, n) for n in INPUT_FILES)
    trained = learn.train(
        x_tr, decode_y(y_tr, learn.task) if learn.task != "anomaly" else None,
        x_te, decode_y(y_te, learn.task) if learn.task != "anomaly" else None,
        feature_shape=feature_shape, feature_kind=feature_kind, params=params, seed=seed,
        epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
        early_stopping=early_stopping,
    )  # fmt: skip
    meta = trained.metadata()
    out = Path(out_directory)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".learn-", dir=out))
    try:
        trained.save(tmp / "model")
        names = [p.name for p in (tmp / "model").iterdir() if p.name != "metadata.json"]
        for name in names:
            os.replace(tmp / "model" / name, tmp / name)
        if trained.export_keras() is not None:
            from tinyforge.quantize.compare import compare_float_int8
            from tinyforge.quantize.convert import quantize_trained

            conv = quantize_trained(trained, x_tr, seed=seed)
            (tmp / "model.tflite").write_bytes(conv.int8)
            (tmp / "model_float32.tflite").write_bytes(conv.float32)
            names += ["model.tflite", "model_float32.tflite"]
            if learn.task != "anomaly":
                meta["quantization"] = compare_float_int8(
                    trained, conv, x_te, decode_y(y_te, learn.task)).to_json()
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=1))
        for name in [*names, "metadata.json"]:  # metadata last: it marks the output complete
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point of the learn-block contract; exit 2 on invalid input."""
    ap = argparse.ArgumentParser(prog="python -m tinyforge.learn.contract",
                                 description="Train a built-in learning block (learn contract).")
    ap.add_argument("--data-directory", required=True)
    ap.add_argument("--out-directory", required=True)
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--learning-rate", type=float, required=True)
    ap.add_argument("--block", default="classifier")
    ap.add_argument("--params", default="{}", help="block parameters as a JSON object")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--early-stopping", action="store_true")
    ap.add_argument("--feature-kind", choices=("flat", "spectrogram", "image"))
    args = ap.parse_args(argv)
    try:
        try:
            params = json.loads(args.params)
        except json.JSONDecodeError as e:
            raise InvalidArgument(f"--params is not valid JSON: {e}", field="params") from None
        if not isinstance(params, dict):
            raise InvalidArgument("--params must be a JSON object", field="params")
        meta = run_learn_block(
            args.data_directory, args.out_directory, epochs=args.epochs,
            learning_rate=args.learning_rate, block=args.block, params=params,
            batch_size=args.batch_size, seed=args.seed, early_stopping=args.early_stopping,
            feature_kind=args.feature_kind,
        )  # fmt: skip
    except TinyForgeError as e:
        where = f" [{e.field}]" if e.field else ""
        print(f"error{where}: {e.message}", file=sys.stderr)
        return 2
    last = meta["history"][-1] if meta["history"] else {}
    print(json.dumps({"block": meta["block"], "labels": meta["labels"], "last_epoch": last,
                      "quantization": meta.get("quantization")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
