"""Real inputs for the MLPerf Tiny models, from the files shipped with them and the shared
datasets, quantized with each model's input scale and zero point."""

from __future__ import annotations

import numpy as np

from tests.compiler.conftest import MLPERF, SHARED


def _quantize(x: np.ndarray, scale: float, zp: int) -> np.ndarray:
    return np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)


def ad_windows(scale: float, zp: int, limit: int = 196) -> np.ndarray | None:
    """AD: 5-frame windows (stride 1 frame) over the shipped log-mel .bin, as the runner does."""
    f = MLPERF / "anomaly_detection" / "normal_id_01_00000000_hist_librosa.bin"
    if not f.is_file():
        return None
    frames = np.fromfile(f, dtype="<f4").reshape(200, 128)
    wins = np.stack([frames[i:i + 5].ravel() for i in range(196)])[:limit]
    return _quantize(wins, scale, zp)


def sww_specs(scale: float, zp: int) -> np.ndarray | None:
    """SWW: the shipped calibration spectrograms (45, 30, 1, 40)."""
    f = MLPERF / "streaming_wakeword" / "calibration_samples.npz"
    if not f.is_file():
        return None
    specs = np.load(f, allow_pickle=False)["specs"].astype(np.float32)
    return _quantize(specs, scale, zp)


def images(size: int, scale: float, zp: int, limit: int = 20) -> np.ndarray | None:
    """VWW / IC: COCO128 photos resized to size x size RGB, pixels in [0, 255] / 255 for VWW
    (scale 1/255) or raw [0, 255] for IC (scale 1): real = pixel * 255 * scale_ratio."""
    from PIL import Image

    d = SHARED / "coco128_detection"
    files = sorted(d.rglob("*.jpg"))[:limit]
    if not files:
        return None
    out = []
    for f in files:
        img = np.asarray(Image.open(f).convert("RGB").resize((size, size)), dtype=np.float32)
        real = img / 255.0 if scale < 0.5 else img  # VWW takes [0,1], IC takes [0,255]
        out.append(_quantize(real, scale, zp))
    return np.stack(out)


def kws_mfcc(scale: float, zp: int, limit: int = 12) -> np.ndarray | None:
    """KWS: 49 x 10 MFCCs (40 ms frames, 20 ms hop, 40 mel bands 20-4000 Hz) of Speech
    Commands test clips, one per class."""
    import wave

    import tensorflow as tf

    d = SHARED / "speech_commands_v2_test12"
    files = sorted(d.rglob("*.wav"))
    if not files:
        return None
    picked, seen = [], set()
    for f in files:
        if f.parent.name not in seen:
            seen.add(f.parent.name)
            picked.append(f)
    feats = []
    for f in picked[:limit]:
        with wave.open(str(f)) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)
        pcm = np.pad(pcm / 32768.0, (0, max(0, 16000 - pcm.size)))[:16000]
        stft = tf.signal.stft(pcm, frame_length=640, frame_step=320, fft_length=1024)
        mel_w = tf.signal.linear_to_mel_weight_matrix(40, 513, 16000, 20.0, 4000.0)
        mel = tf.math.log(tf.tensordot(tf.abs(stft), mel_w, 1) + 1e-6)
        mfcc = tf.signal.mfccs_from_log_mel_spectrograms(mel)[:, :10].numpy()
        feats.append(mfcc[:49].reshape(49, 10, 1))
    return _quantize(np.stack(feats), scale, zp)
