"""The on-disk learn-block contract (--data-directory ... → model.tflite + model.keras)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tinyforge.errors import InvalidArgument
from tinyforge.learn.contract import main, run_learn_block
from tinyforge.quantize.runner import TFLiteModel


def _write(d, n=160, f=10, one_hot=False, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, f)).astype(np.float32) + y[:, None] * 1.5
    d.mkdir(parents=True, exist_ok=True)
    yy = np.eye(2, dtype=np.float32)[y] if one_hot else y
    cut = int(n * 0.75)
    np.save(d / "X_split_train.npy", x[:cut])
    np.save(d / "Y_split_train.npy", yy[:cut])
    np.save(d / "X_split_test.npy", x[cut:])
    np.save(d / "Y_split_test.npy", yy[cut:])
    return x, y


def test_cli_writes_int8_tflite_keras_model_and_metadata(tmp_path, capsys):
    x, y = _write(tmp_path / "data", one_hot=True)
    out = tmp_path / "out"
    rc = main(["--data-directory", str(tmp_path / "data"), "--out-directory", str(out),
               "--epochs", "5", "--learning-rate", "0.01", "--params", '{"dense_layers": "8"}'])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "metadata.json", "model.keras", "model.tflite", "model_float32.tflite"]
    q = TFLiteModel((out / "model.tflite").read_bytes())
    assert q.is_quantized and q.input_shape == (1, 10)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["labels"] == ["0", "1"]
    assert len(meta["history"]) == 5
    assert meta["params"]["dense_layers"] == "8"
    assert meta["quantization"]["int8_bytes"] == (out / "model.tflite").stat().st_size
    printed = json.loads(capsys.readouterr().out)
    assert printed["block"] == "classifier"
    # the int8 model really classifies the data it was trained for
    acc = (q.predict(x).argmax(1) == y).mean()
    assert acc > 0.8


def test_sklearn_block_writes_pickle_without_tflite(tmp_path):
    _write(tmp_path / "data")
    meta = run_learn_block(tmp_path / "data", tmp_path / "out", epochs=1, learning_rate=0.1,
                           block="classical")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["metadata.json",
                                                                    "model.pkl"]
    assert meta["format"] == "pickle"


def test_missing_file_and_bad_arguments_leave_no_output(tmp_path, capsys):
    _write(tmp_path / "data")
    (tmp_path / "data" / "Y_split_test.npy").unlink()
    out = tmp_path / "out"
    with pytest.raises(InvalidArgument, match="Y_split_test.npy is missing"):
        run_learn_block(tmp_path / "data", out, epochs=1, learning_rate=0.1)
    assert not out.exists() or not any(out.iterdir())
    rc = main(["--data-directory", str(tmp_path / "data"), "--out-directory", str(out),
               "--epochs", "0", "--learning-rate", "0.1"])
    assert rc == 2
    assert "missing" in capsys.readouterr().err
    _write(tmp_path / "data")
    rc = main(["--data-directory", str(tmp_path / "data"), "--out-directory", str(out),
               "--epochs", "0", "--learning-rate", "0.1"])
    assert rc == 2
    assert "error [epochs]: epochs must be an integer in 1..10000, got 0" in \
        capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_module_entry_point_reports_errors(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "tinyforge.learn.contract", "--data-directory",
         str(tmp_path / "nope"), "--out-directory", str(tmp_path / "o"), "--epochs", "3",
         "--learning-rate", "0.01", "--block", "svm"],
        capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 2
    assert "learning block 'svm' does not exist" in res.stderr
