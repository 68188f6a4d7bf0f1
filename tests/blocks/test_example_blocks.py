"""The example blocks in blocks/, run through run_block with their local command (no podman).

Real data: the STMicro HAR accelerometer set (x,y,z in mg at 26 Hz) is resampled by the
transformation block, windowed and featurised by the DSP block, and classified by a model the
learning block trains; the deployment block's zip is unpacked and built with cmake + gcc.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.blocks.conftest import EXAMPLE_BLOCKS
from tinyforge.blocks.errors import BlockFailed
from tinyforge.blocks.run import run_block

HAR_HZ = 26.0


@pytest.fixture
def har(shared_datasets: Path) -> Path:
    d = shared_datasets / "har_stm32_accel"
    if not d.is_dir():
        pytest.skip("../shared/datasets/har_stm32_accel not present")
    return d


def _load_har(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", dtype=np.float64)


def test_resample_csv_block_on_har(har: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    files = (
        sorted((har / "walking").glob("*.csv"))[:3] + sorted((har / "running").glob("*.csv"))[:2]
    )
    for f in files:
        (src / f.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, src / f.parent.name / f.name)
    res = run_block(
        EXAMPLE_BLOCKS / "resample-csv", src, tmp_path / "out",
        params={"target_frequency": 50, "source_frequency": HAR_HZ}, engine="local",
    )  # fmt: skip
    assert sorted(res.files) == sorted(f"{f.parent.name}/{f.name}" for f in files)
    for f in files:
        x = _load_har(f)
        y = _load_har(tmp_path / "out" / f.parent.name / f.name)
        t_in = np.arange(len(x)) / HAR_HZ
        n_out = int(np.floor(t_in[-1] * 50 + 1e-9)) + 1
        assert y.shape == (n_out, 3)
        # Every half second both grids meet (13 input = 25 output samples): values are exact.
        np.testing.assert_array_equal(y[::25], x[::13][: len(y[::25])])
        # In between: linear interpolation between the neighbouring input samples.
        t_out = np.arange(n_out) / 50
        i = np.minimum(np.floor(t_out * HAR_HZ + 1e-9).astype(int), len(x) - 2)
        w = (t_out - t_in[i]) * HAR_HZ
        np.testing.assert_allclose(y, x[i] * (1 - w[:, None]) + x[i + 1] * w[:, None], atol=1e-9)


def test_resample_csv_with_timestamp_header_and_bad_file(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "ok.csv").write_text("timestamp,accX\n0,0\n100,10\n200,30\n")
    res = run_block(
        EXAMPLE_BLOCKS / "resample-csv", src / "ok.csv", tmp_path / "out",
        params={"target_frequency": 20}, engine="local",
    )  # fmt: skip
    assert res.files == ["ok.csv"]
    rows = (tmp_path / "out" / "ok.csv").read_text().split()
    assert rows[0] == "timestamp,accX"
    got = np.array([[float(v) for v in r.split(",")] for r in rows[1:]])
    np.testing.assert_allclose(got, [[0, 0], [50, 5], [100, 10], [150, 20], [200, 30]])
    (src / "bad.csv").write_text("timestamp,accX\n0,1\n100,oops\n")
    with pytest.raises(BlockFailed, match="exited with code 1") as exc:
        run_block(EXAMPLE_BLOCKS / "resample-csv", src, tmp_path / "out2", engine="local")
    assert any("bad.csv" in line and "non-numeric" in line for line in exc.value.log_tail)
    assert not (tmp_path / "out2").exists()


def test_zcr_bands_block_finds_a_tone_in_its_band(tmp_path: Path) -> None:
    fs, t_len = 100.0, 200
    t = np.arange(t_len) / fs
    # Two windows x 2 axes: axis 0 a 10 Hz tone (band 1 of 4 over 0..50 Hz), axis 1 a 40 Hz tone.
    w0 = np.stack([np.sin(2 * np.pi * 10 * t), np.sin(2 * np.pi * 40 * t)], axis=1)
    w1 = np.stack([np.sin(2 * np.pi * 30 * t), 0.5 * np.sin(2 * np.pi * 15 * t)], axis=1)
    x = np.stack([w0, w1]).reshape(2, -1)  # flattened, interleaved axes
    np.save(tmp_path / "X.npy", x.astype(np.float32))
    run_block(
        EXAMPLE_BLOCKS / "zcr-bands", tmp_path / "X.npy", tmp_path / "out",
        params={"axes": 2, "bands": 4}, engine="local",
    )  # fmt: skip
    f = np.load(tmp_path / "out" / "features.npy")
    assert f.shape == (2, 2 * 5) and f.dtype == np.float32
    for win, tones in ((0, (10, 40)), (1, (30, 15))):
        for axis, hz in enumerate(tones):
            zcr, bands = f[win, axis * 5], f[win, axis * 5 + 1 : axis * 5 + 5]
            assert zcr == pytest.approx(2 * hz / fs, abs=0.01)
            assert int(np.argmax(bands)) == int(hz // 12.5)  # band width 50 Hz / 4
            assert bands.max() - np.sort(bands)[-2] > 2  # > 100x more energy than the next band
    # Per-window call (live classification) gives the same features as the batch.
    out = subprocess.run(
        [
            "python3", str(EXAMPLE_BLOCKS / "zcr-bands" / "dsp.py"),
            "--window", json.dumps(w1.tolist()), "--params", '{"axes": 2, "bands": 4}',
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    np.testing.assert_allclose(json.loads(out.stdout), f[1], rtol=1e-5, atol=1e-6)


def _har_windows(har: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2 s windows (52 samples, stride 26) of every HAR file: X (N, 156), labels, file index."""
    xs, ys, groups = [], [], []
    for label, cls in enumerate(("running", "stationary", "walking")):
        for fi, f in enumerate(sorted((har / cls).glob("*.csv"))):
            a = _load_har(f)
            for s in range(0, len(a) - 52 + 1, 26):
                xs.append(a[s : s + 52].reshape(-1))
                ys.append(label)
                groups.append(fi)
    return np.array(xs, dtype=np.float32), np.array(ys), np.array(groups)


