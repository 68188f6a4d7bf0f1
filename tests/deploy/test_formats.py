"""Default-suite deployment tests on the synthetic motion bundle (no dataset needed): the
c-library format built with its own Makefile and CMakeLists.txt and run natively, and the
Cortex-M4F firmware run under QEMU mps2-an386 — predictions equal to the platform's int8
predictions on every one of the 24 test windows. The full format x target matrix on real
FSDD and HAR data is in test_real_data.py (slow)."""

from __future__ import annotations

import json
import subprocess
import zipfile

import numpy as np
import pytest

from tests.deploy.helpers import run_firmware, unpack
from tinyforge.deploy.registry import build_artifact

pytestmark = pytest.mark.toolchain


def _build(fmt, target, bundle, out_dir, **options):
    logs: list[str] = []
    result = build_artifact(fmt, target, bundle, out_dir, options=options, log=logs.append,
                            timeout_s=300)
    return result, "\n".join(logs)


def test_c_library_builds_with_make_and_cmake(synthetic_bundle, tmp_path):
    b = synthetic_bundle
    res, log = _build("c-library", "linux-x86_64", b, tmp_path / "out")
    assert res.artifact == tmp_path / "out" / "motion-c-library-linux-x86_64.zip"
    assert sorted(zipfile.ZipFile(res.artifact).namelist()) == sorted(res.files)
    assert res.metrics["compared"] == len(b.test_windows) >= 20
    assert res.metrics["on_target_accuracy"] == res.metrics["platform_accuracy"]
    assert "gcc" in log  # toolchain output goes to the log
    root = unpack(res.artifact, tmp_path / "x")
    for f in ("README.md", "Makefile", "CMakeLists.txt", "main.c", "sample.h",
              "model/model.c", "model/impulse.c", "model/model_metadata.h",
              "tinyforge-sdk/classifier/tf_classifier.h", "tinyforge-sdk/dsp/tf_dsp.h"):
        assert (root / f).is_file(), f
    # out of the box, as a user would: make, and cmake in a separate build directory
    subprocess.run(["make", "-s", "-j2"], cwd=root, check=True, capture_output=True)
    subprocess.run(["cmake", "-S", ".", "-B", "cbuild"], cwd=root, check=True,
                   capture_output=True)
    subprocess.run(["cmake", "--build", "cbuild", "-j2"], cwd=root, check=True,
                   capture_output=True)
    for exe in (root / "example", root / "cbuild" / "motion_example"):
        # the window in sample.h is test window 0
        out = json.loads(subprocess.run([str(exe)], capture_output=True, text=True,
                                        check=True).stdout)
        assert out["index"] == b.platform_int8_predictions[0]
        for k in (1, 9, 17):  # windows of each class given on stdin
            text = "\n".join(",".join(f"{v:.9g}" for v in row) for row in b.test_windows[k])
            out = json.loads(subprocess.run([str(exe), "-"], input=text, capture_output=True,
                                            text=True, check=True).stdout)
            assert out["index"] == b.platform_int8_predictions[k]
            assert out["prediction"] == b.labels[out["index"]]
            assert abs(sum(out["scores"].values()) - 1.0) < 0.02


def test_cortex_m_firmware_runs_under_qemu(synthetic_bundle, tmp_path):
    b = synthetic_bundle
    res, _ = _build("cortex-m-firmware", "cortex-m4f-80mhz", b, tmp_path / "out")
    m = res.metrics
    assert m["verified_on"] == "qemu-mps2-an386" and m["compared"] == len(b.test_windows)
    assert m["on_target_accuracy"] == m["platform_accuracy"]
    assert m["dsp_instructions"] > 0 and m["nn_instructions"] > 0
    assert m["ram_bytes"] == m["static_ram_bytes"] + m["stack_bytes"] <= 256 * 1024
    assert m["static_ram_bytes"] >= m["arena_bytes"] > 0
    assert 0 < m["flash_bytes"] <= 1024 * 1024
    root = unpack(res.artifact, tmp_path / "x")
    for f in ("firmware.elf", "firmware.bin", "firmware.hex", "README.md", "build-info.json",
              "verification.txt", "source/tf_main.c", "source/model/model.c"):
        assert (root / f).is_file(), f
    assert (root / "firmware.hex").read_text().startswith(":")
    # the shipped image, run independently under QEMU, reproduces the platform's predictions
    preds = run_firmware(root / "firmware.elf", "qemu-mps2-an386")
    assert preds == list(b.platform_int8_predictions)
    info = json.loads((root / "build-info.json").read_text())
    assert info["metrics"]["compared"] == len(preds)


def test_tflite_format_ships_both_models(synthetic_bundle, tmp_path):
    from tests.deploy.conftest import python_features
    from tinyforge.quantize.runner import TFLiteModel

    b = synthetic_bundle
    res, _ = _build("tflite", "linux-x86_64", b, tmp_path / "out")
    root = unpack(res.artifact, tmp_path / "x")
    assert (root / "model_int8.tflite").read_bytes() == b.model_int8
    assert (root / "model_float32.tflite").read_bytes() == b.model_float32
    meta = json.loads((root / "metadata.json").read_text())
    assert meta["labels"] == list(b.labels)
    q = meta["models"]["int8"]["input"]
    assert q["dtype"] == "int8" and q["shape"] == [1, meta["features"]["count"]]
    # the float model agrees with the int8 one on most windows (same network, quantised)
    feats = python_features(b.impulse, b.test_windows)
    f32 = np.argmax(TFLiteModel((root / "model_float32.tflite").read_bytes()).predict(feats), 1)
    assert np.mean(f32 == np.array(b.platform_int8_predictions)) >= 0.8
