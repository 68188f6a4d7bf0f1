"""TrainService end to end on a synthetic dataset uploaded through the API (always runs):
ingest -> impulse -> features -> StartTraining (per-epoch metrics in WatchJob) -> model record
-> TestModel (metrics, plots) -> Classify (file bytes and stored sample)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

import tinyforge
from tests.dsp_service.conftest import AXES, FS, envelope
from tests.train_service.conftest import (
    SUCCEEDED,
    generate,
    run_job,
    synthetic_dataset,
    synthetic_impulse,
    train,
)
from tinyforge.quantize.runner import TFLiteModel

# The plots of these tests are also written here, for a person to look at.
PLOT_DIR = Path("/tmp/tinyforge-train-plots")
EPOCHS = 12


def test_train_test_classify_synthetic(platform, tenant, client) -> None:
    ds = synthetic_dataset(client, tenant.project_id, train_per_class=5, test_per_class=2)
    imp = client.create_impulse("motion", synthetic_impulse())
    job, _, _ = generate(client, imp.impulse_id)
    assert job.status == SUCCEEDED, job.error

    job, result, lines = train(client, imp.impulse_id, epochs=EPOCHS, seed=3,
                               learning_rate=0.01, batch_size=16)
    assert job.status == SUCCEEDED, job.error
    # every epoch's metrics arrive in the job log stream, in order
    epoch_lines = [ln for ln in lines if ln.startswith("epoch ")]
    assert [ln.split(":")[0] for ln in epoch_lines] == \
        [f"epoch {i}/{EPOCHS}" for i in range(1, EPOCHS + 1)]
    assert all("val_accuracy=" in ln and "loss=" in ln for ln in epoch_lines)
    assert any(ln.startswith("validation accuracy: float") for ln in lines)

    model = client.get_model(int(result["model_id"]))
    assert model.impulse_id == imp.impulse_id and model.impulse_version == 1
    assert model.task == "classification" and model.block_type == "classifier"
    assert list(model.labels) == ["fast", "slow"]
    assert list(model.input_blocks) == ["spectral", "stats"]
    assert model.code_version.startswith(tinyforge.__version__)
    assert len(model.dataset_hash) == 64
    assert json.loads(model.options_json)["epochs"] == EPOCHS
    # both forms were evaluated on the validation samples
    assert model.HasField("float_accuracy") and model.HasField("int8_accuracy")
    assert model.float_accuracy >= 0.9 and model.int8_accuracy >= 0.85
    metrics = json.loads(model.metrics_json)
    n_train = sum(1 for _lab, _v, cat in ds.samples.values() if cat == "training")
    per_sample = (200 - 50) // 25 + 1
    assert metrics["train_windows"] + metrics["validation_windows"] == n_train * per_sample
    assert metrics["validation_windows"] % per_sample == 0  # whole samples held out
    names = {f.name for f in model.files}
    assert {"model_int8.tflite", "model_float32.tflite", "learn/model.keras",
            "learn/metadata.json", "training_curves.png", "metadata.json"} <= names
    assert client.list_models()[0].id == model.id

    # the stored int8 model: int8 in/out, batch 1, no dynamic-shape ops
    tfl = TFLiteModel(client.download_model_file(model.id, "model_int8.tflite"))
    assert tfl.is_quantized and tfl.input_shape[0] == 1
    assert not tfl.op_names() & {"SHAPE", "PACK", "STRIDED_SLICE"}
    meta = json.loads(client.download_model_file(model.id, "metadata.json"))
    assert meta["impulse"]["processing"][0]["block"] == "spectral_analysis"
    assert meta["quantization"]["input_shape"] == [1, tfl.input_size]
    _png(client.download_model_file(model.id, "training_curves.png"), "synthetic_curves.png")

    # the same data trained again gives the same dataset hash; new training data changes it
    job2, result2, _ = train(client, imp.impulse_id, epochs=2, seed=4)
    assert client.get_model(int(result2["model_id"])).dataset_hash == model.dataset_hash

    # model testing over the testing category
    resp = client.test_model(model.id, threshold=0.5)
    tjob, tlines, _ = run_job(client, resp.job_id)
    assert tjob.status == SUCCEEDED, tjob.error
    tr = client.get_test_result(model.id, include_results=True)
    test_ids = sorted(i for i, (_l, _v, c) in ds.samples.items() if c == "testing")
    assert tr.windows == len(test_ids) * per_sample and tr.threshold == 0.5
    forms = {f.form: f for f in tr.forms}
    assert set(forms) == {"float", "int8"}
    for f in forms.values():
        counts = np.array(f.confusion.counts).reshape(len(f.confusion.labels), -1)
        assert list(f.confusion.columns) == ["fast", "slow", "uncertain"]
        assert counts.sum() == tr.windows
        # accuracy = diagonal / all, recomputed here from the matrix
        assert abs(f.accuracy - np.trace(counts[:, :2]) / counts.sum()) < 1e-9
        assert {c.label for c in f.per_class} == {"fast", "slow"}
        assert f.accuracy >= 0.85
    assert abs(tr.accuracy_difference - (forms["int8"].accuracy - forms["float"].accuracy)
               * 100) < 1e-6
    assert sorted(s.sample_id for s in tr.samples) == test_ids
    for s in tr.samples:
        assert s.label == ds.samples[s.sample_id][0] and s.windows == per_sample
    assert set(tr.plots) == {"confusion_matrix_float.png", "confusion_matrix_int8.png"}
    for plot in tr.plots:
        png = client.download_model_file(model.id, f"tests/{tr.test_id}/{plot}")
        img = _png(png, f"synthetic_{plot}")
        assert img.size[0] >= 300 and img.size[1] >= 300

    # live classification of a file's bytes (EI JSON), int8 and float
    sid = test_ids[0]
    label, values, _ = ds.samples[sid]
    data = envelope(values, AXES, 1000.0 / FS)
    c8 = client.classify(model.id, data, filename="x.json")
    cf = client.classify(model.id, data, filename="x.json", use_float=True)
    assert c8.form == "int8" and cf.form == "float"
    assert c8.label == label and cf.label == label
    assert len(c8.windows) == per_sample and list(c8.labels) == ["fast", "slow"]
    assert c8.dsp_ms > 0 and c8.inference_ms > 0 and c8.feature_count == tfl.input_size
    np.testing.assert_allclose(np.mean([w.scores for w in c8.windows], axis=0), c8.scores,
                               atol=1e-6)
    # a stored sample gives the same windows; its int8 scores equal the test run's per-window
    # scores (features generated in the job vs computed live here)
    cs = client.classify(model.id, sample_id=sid)
    windows = json.loads(tr.results_json)["windows"]
    mine = {w["sample_id"]: w for w in windows if w["sample_id"].startswith(f"{sid}:")}
    for i, w in enumerate(cs.windows):
        np.testing.assert_allclose(w.scores, mine[f"{sid}:{i}"]["int8"]["scores"], atol=1e-6)
    # a CSV of the same values (no timestamps: the rate is given) classifies the same way
    csv = "\n".join([",".join(AXES)] + [",".join(f"{v:.4f}" for v in row) for row in values])
    cc = client.classify(model.id, csv.encode(), filename="x.csv", frequency_hz=FS)
    np.testing.assert_allclose(cc.scores, c8.scores, atol=0.02)

    # new training data changes the dataset hash
    ds.add("fast", 200, 77)
    generate(client, imp.impulse_id)
    job3, result3, _ = train(client, imp.impulse_id, epochs=1)
    assert job3.status == SUCCEEDED, job3.error
    assert client.get_model(int(result3["model_id"])).dataset_hash != model.dataset_hash
    assert [m.id for m in client.list_models(imp.impulse_id)][:3] == [
        int(result3["model_id"]), int(result2["model_id"]), model.id]


def _png(data: bytes, name: str) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    img.load()
    PLOT_DIR.mkdir(parents=True, exist_ok=True)
    (PLOT_DIR / name).write_bytes(data)
    return img


def test_anomaly_kmeans_model(platform, tenant, client) -> None:
    """K-means on the normal classes; windows of the anomaly category score high."""
    synthetic_dataset(client, tenant.project_id, train_per_class=3, test_per_class=1)
    t = np.arange(200) / FS
    rng = np.random.default_rng(5)
    odd = []
    for i in range(2):  # a 20 Hz vibration never seen in training
        v = np.stack([3.0 * np.sin(2 * np.pi * 20.0 * t + i)] +
                     [rng.normal(0, 0.3, 200) for _ in range(2)], axis=1).round(4)
        odd.append(client.upload_sample(envelope(v, AXES, 1000.0 / FS), f"odd{i}.json",
                                        label="odd", category="anomaly").id)
    imp = client.create_impulse("anomaly", synthetic_impulse(learning=[
        {"name": "anom", "type": "anomaly_kmeans", "inputs": ["spectral"],
         "params": {"clusters": 4}}]))
    generate(client, imp.impulse_id)
    job, result, lines = train(client, imp.impulse_id)
    assert job.status == SUCCEEDED, job.error
    model = client.get_model(int(result["model_id"]))
    assert model.task == "anomaly" and not model.HasField("float_accuracy")
    names = {f.name for f in model.files}
    assert "learn/model.pkl" in names and "learn/export.json" in names
    assert "model_int8.tflite" not in names  # K-means has no network form
    assert "threshold" in json.loads(model.metrics_json)["extra"]

    tjob, _, _ = run_job(client, client.test_model(model.id).job_id)
    assert tjob.status == SUCCEEDED, tjob.error
    tr = client.get_test_result(model.id)
    (form,) = tr.forms
    assert form.form == "float" and form.roc_auc >= 0.9
    assert tr.plots == ["anomaly_scores.png"]
    _png(client.download_model_file(model.id, f"tests/{tr.test_id}/anomaly_scores.png"),
         "synthetic_anomaly_scores.png")
    scores = {s.sample_id: s.anomaly_score for s in tr.samples}
    normal = [v for k, v in scores.items() if k not in odd]
    assert min(scores[i] for i in odd) > max(normal)
    # live: the stored anomalous sample is flagged, with the score the test run saw
    res = client.classify(model.id, sample_id=odd[0])
    assert res.task == "anomaly" and res.form == "float" and res.anomalous
    assert abs(res.anomaly_score - scores[odd[0]]) < 1e-4
