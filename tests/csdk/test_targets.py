"""The C DSP blocks on the embedded targets: built with -std=c99 -Wall -Wextra -Werror by each
cross compiler, run under QEMU (Cortex-M4F, RV32IMC) or node (wasm32), features compared with
the Python blocks under the same rules as the host parity test; instruction counts printed."""

from __future__ import annotations

import numpy as np
import pytest

from tests.csdk.conftest import fit_window, fsdd_files, har_files, read_har_csv, read_wav
from tests.csdk.test_parity import TOL, build_cases, compare
from tinyforge.compiler import toolchains
from tinyforge.csdk.dspverify import DspCase, run_cases
from tinyforge.errors import FailedPrecondition

# the FSDD keyword impulse (1 s at 8 kHz, MFCC defaults) and the HAR impulse (2 s at 26 Hz)
MFCC_CASE = DspCase("mfcc", {}, 8000, (8000, 1))
SPECTRAL_CASE = DspCase("spectral_analysis", {"filter_type": "low", "filter_cutoff": 3,
                                              "filter_order": 6, "fft_length": 16}, 26, (52, 3))


def _need(target: str) -> None:
    try:
        toolchains.tool_for(target)
    except FailedPrecondition as e:
        pytest.skip(str(e))


def _impulse_records() -> list[tuple[int, np.ndarray]]:
    audio = [fit_window(read_wav(p)[0], 8000) for p, _ in fsdd_files((4,), range(0, 1))[:1]]
    har = [read_har_csv(p)[100:152] for p in har_files()[::40][:2]]
    return [(0, a) for a in audio] + [(1, h) for h in har]


def _check(cases, records, run) -> None:
    for (k, x), feats in zip(records, run.features, strict=True):
        err, _ = compare(cases[k], x, feats)
        assert err <= TOL, f"{cases[k].block} on {run.codes[k].name}: {err:.3g}"


@pytest.mark.toolchain
def test_cortex_m4f_mfcc_and_spectral(tmp_path):
    _need("cortex-m4f")
    cases, records = [MFCC_CASE, SPECTRAL_CASE], _impulse_records()
    run = run_cases(cases, records, "cortex-m4f", tmp_path)
    _check(cases, records, run)
    insn = {cases[k].block: n for (k, _), n in zip(records, run.instructions, strict=True)}
    # counts are real: an FFT-based block costs well over one instruction per sample
    assert insn["mfcc"] > 8000 * 10 and insn["spectral_analysis"] > 52 * 3 * 10
    print(f"\nCortex-M4F DSP instructions: MFCC (FSDD 1 s, 8 kHz) {insn['mfcc']}, "
          f"spectral_analysis (HAR 2 s, 26 Hz, 3 axes) {insn['spectral_analysis']}; "
          f"scratch {4 * run.scratch_floats} B, image text {run.text_bytes} B")


@pytest.mark.toolchain
def test_wasm32_mfcc_and_spectral(tmp_path):
    _need("wasm")
    cases, records = [MFCC_CASE, SPECTRAL_CASE], _impulse_records()
    _check(cases, records, run_cases(cases, records, "wasm", tmp_path))


@pytest.mark.slow
@pytest.mark.toolchain
def test_rv32imc_every_block(tmp_path):
    _need("rv32imc")
    cases, records, _ = build_cases()
    first = {}  # one record per case keeps the emulated image small
    for k, x in records:
        first.setdefault(k, x)
    recs = list(first.items())
    run = run_cases(cases, recs, "rv32imc", tmp_path)
    _check(cases, recs, run)
    assert all(n and n > 0 for n in run.instructions)
