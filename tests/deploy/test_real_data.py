"""Every deployment format from models trained here on real data — FSDD spoken digits (MFCC +
small conv) and STM32 HAR accelerometer CSVs (spectral analysis, scale_axes 0.001 + dense) —
built and run on its target: Cortex-M4F / M7 firmware under QEMU mps2, RV32 (ESP32-C3) under
QEMU riscv32, Linux natively, WASM under node. Each build compares every test window's
on-target prediction with the platform's int8 prediction (the build fails on the first
difference); here we also check the figures and re-run the shipped firmware independently.
Skipped with a message when ../shared/datasets is absent (test_formats.py covers the same
paths on synthetic data)."""

from __future__ import annotations

import pytest

from tests.deploy.helpers import run_firmware, unpack
from tinyforge.deploy.registry import build_artifact

pytestmark = [pytest.mark.slow, pytest.mark.toolchain]

MATRIX = [
    ("c-library", "linux-x86_64"), ("c-library", "esp32-c3"),
    ("arduino", "nrf52840"),
    ("cortex-m-firmware", "cortex-m4f-80mhz"), ("cortex-m-firmware", "cortex-m7"),
    ("esp-idf", "esp32-c3"),
    ("linux", "linux-x86_64"),
    ("wasm", "wasm"),
    ("tflite", "linux-x86_64"),
    ("kserve", "linux-x86_64"),
]


@pytest.fixture(params=["fsdd_bundle", "har_bundle"])
def bundle(request):
    return request.getfixturevalue(request.param)


@pytest.mark.parametrize(("fmt", "target"), MATRIX, ids=[f"{f}@{t}" for f, t in MATRIX])
def test_format_on_target(bundle, fmt, target, tmp_path):
    logs: list[str] = []
    res = build_artifact(fmt, target, bundle, tmp_path / "out", options={}, log=logs.append,
                         timeout_s=600)
    m = res.metrics
    assert res.artifact.is_file() and any(f.endswith("README.md") for f in res.files)
    print(f"\n{bundle.name} {fmt}@{target}: " + ", ".join(f"{k}={v}" for k, v in m.items()))
    if fmt == "kserve":
        return
    assert m["compared"] >= 20
    assert m["on_target_accuracy"] == m["platform_accuracy"]
    if fmt in ("cortex-m-firmware", "c-library", "arduino", "esp-idf") and \
            target != "linux-x86_64":
        assert m["dsp_instructions"] > 0 and m["nn_instructions"] > 0
        assert m["ram_bytes"] == m["static_ram_bytes"] + m["stack_bytes"]
    if fmt == "cortex-m-firmware":
        root = unpack(res.artifact, tmp_path / "x")
        runner = m["verified_on"]
        preds = run_firmware(root / "firmware.elf", runner)
        assert len(preds) == m["compared"]
        assert preds == list(bundle.platform_int8_predictions[:len(preds)])
