"""Whole-model tests: the five MLPerf Tiny int8 models compiled to C and run on host gcc,
Cortex-M4F (QEMU mps2-an386) and RV32IMC (QEMU virt), bit-exact with TFLite's reference
kernels on random inputs plus real inputs; and a Keras model trained here."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.compiler import real_inputs
from tests.compiler.conftest import mlperf_model, to_int8
from tinyforge.compiler.importer import load_tflite
from tinyforge.compiler.verify import verify


def _real(key: str, path) -> np.ndarray | None:
    g = load_tflite(path)
    q = g.t(g.inputs[0]).quant
    s, zp = q.scale, q.zero_point
    if key == "ad":
        return real_inputs.ad_windows(s, zp)
    if key == "sww":
        return real_inputs.sww_specs(s, zp)
    if key == "vww":
        return real_inputs.images(96, s, zp)
    if key == "ic":
        return real_inputs.images(32, s, zp)
    return real_inputs.kws_mfcc(s, zp)


def _need(*progs: str) -> None:
    for p in progs:
        if shutil.which(p) is None:
            pytest.skip(f"{p} is not installed (make install)")


def _check(key: str, target: str, tmp_path, n_random: int = 20) -> None:
    path = mlperf_model(key)
    real = _real(key, path)
    rep = verify(path, tmp_path / key, target, n_random=n_random, inputs=real)
    assert rep.bit_exact, rep.first_mismatch
    assert rep.compared == n_random + (0 if real is None else len(real))
    assert rep.arena_bytes > 0 and rep.macs > 0
    if target in ("cortex-m4f", "rv32imc"):
        assert rep.instructions and rep.instructions > rep.macs / 4
        assert 0 < rep.stack_bytes < 16384
        assert rep.ram_bytes >= rep.arena_bytes


@pytest.mark.parametrize("key", ["kws", "ad", "sww", "ic"])
def test_mlperf_host(key, tmp_path):
    _check(key, "host", tmp_path)


@pytest.mark.slow
def test_mlperf_host_vww(tmp_path):
    _check("vww", "host", tmp_path)


@pytest.mark.toolchain
def test_kws_cortex_m4f(tmp_path):
    _need("arm-none-eabi-gcc", "qemu-system-arm")
    _check("kws", "cortex-m4f", tmp_path)


@pytest.mark.toolchain
@pytest.mark.slow
@pytest.mark.parametrize("key", ["ad", "sww", "ic", "vww"])
def test_mlperf_cortex_m4f(key, tmp_path):
    _need("arm-none-eabi-gcc", "qemu-system-arm")
    _check(key, "cortex-m4f", tmp_path)


@pytest.mark.toolchain
@pytest.mark.parametrize("key", ["kws", "ad"])
def test_mlperf_rv32imc(key, tmp_path):
    _need("riscv64-unknown-elf-gcc", "qemu-system-riscv32")
    _check(key, "rv32imc", tmp_path)


@pytest.mark.toolchain
def test_kws_wasm(tmp_path):
    _need("clang", "node")
    rep = verify(mlperf_model("kws"), tmp_path / "w", "wasm", n_random=8)
    assert rep.bit_exact, rep.first_mismatch


def test_trained_keras_conv_model(tmp_path):
    """A small conv net trained for a few steps here, int8-converted, compiled bit-exact."""
    tf = pytest.importorskip("tensorflow")
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(256, 16, 16, 1)).astype(np.float32)
    y = (x[:, :8].mean(axis=(1, 2, 3)) > x[:, 8:].mean(axis=(1, 2, 3))).astype(np.int64)
    inp = tf.keras.Input((16, 16, 1), batch_size=1)
    h = L.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    h = L.DepthwiseConv2D(3, padding="same", activation="relu6")(h)
    h = L.Conv2D(12, 1, activation="relu")(h)
    h = L.MaxPooling2D(2)(h)
    h = L.GlobalAveragePooling2D()(h)
    out = L.Dense(2, activation="softmax")(h)
    model = tf.keras.Model(inp, out)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    tfl = to_int8(model, (16, 16, 1), -3, 3)
    rep = verify(tfl, tmp_path / "c", "host", n_random=16,
                 inputs=np.clip(np.round(x[:16] / 0.03), -128, 127).astype(np.int8))
    assert rep.bit_exact, rep.first_mismatch
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "SOFTMAX"} <= set(rep.ops)


@pytest.mark.toolchain
@pytest.mark.parametrize("key", ["sww", "kws"])
def test_dsp_fast_path_matches_portable_on_cortex_m4f(key, tmp_path):
    """The SMLAD fast paths and the portable kernels give the same bytes (both equal the
    reference on the same inputs), and the fast path is really the one that ran. SWW has
    conv, depthwise and FC layers with odd channel counts; KWS runs its 1x1 convs fully in
    place in the DSP build (row-wise with a ring buffer in the portable one)."""
    _need("arm-none-eabi-gcc", "qemu-system-arm")
    path = mlperf_model(key)
    fast = verify(path, tmp_path / "f", "cortex-m4f", n_random=12, seed=5, measure=False)
    port = verify(path, tmp_path / "p", "cortex-m4f", n_random=12, seed=5, measure=False,
                  defines=["-DTF_NN_PORTABLE"])
    assert fast.bit_exact and port.bit_exact, (fast.first_mismatch, port.first_mismatch)
    assert fast.instructions < 0.8 * port.instructions


@pytest.mark.toolchain
def test_single_smlal_requant_matches_tflite_rounding(tmp_path):
    """The DSP kernels' one-SMLAL requantization (inline asm, run on the emulated M4) gives
    exactly TFLite's two-rounding result + output offset on edge, tie and random values."""
    _need("arm-none-eabi-gcc", "qemu-system-arm")
    from tinyforge.compiler import toolchains
    from tinyforge.compiler.codegen import NN_DIR

    src = tmp_path / "src"
    src.mkdir()
    for f in ("tf_nn.h", "tf_nn_dsp.h"):
        shutil.copy(NN_DIR / f, src / f)
    shutil.copy(Path(__file__).parent / "csrc" / "rq_check.c", src / "rq_check.c")
    exe = toolchains.build("cortex-m4f", src, [], tmp_path / "rq.elf", app="harness")
    out = toolchains.run("cortex-m4f", exe)
    m = re.search(r"CHECKED (\d+) BAD (\d+)", out)
    assert m, out
    assert int(m.group(1)) > 1_000_000 and int(m.group(2)) == 0, out
