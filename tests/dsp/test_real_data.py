"""Real data: FSDD audio, STM32 HAR accelerometer CSVs, MLPerf Tiny KWS reference model.

Each test checks that the features carry the information they should: a plain linear model on
them separates the classes of held-out recordings far above chance, and the MLPerf reference
network reaches its published accuracy on our MLPerf KWS MFCC.
"""

import numpy as np
import pytest

from tinyforge.data.windowing import window_sample
from tinyforge.dsp import registry
from tinyforge.impulse import TimeSeriesInput

from .conftest import dataset_dir, read_har_csv, read_wav


def _classifier_accuracy(x_train, y_train, x_test, y_test) -> float:
    from sklearn.linear_model import RidgeClassifier
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_train)
    model = RidgeClassifier(alpha=10.0).fit(scaler.transform(x_train), y_train)
    return float(model.score(scaler.transform(x_test), y_test))


@pytest.fixture(scope="module")
def fsdd_windows(fsdd_dir):
    inp = TimeSeriesInput(window_size_ms=1000, window_stride_ms=1000, frequency_hz=8000,
                          axes=["audio"], zero_pad=True)  # fmt: skip
    data, labels, is_test = [], [], []
    for path in sorted(fsdd_dir.glob("*.wav")):
        digit, _speaker, index = path.stem.split("_")
        x, fs = read_wav(path)
        assert fs == 8000
        w = window_sample(x[:, None], 1000 / fs, inp, label=digit)
        data.append(w.data[:1])  # the first second holds the digit
        labels.append(int(digit))
        is_test.append(int(index) < 5)  # FSDD's official split
    if len(data) < 100:
        pytest.skip(f"FSDD has only {len(data)} recordings at {fsdd_dir}")
    return np.concatenate(data), np.array(labels), np.array(is_test)


@pytest.mark.parametrize("block, params, pool, min_acc", [
    ("mfcc", {}, False, 0.80),  # normalised per coefficient: pooling would erase it
    ("mfe", {}, True, 0.80),
    ("spectrogram", {"frame_length": 0.032, "frame_stride": 0.032}, True, 0.70),
])  # fmt: skip
def test_fsdd_features_separate_the_digits(fsdd_windows, block, params, pool, min_acc):
    x, y, test = fsdd_windows
    feats = registry.get_block(block).features_batch(x, 8000, params)
    assert feats.dtype == np.float32 and np.all(np.isfinite(feats))
    if pool:  # mean and stdev over time of each bin keep the linear model small and fast
        flat = np.concatenate([feats.mean(axis=1), feats.std(axis=1)], axis=1)
    else:
        flat = feats.reshape(len(feats), -1)
    acc = _classifier_accuracy(flat[~test], y[~test], flat[test], y[test])
    print(f"{block}: held-out accuracy {acc:.3f}")
    assert acc >= min_acc, f"{block}: held-out accuracy {acc:.3f} (chance 0.1)"


def test_har_spectral_features_separate_activities(har_dir):
    inp = TimeSeriesInput(window_size_ms=2000, window_stride_ms=1000, frequency_hz=26,
                          axes=["x", "y", "z"])  # fmt: skip
    classes = ["running", "stationary", "walking"]
    files = {c: sorted((har_dir / c).glob("*.csv")) for c in classes}
    if not all(files.values()):
        pytest.skip(f"HAR CSVs missing under {har_dir}")
    block = registry.get_block("spectral_analysis")
    params = {"filter_type": "low", "filter_cutoff": 8, "fft_length": 32, "scale_axes": 0.001}
    xs, ys, test = [], [], []
    for ci, c in enumerate(classes):
        for i, path in enumerate(files[c]):
            w = window_sample(read_har_csv(path), 1000 / 26, inp, label=c)
            f = block.features_batch(w.data, 26, params)
            xs.append(f)
            ys += [ci] * len(f)
            test += [i % 4 == 0] * len(f)  # every 4th recording of each class is held out
    x, y, test = np.concatenate(xs), np.array(ys), np.array(test)
    assert np.all(np.isfinite(x))
    acc = _classifier_accuracy(x[~test], y[~test], x[test], y[test])
    assert acc >= 0.9, f"held-out accuracy {acc:.3f} (chance 0.33)"
    wav = block.features_batch(w.data, 26, {"analysis_type": "Wavelet", "wavelet_level": 0})
    assert wav.shape == (len(w.data), 3 * 14) and np.all(np.isfinite(wav))


def test_mlperf_kws_reference_model_accuracy_on_our_mfcc():
    """The MLPerf Tiny KWS int8 model reaches its published ~91 % on speech commands."""
    interp_mod = pytest.importorskip("ai_edge_litert.interpreter")
    root = dataset_dir("speech_commands_v2_test12")
    model = dataset_dir("mlperf_tiny_models") / "keyword_spotting" / "kws_ref_model.tflite"
    classes = ["down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes",
               "_silence_", "_unknown_"]  # fmt: skip
    inp = TimeSeriesInput(1000, 1000, 16000, ["audio"])
    windows, labels = [], []
    for ci, c in enumerate(classes):
        for path in sorted((root / c).glob("*.wav")):
            x, fs = read_wav(path)
            windows.append(window_sample(x[:, None], 1000 / fs, inp).data[:1])
            labels.append(ci)
    feats = registry.get_block("mfcc_mlperf_kws").features_batch(np.concatenate(windows), 16000)
    assert feats.shape[1:] == (49, 10)
    it = interp_mod.Interpreter(model_path=str(model))
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    scale, zero = i["quantization"]
    correct = 0
    for f, label in zip(feats, labels, strict=True):
        q = np.clip(np.round(f / scale + zero), -128, 127).astype(np.int8)
        it.set_tensor(i["index"], q[None, :, :, None])
        it.invoke()
        correct += int(np.argmax(it.get_tensor(o["index"])[0]) == label)
    acc = correct / len(labels)
    assert acc >= 0.88, f"kws01 accuracy {acc:.3f} on {len(labels)} clips"
