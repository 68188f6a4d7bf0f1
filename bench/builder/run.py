"""Builder benchmark: for the FSDD MFCC impulse (MFCC + small conv) and the HAR spectral
impulse (spectral analysis, scale_axes 0.001 + dense), both trained here on the shared
datasets (synthetic motion data stands in when they are absent):

1. build time per deployment format (each build includes its on-target verification), next
   to the baseline of compiling the model alone to C (same run);
2. per target, DSP and NN instructions per inference measured in the verified firmware under
   QEMU (-icount), next to the bare model's instructions from the compiler's own harness
   (tinyforge.compiler.verify, same run) — the difference is the classifier API's overhead;
3. C DSP vs Python DSP: max absolute (and normalised) difference of the features of the test
   windows, next to the 1e-4 parity tolerance.

Every build also checks that on-target predictions equal the platform's int8 predictions.
Run: .venv/bin/python bench/builder/run.py [--json]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.deploy import conftest as data  # noqa: E402
from tinyforge.compiler.verify import compile_model, verify  # noqa: E402
from tinyforge.csdk.dspverify import DspCase, run_cases  # noqa: E402
from tinyforge.deploy.registry import build_artifact  # noqa: E402
from tinyforge.dsp.registry import get_block  # noqa: E402
from tinyforge.errors import TinyForgeError  # noqa: E402

FORMATS = [("c-library", "linux-x86_64"), ("arduino", "cortex-m4f-80mhz"),
           ("cortex-m-firmware", "cortex-m4f-80mhz"), ("esp-idf", "esp32-c3"),
           ("linux", "linux-x86_64"), ("wasm", "wasm"), ("tflite", "linux-x86_64"),
           ("kserve", "linux-x86_64")]
TARGETS = [("cortex-m-firmware", "cortex-m4f-80mhz", "cortex-m4f"),
           ("cortex-m-firmware", "nrf52840", "cortex-m4f"),
           ("cortex-m-firmware", "cortex-m7", None),
           ("c-library", "esp32-c3", "rv32imc"),
           ("c-library", "esp32-c6", None)]
DSP_TOL = 1e-4
VERIFY_WINDOWS = "24"


def bundles() -> list[tuple[str, object]]:
    """(title, DeployBundle) for FSDD MFCC and HAR spectral, or the synthetic stand-in."""
    out = []
    try:
        out.append(("FSDD MFCC + conv", data.make_bundle(
            data.fsdd_impulse(), ["zero", "one", "two"], data.fsdd_windows(range(10, 25)),
            data.fsdd_windows(range(0, 2)), "fsdd_kws", conv_shape=(50, 13))))
    except pytest.skip.Exception as e:
        print(f"FSDD unavailable ({e}); skipping it")
    try:
        out.append(("HAR spectral + dense", data.make_bundle(
            data.har_impulse(), list(data.HAR_CLASSES), data.har_windows(slice(4, 16)),
            data.har_windows(slice(0, 4), per_file=3), "har_motion")))
    except pytest.skip.Exception as e:
        print(f"HAR unavailable ({e}); using synthetic motion data")
        out.append(("synthetic spectral + dense", data.make_bundle(
            data.synthetic_impulse(), ["still", "slow", "fast"], data.synthetic_windows(20, 0),
            data.synthetic_windows(8, 1), "motion")))
    return out


def build(bundle, fmt: str, target: str, out: Path) -> dict:
    """The build's metrics, or ``{"error": message}`` when it fails (e.g. verification)."""
    t0 = time.monotonic()
    try:
        res = build_artifact(fmt, target, bundle, out,
                             options={"verify_windows": VERIFY_WINDOWS},
                             log=lambda _m: None, timeout_s=600)
    except TinyForgeError as e:
        return {"error": f"{type(e).__name__}: {e.message}",
                "build_seconds": time.monotonic() - t0}
    return res.metrics


def dsp_parity(bundle) -> tuple[float, float]:
    """Max |C - Python| and max |C - Python| / max(1, |Python|) over the test windows."""
    imp = bundle.impulse
    inp = imp.input
    cases, records = [], []
    for b in imp.processing:
        idx = [inp.axes.index(a) for a in imp.block_axes(b)]
        cases.append(DspCase(b.block, b.params, inp.frequency_hz, (inp.window_samples, len(idx))))
        records += [(len(cases) - 1, w[:, idx]) for w in bundle.test_windows]
    run = run_cases(cases, records, "host")
    worst_abs = worst_norm = 0.0
    for (k, x), c in zip(records, run.features, strict=True):
        py = get_block(cases[k].block).features(x, cases[k].fs, cases[k].params)
        d = np.abs(c.astype(np.float64) - py)
        worst_abs = max(worst_abs, float(d.max()))
        worst_norm = max(worst_norm, float((d / np.maximum(1.0, np.abs(py))).max()))
    return worst_abs, worst_norm


def main() -> None:
    as_json = "--json" in sys.argv
    report: dict = {}
    for title, bundle in bundles():
        entry: dict = {"formats": {}, "targets": {}}
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.monotonic()
            compile_model(bundle.model_int8, Path(tmp) / "m", "host")
            entry["compile_only_s"] = time.monotonic() - t0
            for fmt, target in FORMATS:
                m = build(bundle, fmt, target, Path(tmp) / "out")
                entry["formats"][f"{fmt}@{target}"] = m
            for fmt, target, bare in TARGETS:
                m = build(bundle, fmt, target, Path(tmp) / "out")
                bare_insn = None
                if bare:
                    rep = verify(bundle.model_int8, Path(tmp) / f"bare-{bare}", bare,
                                 n_random=2, measure=False)
                    bare_insn = rep.instructions if rep.bit_exact else "NOT bit-exact"
                entry["targets"][target] = {**m, "bare_model_instructions": bare_insn}
        entry["dsp_max_abs"], entry["dsp_max_norm"] = dsp_parity(bundle)
        report[title] = entry
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    for title, e in report.items():
        print(f"\n== {title}")
        print(f"baseline: compile the int8 model to C only: {e['compile_only_s']:.2f} s")
        print(f"{'format@target':34} {'build s':>8} {'verified on':28} {'windows':>7}")
        for key, m in e["formats"].items():
            where = m.get("verified_on", "") if "error" not in m else "FAILED"
            print(f"{key:34} {m['build_seconds']:8.2f} {str(where)[:28]:28} "
                  f"{m.get('compared', '-'):>7}")
        print(f"\n{'target':18} {'DSP insn':>12} {'NN insn':>10} {'bare NN (compiler)':>19} "
              f"{'RAM B':>8} {'flash B':>8} {'acc target=platform':>20}")
        for target, m in e["targets"].items():
            bare = m["bare_model_instructions"]
            if "error" in m:
                print(f"{target:18} FAILED: {m['error'][:150]}  (bare NN: {bare})")
                continue
            print(f"{target:18} {m['dsp_instructions']:12,} {m['nn_instructions']:10,} "
                  f"{(f'{bare:,}' if isinstance(bare, int) else str(bare or '-')):>19} "
                  f"{m['ram_bytes']:8,} "
                  f"{m['flash_bytes']:8,} "
                  f"{m['on_target_accuracy']:.3f}={m['platform_accuracy']:.3f}")
        for key, m in [*e["formats"].items(), *e["targets"].items()]:
            if "error" in m:
                print(f"FAILED {key}: {m['error']}")
        print(f"\nC DSP vs Python: max abs diff {e['dsp_max_abs']:.3g}, max normalised "
              f"{e['dsp_max_norm']:.3g} (parity tolerance {DSP_TOL:g} normalised)")


if __name__ == "__main__":
    main()
