"""Classifier API end to end on the host: FSDD audio -> C MFCC -> int8 model compiled by
tinyforge.compiler -> scores, against the Python path (tinyforge MFCC block -> TFLite reference
kernels), one-shot and in continuous mode. The Keras model is trained here on MFCC features
of three FSDD digits."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.csdk.conftest import fit_window, fsdd_files, read_wav
from tinyforge.compiler.verify import compile_model, reference_outputs
from tinyforge.csdk.dspverify import build
from tinyforge.csdk.generate import generate_impulse, sdk_include_dirs, sdk_sources
from tinyforge.dsp.registry import get_block
from tinyforge.errors import InvalidArgument
from tinyforge.impulse import Impulse, LearningBlockDef, ProcessingBlockDef, TimeSeriesInput

FS = 8000
WINDOW = 8000  # 1 s
DIGITS = (0, 1, 2)
LABELS = ["zero", "one", "two"]
MFCC = {"num_cepstral": 13, "frame_length": 0.02, "frame_stride": 0.02, "num_filters": 32,
        "fft_length": 256, "win_size": 101}
MAIN = Path(__file__).resolve().parent / "csrc" / "classify_main.c"
SLICES = 4


def _impulse() -> Impulse:
    return Impulse(
        input=TimeSeriesInput(window_size_ms=1000, window_stride_ms=250, frequency_hz=FS,
                              axes=["audio"]),
        processing=[ProcessingBlockDef(name="mfcc", block="mfcc", params=dict(MFCC))],
        learning=[LearningBlockDef(name="nn", type="keras", inputs=["mfcc"])],
    )


def _features(windows: np.ndarray) -> np.ndarray:
    return get_block("mfcc").features_batch(windows, FS, MFCC).reshape(len(windows), -1)


def _train_int8(x: np.ndarray, y: np.ndarray) -> bytes:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)

    def net(batch):
        inp = tf.keras.Input(shape=(x.shape[1],), batch_size=batch)
        h = tf.keras.layers.Dense(24, activation="relu")(inp)
        return tf.keras.Model(inp, tf.keras.layers.Dense(len(LABELS), activation="softmax")(h))

    train = net(None)
    train.compile(optimizer=tf.keras.optimizers.Adam(0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    train.fit(x, y, epochs=40, batch_size=16, verbose=0)
    deploy = net(1)  # fixed batch 1 for the MCU graph
    deploy.set_weights(train.get_weights())

    def rep():
        for row in x[:64]:
            yield [row[None].astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(deploy)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def _quantize(x: np.ndarray, scale: float, zp: int) -> np.ndarray:
    """Python path's input quantisation (tinyforge.quantize.runner.TFLiteModel)."""
    return np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)


def _parse(text: str, tag: str) -> list[np.ndarray]:
    return [np.frombuffer(bytes.fromhex(m), "<f4")
            for m in re.findall(rf"^{tag} ([0-9a-f]+)", text, re.M)]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """Trained int8 model, compiled C model + generated impulse, built host binary."""
    train = fsdd_files(DIGITS, range(5, 20))
    test = fsdd_files(DIGITS, range(0, 5))
    xtr = np.stack([fit_window(read_wav(p)[0], WINDOW) for p, _ in train])
    ytr = np.array([d for _, d in train])
    tflite = _train_int8(_features(xtr), ytr)
    work = tmp_path_factory.mktemp("classifier")
    model_dir = work / "model"
    compiled = compile_model(tflite, model_dir)
    gen = generate_impulse(_impulse(), LABELS, compiled, model_dir, slices_per_window=SLICES)
    exe = work / "classify"
    build("host", [*sdk_sources(), *sorted(model_dir.glob("*.c")), MAIN],
          [*sdk_include_dirs(), model_dir], exe)
    windows = np.stack([fit_window(read_wav(p)[0], WINDOW) for p, _ in test])
    return {"tflite": tflite, "compiled": compiled, "gen": gen, "exe": exe, "work": work,
            "windows": windows, "labels": np.array([d for _, d in test])}


