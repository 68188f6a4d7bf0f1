"""End to end on real data through the gRPC API: the STM32 HAR accelerometer set (26 Hz, 3 axes)
and a subset of the Free Spoken Digit Dataset (8 kHz audio). Skipped with a message when
../shared/datasets is absent (the synthetic end-to-end tests always run)."""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path

import numpy as np
from PIL import Image

from tests.dsp_service.conftest import SUCCEEDED, dataset, generate
from tinyforge.data.importers import import_fsdd, import_har_stm32
from tinyforge.features import load_features
from tinyforge.v1 import ingest_service_pb2 as ipb

# Where the explorer plots of these tests are also written, for a person to look at.
PLOT_DIR = Path("/tmp/tinyforge-dsp-plots")


def _save(name: str, png: bytes) -> None:
    PLOT_DIR.mkdir(parents=True, exist_ok=True)
    (PLOT_DIR / name).write_bytes(png)


def _cv_accuracy(X: np.ndarray, y: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(np.mean(cross_val_score(model, X.reshape(len(X), -1), y, cv=3)))


def test_har_stm32_end_to_end(platform, tenant, client) -> None:
    items = list(import_har_stm32(dataset("har_stm32_accel")))
    assert len(items) == 92
    held_back = items.pop(5)
    uploaded = {}
    for it in items:
        s = client.upload_file(it.path, label=it.label, frequency_hz=it.frequency_hz,
                               category="split")
        uploaded[s.id] = it
    # headerless CSV columns are named axis0..2 by the ingest parser
    axes = [a.name for a in client.get_sample(next(iter(uploaded))).axes]
    assert axes == ["axis0", "axis1", "axis2"]
    definition = {
        "input": {"type": "time-series", "window_size_ms": 2000, "window_stride_ms": 1000,
                  "frequency_hz": 26, "axes": axes},
        "processing": [
            {"name": "spectral", "block": "spectral_analysis",
             "params": {"fft_length": 32, "filter_type": "low", "filter_cutoff": 8}},
            {"name": "stats", "block": "flatten"}],
    }
    imp = client.create_impulse("har", definition)
    job, result, _ = generate(client, imp.impulse_id)
    assert job.status == SUCCEEDED, job.error
    fm = load_features(platform.ctx.objects, tenant.project_id, imp.impulse_id, 1, "spectral")
    # 1000 rows at 26 Hz; windows of 52 samples every 26 -> (1000 - 52) // 26 + 1 per file
    rows = {sid: len(it.path.read_text().strip().splitlines()) for sid, it in uploaded.items()}
    per_file = {sid: (n - 52) // 26 + 1 for sid, n in rows.items()}
    assert len(fm.X) == sum(per_file.values())
    assert fm.classes == ["running", "stationary", "walking"]
    for sid in uploaded:
        mine = fm.sample_ids == sid
        assert mine.sum() == per_file[sid]
        assert {fm.labels[i] for i in np.nonzero(mine)[0]} == {uploaded[sid].label}
    assert set(fm.category.tolist()) == {0, 1}  # the split put files in training and testing
    # the features carry the activity: a linear model separates the 3 classes
    assert _cv_accuracy(fm.X, fm.y) > 0.9

    ex = client.feature_explorer(imp.impulse_id, block="spectral", png=True)
    assert len(ex.points) == min(2000, len(fm.X))
    assert {p.label for p in ex.points} == set(fm.classes)
    assert Image.open(io.BytesIO(ex.png)).format == "PNG"
    _save("har_spectral_pca.png", ex.png)

    # autotune gives parameters the impulse accepts
    tuned = client.autotune_block(imp.impulse_id, "spectral", max_windows=150)
    best = json.loads(tuned.best.params_json)
    assert tuned.best.score >= tuned.current.score and tuned.best.score > 0.8
    definition["processing"][0]["params"] = best
    up = client.update_impulse(imp.impulse_id, definition)
    if up.created:  # best differs from the current params: only that block is recomputed
        _, r2, _ = generate(client, imp.impulse_id)
        assert r2["blocks"]["spectral"]["processed_samples"] == len(items)
        assert r2["blocks"]["stats"]["processed_samples"] == 0
    # a re-run processes nothing; one new file is the only one processed
    _, r3, _ = generate(client, imp.impulse_id)
    assert [b["processed_samples"] for b in r3["blocks"].values()] == [0, 0]
    client.upload_file(held_back.path, label=held_back.label,
                       frequency_hz=held_back.frequency_hz)
    _, r4, _ = generate(client, imp.impulse_id)
    assert [b["processed_samples"] for b in r4["blocks"].values()] == [1, 1]
    assert [b["reused_samples"] for b in r4["blocks"].values()] == [91, 91]


def test_fsdd_audio_end_to_end(platform, tenant, client) -> None:
    root = dataset("fsdd") / "recordings"
    items = [it for it in import_fsdd(root)
             if it.label in ("0", "1", "7") and it.metadata["speaker"] in ("george", "jackson")
             and int(it.path.stem.split("_")[2]) < 12]
    assert len(items) == 3 * 2 * 12
    lengths = {}
    for it in items:
        s = client.upload_file(it.path, label=it.label, category=str(it.category))
        with wave.open(str(it.path)) as w:
            lengths[s.id] = w.getnframes()
    imp = client.create_impulse("digits", {
        "input": {"type": "time-series", "window_size_ms": 1000, "window_stride_ms": 500,
                  "frequency_hz": 8000, "axes": ["audio"], "zero_pad": True},
        "processing": [{"name": "mfcc", "block": "mfcc"},
                       {"name": "mfe", "block": "mfe", "params": {"num_filters": 32}}],
    })
    job, result, _ = generate(client, imp.impulse_id)
    assert job.status == SUCCEEDED, job.error
    mf = load_features(platform.ctx.objects, tenant.project_id, imp.impulse_id, 1, "mfcc")
    me = load_features(platform.ctx.objects, tenant.project_id, imp.impulse_id, 1, "mfe")
    # MFCC: 20 ms frames every 20 ms = 160 samples -> 50 frames; MFE: 20/10 ms -> 99 frames
    assert mf.X.shape[1:] == (50, 13) and me.X.shape[1:] == (99, 32)
    # short clips give one zero-padded window, longer ones one per 4000 samples that fit
    expected = {sid: max(1, (n - 8000) // 4000 + 1) if n >= 8000 else 1
                for sid, n in lengths.items()}
    assert len(mf.X) == len(me.X) == sum(expected.values())
    assert all((mf.sample_ids == sid).sum() == n for sid, n in expected.items())
    assert mf.classes == ["0", "1", "7"]
    assert mf.split("testing").sum() == sum(expected[s.id] for s in client.list_samples()
                                            if s.category == ipb.SAMPLE_CATEGORY_TESTING)
    assert np.isfinite(mf.X).all() and (me.X >= 0).all() and (me.X <= 1).all()
    assert _cv_accuracy(mf.X, mf.y) > 0.8

    for method in ("pca", "tsne"):
        ex = client.feature_explorer(imp.impulse_id, block="mfcc", method=method, png=True)
        assert len(ex.points) == len(mf.X)
        img = Image.open(io.BytesIO(ex.png))
        assert img.format == "PNG"
        _save(f"fsdd_mfcc_{method}.png", ex.png)
    tuned = client.autotune_block(imp.impulse_id, "mfe", max_windows=60)
    best = json.loads(tuned.best.params_json)
    assert {"frame_length", "frame_stride", "num_filters", "fft_length"} <= best.keys()
    assert client.update_impulse(imp.impulse_id, {
        "input": {"type": "time-series", "window_size_ms": 1000, "window_stride_ms": 500,
                  "frequency_hz": 8000, "axes": ["audio"], "zero_pad": True},
        "processing": [{"name": "mfcc", "block": "mfcc"},
                       {"name": "mfe", "block": "mfe", "params": best}]}).impulse.version >= 1
