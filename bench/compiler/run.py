"""Compiler benchmark: for each MLPerf Tiny int8 model, our arena / RAM / flash on Cortex-M4F
next to TFLM's arena for the same model (tflite-micro's recording allocator, same run), plus
MACs, instructions per inference (QEMU -icount) and instructions per MAC. Every build is also
verified bit-exact against TFLite's reference kernels. Prints a table and the goal checks.

Run: .venv/bin/python bench/compiler/run.py [--json]
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
MLPERF = ROOT / ".." / "shared" / "datasets" / "mlperf_tiny_models"
MODELS = {
    "KWS DS-CNN": "keyword_spotting/kws_ref_model.tflite",
    "VWW MobileNet": "visual_wake_words/vww_96_int8.tflite",
    "IC ResNet-8": "image_classification/pretrainedResnet_quant.tflite",
    "AD FC-AE": "anomaly_detection/ad01_int8.tflite",
    "SWW": "streaming_wakeword/str_ww_ref_model.tflite",
}
RAM_RATIO_GOAL = 0.5
FLASH_OVERHEAD_GOAL = 16 * 1024
KWS_INSN_GOAL = 5_000_000


def tflm_arena_bytes(model: Path) -> int:
    """Arena bytes TFLM's interpreter allocates for ``model`` (RecordingMicroAllocator)."""
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_file(str(model), arena_size=4 << 20)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)  # TFLM's MicroPrintf writes to stderr
        try:
            interp.print_allocations()
        finally:
            ctypes.CDLL(None).fflush(None)  # C stdio buffers the allocator's report
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode(errors="replace")
    m = re.search(r"Arena allocation total (\d+) bytes", text)
    if not m:
        raise RuntimeError(f"no arena total in TFLM output: {text[:500]}")
    return int(m.group(1))


def main() -> int:
    from tinyforge.compiler.verify import verify

    rows = []
    for name, rel in MODELS.items():
        path = MLPERF / rel
        if not path.is_file():
            print(f"skip {name}: {path} not staged")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            rep = verify(path, Path(tmp) / "c", "cortex-m4f", n_random=3)
        tflm = tflm_arena_bytes(path)
        rows.append({"model": name, "bit_exact": rep.bit_exact, "macs": rep.macs,
                     "arena": rep.arena_bytes, "ram": rep.ram_bytes, "stack": rep.stack_bytes,
                     "flash": rep.flash_bytes, "weights": rep.weight_bytes,
                     "flash_overhead": rep.flash_bytes - rep.weight_bytes,
                     "tflm_arena": tflm, "ram_ratio": rep.ram_bytes / tflm,
                     "insn": rep.instructions, "insn_per_mac": rep.instructions / rep.macs})
    if "--json" in sys.argv:
        print(json.dumps(rows, indent=1))
    hdr = (f"{'model':<14} {'MACs':>10} {'arena':>7} {'RAM':>7} {'TFLM arena':>10} "
           f"{'RAM/TFLM':>8} {'flash':>8} {'weights':>8} {'overhead':>8} {'insn/inf':>11} "
           f"{'insn/MAC':>8} exact")
    print("Cortex-M4F (arm-none-eabi-gcc -O2, QEMU mps2-an386 -icount), bytes")
    print(hdr)
    for r in rows:
        print(f"{r['model']:<14} {r['macs']:>10,} {r['arena']:>7,} {r['ram']:>7,} "
              f"{r['tflm_arena']:>10,} {r['ram_ratio']:>8.2f} {r['flash']:>8,} "
              f"{r['weights']:>8,} {r['flash_overhead']:>8,} {r['insn']:>11,} "
              f"{r['insn_per_mac']:>8.2f} {r['bit_exact']}")
    print("RAM = static data + bss (arena, I/O buffers of the caller) + measured stack; "
          "TFLM arena from tflite-micro's recording allocator (x86-64 build).")
    print("\nGoals:")
    ok = True
    for r in rows:
        met = r["ram_ratio"] <= RAM_RATIO_GOAL
        ok &= met
        print(f"  RAM <= {RAM_RATIO_GOAL} x TFLM arena, {r['model']}: "
              f"{'MET' if met else 'MISSED'} ({r['ram_ratio']:.2f} x; "
              f"{r['ram'] - RAM_RATIO_GOAL * r['tflm_arena']:+,.0f} B vs goal)")
    for r in rows:
        met = r["flash_overhead"] <= FLASH_OVERHEAD_GOAL
        ok &= met
        print(f"  flash overhead <= 16 KB, {r['model']}: {'MET' if met else 'MISSED'} "
              f"({r['flash_overhead']:,} B)")
    kws = [r for r in rows if r["model"].startswith("KWS")]
    if kws:
        met = kws[0]["insn"] <= KWS_INSN_GOAL
        print(f"  KWS <= 5 M instructions/inference on Cortex-M4F: {'MET' if met else 'MISSED'} "
              f"({kws[0]['insn'] / 1e6:.2f} M, {kws[0]['insn'] / KWS_INSN_GOAL:.2f} x the goal;"
              f" TFLM reference kernels ~21.8 M)")
    if not all(r["bit_exact"] for r in rows):
        print("ERROR: a build is not bit-exact")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