def _python_scores(d, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Python path: features, int8 inputs, dequantised reference scores."""
    c = d["compiled"]
    feats = _features(windows)
    q = _quantize(feats, *c.input_quant)
    out = reference_outputs(d["tflite"], q).reshape(len(windows), -1)
    oscale, ozp = c.output_quant
    return feats, q, (out.astype(np.float32) - ozp) * np.float32(oscale)


def test_generated_metadata(deployed):
    meta = deployed["gen"].metadata_h.read_text()
    for line in ("#define TF_CLASSIFIER_LABEL_COUNT 3", "#define TF_CLASSIFIER_WINDOW_SAMPLES 8000",
                 "#define TF_CLASSIFIER_FEATURE_COUNT 650", "#define TF_DSP_0_NUM_CEPSTRAL 13",
                 "#define TF_DSP_0_BLOCK \"mfcc\"", "#define TF_CLASSIFIER_SLICE_SIZE 2000"):
        assert line in meta
    assert "tf_classifier_labels[TF_CLASSIFIER_LABEL_COUNT] = {\"zero\", \"one\", \"two\"}" in meta
    ram = deployed["gen"].static_ram
    assert ram["window"] == 4 * 8000 and ram["features"] == 4 * 650
    assert ram["nn_arena"] == deployed["compiled"].plan.arena_bytes
    print(f"\nstatic RAM of the FSDD MFCC classifier: {ram} = {sum(ram.values())} B")


def test_run_classifier_matches_python(deployed):
    windows = deployed["windows"]
    rec = deployed["work"] / "windows.bin"
    rec.write_bytes(np.ascontiguousarray(windows[..., 0], "<f4").tobytes())
    text = subprocess.run([str(deployed["exe"]), str(rec), str(len(windows))], check=True,
                          capture_output=True, text=True).stdout
    c_feats, c_scores = np.stack(_parse(text, "X")), np.stack(_parse(text, "S"))
    assert c_scores.shape == (len(windows), 3)
    assert "BADLEN -1" in text  # wrong signal length is rejected

    py_feats, py_q, py_scores = _python_scores(deployed, windows)
    np.testing.assert_allclose(c_feats, py_feats, atol=1e-4, rtol=1e-4)
    c_q = _quantize(c_feats, *deployed["compiled"].input_quant)
    same_q = np.all(c_q == py_q, axis=1)
    # wherever the C features quantise to the same int8 input, the outputs are identical
    np.testing.assert_array_equal(c_scores[same_q], py_scores[same_q])
    # quantisation flips can only come from features within float noise of a rounding boundary
    diff = c_q != py_q
    assert np.all(np.abs(c_q.astype(int) - py_q.astype(int))[diff] == 1)
    scale = deployed["compiled"].input_quant[0]
    frac = np.abs(py_feats / scale - np.floor(py_feats / scale) - 0.5)
    assert np.all(frac[diff] < 1e-2), frac[diff]
    print(f"\n{int((~same_q).sum())}/{len(windows)} windows had an int8 input differing "
          f"({int(diff.sum())} of {diff.size} values); scores differ in "
          f"{int(np.any(c_scores != py_scores, axis=1).sum())} windows")
    # the model is useful: it recognises the held-out digits
    assert np.mean(np.argmax(c_scores, 1) == deployed["labels"]) > 0.6


def test_continuous_mode_matches_python(deployed):
    # a longer recording: five digits back to back (about 2-3 s), then half a second of quiet
    files = fsdd_files(DIGITS, range(0, 2))[:5]
    audio = np.concatenate([read_wav(p)[0] for p, _ in files] + [np.zeros(4000, np.float32)])
    slice_len = WINDOW // SLICES
    n_slices = len(audio) // slice_len
    audio = audio[: n_slices * slice_len]
    rec = deployed["work"] / "stream.bin"
    rec.write_bytes(np.ascontiguousarray(audio, "<f4").tobytes())
    text = subprocess.run([str(deployed["exe"]), str(rec), str(n_slices), "c"], check=True,
                          capture_output=True, text=True).stdout
    c_avg = np.stack(_parse(text, "S"))
    ready = [int(v) for v in re.findall(r"^S [0-9a-f]+ (\d)$", text, re.M)]
    assert len(c_avg) == n_slices and ready == [int(k + 1 >= SLICES) for k in range(n_slices)]

    # Python: the window ending at each slice (zeros before the stream), moving average
    padded = np.concatenate([np.zeros(WINDOW - slice_len, np.float32), audio])
    windows = np.stack([padded[k * slice_len: k * slice_len + WINDOW, None]
                        for k in range(n_slices)])
    _, _, scores = _python_scores(deployed, windows)
    c_q_same = 0
    for k in range(n_slices):
        hist = scores[max(0, k - SLICES + 1): k + 1]
        acc = np.float32(0)
        for row in hist:  # same summation order as the C moving average
            acc = acc + row
        expect = acc / np.float32(len(hist))
        if np.array_equal(c_avg[k], expect):
            c_q_same += 1
        else:  # only a feature at a quantisation boundary may change a window's scores
            np.testing.assert_allclose(c_avg[k], expect, atol=2.0 / 256)
    assert c_q_same >= n_slices - 2


def test_generate_rejects_mismatched_model(deployed, tmp_path):
    with pytest.raises(InvalidArgument, match="labels"):
        generate_impulse(_impulse(), ["a", "b"], deployed["compiled"], tmp_path)
    with pytest.raises(InvalidArgument, match="slices_per_window"):
        generate_impulse(_impulse(), LABELS, deployed["compiled"], tmp_path,
                         slices_per_window=3)


@pytest.mark.toolchain
@pytest.mark.parametrize("target", ["cortex-m4f", "rv32imc", "wasm"])
def test_classifier_compiles_clean_for_targets(deployed, target, tmp_path):
    """SDK + generated impulse + compiled model: -std=c99 -Wall -Wextra -Werror per target."""
    import subprocess as sp

    from tinyforge.compiler import toolchains
    from tinyforge.errors import FailedPrecondition

    try:
        tool = toolchains.tool_for(target)
    except FailedPrecondition as e:
        pytest.skip(str(e))
    arch = {"cortex-m4f": toolchains.M4F,
            "rv32imc": ["-march=rv32imc_zicsr", "-mabi=ilp32", "--specs=picolibc.specs"],
            "wasm": ["--target=wasm32-wasi"]}[target]
    model_dir = deployed["work"] / "model"
    inc = [f"-I{d}" for d in [*sdk_include_dirs(), model_dir]]
    for src in [*sdk_sources(), *sorted(model_dir.glob("*.c"))]:
        proc = sp.run([tool.cc, *arch, *toolchains.CFLAGS, *inc, "-c", str(src), "-o",
                       str(tmp_path / (src.stem + ".o"))], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