def test_dsp_then_learn_blocks_train_a_working_har_classifier(har: Path, tmp_path: Path) -> None:
    x, y, groups = _har_windows(har)
    np.save(tmp_path / "X.npy", x)
    run_block(
        EXAMPLE_BLOCKS / "zcr-bands", tmp_path / "X.npy", tmp_path / "features",
        params={"axes": 3, "bands": 4}, engine="local",
    )  # fmt: skip
    feats = np.load(tmp_path / "features" / "features.npy")
    test = groups % 4 == 0  # whole recordings held out
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "X_split_train.npy", feats[~test])
    np.save(data / "Y_split_train.npy", np.eye(3)[y[~test]])  # one-hot, as Edge Impulse gives
    np.save(data / "X_split_test.npy", feats[test])
    np.save(data / "Y_split_test.npy", np.eye(3)[y[test]])
    res = run_block(
        EXAMPLE_BLOCKS / "keras-dense", data, tmp_path / "model",
        epochs=10, learning_rate=0.01, engine="local",
        params={"hidden_units": 16, "batch_size": 64},
    )  # fmt: skip
    assert sorted(res.files) == ["metrics.json", "model.tflite"]
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(tmp_path / "model" / "model.tflite"))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    pred = []
    for row in feats[test]:
        interp.set_tensor(inp["index"], row[None, :].astype(np.float32))
        interp.invoke()
        pred.append(int(np.argmax(interp.get_tensor(out["index"])[0])))
    acc = float(np.mean(np.array(pred) == y[test]))
    assert acc >= 0.85, f"held-out accuracy {acc:.2f}"
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["tflite_accuracy"] == pytest.approx(acc, abs=1e-9)


