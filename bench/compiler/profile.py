"""Per-op instruction profile of one MLPerf Tiny model on the emulated Cortex-M4F.

Builds the model for cortex-m4f, inserts a SysTick read before every op of the generated
``tf_model_invoke`` (QEMU -icount: the SysTick clock advances once per 40 instructions, so
figures have a 40-instruction granularity), runs one random input under QEMU and prints the
instructions spent in each op next to the whole-inference count the harness measures.
A profiling aid for kernel work, not part of ``make bench``.

Run: .venv/bin/python bench/compiler/profile.py kws|vww|ic|ad|sww
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
MLPERF = ROOT / ".." / "shared" / "datasets" / "mlperf_tiny_models"
MODELS = {
    "kws": "keyword_spotting/kws_ref_model.tflite",
    "vww": "visual_wake_words/vww_96_int8.tflite",
    "ic": "image_classification/pretrainedResnet_quant.tflite",
    "ad": "anomaly_detection/ad01_int8.tflite",
    "sww": "streaming_wakeword/str_ww_ref_model.tflite",
}
END_MARK = 999_999

# SysTick (24-bit down-counter): reload at the first mark, then the difference between
# consecutive marks; the first read waits for the counter to load its reload value.
PROF_C = r"""
#include <stdint.h>
#include <stdio.h>
#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)
static uint32_t last;
static int lastk = -1, done;
void tf_prof_mark(int k)
{
    uint32_t v;
    if (done) return;
    if (lastk < 0) {
        SYST_RVR = 0xFFFFFFu;
        SYST_CVR = 0;
        SYST_CSR = 5u;
        while (SYST_CVR == 0) {
        }
    }
    v = SYST_CVR;
    if (lastk >= 0) printf("P %d %lu\n", lastk, (unsigned long)(((last - v) & 0xFFFFFFu) * 40u));
    if (k == %END%) done = 1;
    last = SYST_CVR;
    lastk = k;
}
""".replace("%END%", str(END_MARK))


def main(argv: list[str]) -> int:
    from tinyforge.compiler import toolchains
    from tinyforge.compiler.importer import load_tflite
    from tinyforge.compiler.verify import _stim_source, compile_model, random_inputs

    if len(argv) != 1 or argv[0] not in MODELS:
        print(f"usage: profile.py {'|'.join(MODELS)}", file=sys.stderr)
        return 2
    path = MLPERF / MODELS[argv[0]]
    if not path.is_file():
        print(f"{path} not staged", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "c"
        compiled = compile_model(path, out, "cortex-m4f")
        src = (out / "model.c").read_text()
        src = re.sub(r"/\* op (\d+):", r"tf_prof_mark(\1);\n    /* op \1:", src)
        src = src.replace("    return 0;\n}", f"    tf_prof_mark({END_MARK});\n    return 0;\n}}")
        src = src.replace('#include "model.h"', '#include "model.h"\nvoid tf_prof_mark(int);')
        (out / "model.c").write_text(src)
        (out / "prof.c").write_text(PROF_C)
        stim = Path(tmp) / "stim.c"
        stim.write_text(_stim_source(random_inputs(compiled, 1)))
        exe = toolchains.build("cortex-m4f", out, [str(toolchains.BOARD / "harness.c"), str(stim)],
                               Path(tmp) / "a.elf", app="harness")
        text = toolchains.run("cortex-m4f", exe)
    g = load_tflite(path)
    total = 0
    for k, v in re.findall(r"^P (\d+) (\d+)$", text, re.M):
        op = g.ops[int(k)]
        total += int(v)
        print(f"{k:>3} {op.name:<20} {str(g.t(op.outputs[0]).shape):<18} {int(v):>10,}")
    m = re.search(r"INSN (\d+)", text)
    print(f"sum of ops {total:,}; whole inference {int(m.group(1)):,}" if m else f"sum {total:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