def test_keras_dense_int8_with_a_constant_feature(tmp_path: Path) -> None:
    """A feature constant in the training data (e.g. an idle axis) must not break the int8
    export: the block folds its standardisation into the first layer."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    x = np.column_stack([y + rng.normal(0, 0.3, 200), rng.normal(0, 1, 200), np.full(200, 0.1)])
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "X_split_train.npy", x.astype(np.float32))
    np.save(data / "Y_split_train.npy", np.eye(2)[y])
    res = run_block(
        EXAMPLE_BLOCKS / "keras-dense", data, tmp_path / "model",
        epochs=20, learning_rate=0.01, engine="local", params={"quantize": True},
    )  # fmt: skip
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["quantized"] is True and metrics["tflite_accuracy"] > 0.8, metrics
    assert "model.tflite" in res.files


C_SOURCE = """#include "edge_model.h"
int edge_model_classify(const float *x, int n) {
    float s = 0; for (int i = 0; i < n; i++) s += x[i];
    return s > 0.0f ? EDGE_MODEL_POSITIVE : EDGE_MODEL_NEGATIVE;
}
"""
C_HEADER = """#ifndef EDGE_MODEL_H
#define EDGE_MODEL_H
#define EDGE_MODEL_POSITIVE 1
#define EDGE_MODEL_NEGATIVE 0
int edge_model_classify(const float *x, int n);
#endif
"""
C_MAIN = """#include <stdio.h>
#include "edge_model.h"
int main(void) { float a[3] = {1, -3, 4}, b[2] = {-1, -2};
  printf("%d %d\\n", edge_model_classify(a, 3), edge_model_classify(b, 2)); return 0; }
"""


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed (make install)")
def test_c_library_zip_block_builds_with_cmake(tmp_path: Path, shared_datasets: Path) -> None:
    src = tmp_path / "deploy-in"
    (src / "c-library" / "include").mkdir(parents=True)
    (src / "c-library" / "edge_model.c").write_text(C_SOURCE)
    (src / "c-library" / "include" / "edge_model.h").write_text(C_HEADER)
    model = shared_datasets / "mlperf_tiny_models" / "anomaly_detection" / "ad01_int8.tflite"
    if model.is_file():
        shutil.copy(model, src / "ad01_int8.tflite")
    meta = {"project": {"name": "gesture demo"}, "deployCounter": 7, "classes": ["idle", "wave"]}
    (src / "deployment-metadata.json").write_text(json.dumps(meta))
    res = run_block(EXAMPLE_BLOCKS / "c-library-zip", src, tmp_path / "out", engine="local")
    assert res.files == ["gesture-demo-v7.zip"]
    with zipfile.ZipFile(tmp_path / "out" / res.files[0]) as zf:
        names = sorted(zf.namelist())
        zf.extractall(tmp_path / "unzipped")
    root = tmp_path / "unzipped" / "gesture-demo-v7"
    expected = {"CMakeLists.txt", "include/edge_model.h", "src/edge_model.c", "tinyforge.json"}
    if model.is_file():
        expected.add("model/ad01_int8.tflite")
    assert names == sorted(f"gesture-demo-v7/{n}" for n in expected)
    manifest = json.loads((root / "tinyforge.json").read_text())
    assert manifest["classes"] == ["idle", "wave"] and manifest["deployCounter"] == 7
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((root / rel).read_bytes()).hexdigest() == digest
    if model.is_file():
        assert (root / "model" / "ad01_int8.tflite").read_bytes() == model.read_bytes()
    # The generated CMakeLists builds the library; a program links against it and runs.
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.c").write_text(C_MAIN)
    (tmp_path / "app" / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.13)\nproject(app C)\n"
        f"add_subdirectory({root} lib)\nadd_executable(app main.c)\n"
        "target_link_libraries(app edge_model)\n"
    )
    build = tmp_path / "build"
    for cmd in (
        ["cmake", "-S", str(tmp_path / "app"), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"],
        ["cmake", "--build", str(build)],
    ):
        subprocess.run(cmd, check=True, capture_output=True)
    run = subprocess.run([str(build / "app")], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["1", "0"]
    # Same input, same archive bytes (reproducible zip).
    run_block(EXAMPLE_BLOCKS / "c-library-zip", src, tmp_path / "out2", engine="local")
    assert (tmp_path / "out2" / res.files[0]).read_bytes() == (
        tmp_path / "out" / res.files[0]
    ).read_bytes()
