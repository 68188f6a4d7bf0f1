"""Real data through the API: STM32 HAR (default suite, held out by file) and FSDD MFCC + conv
(slow). Each skips with a message when ../shared/datasets is absent."""

from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.train_service.conftest import SUCCEEDED, dataset, generate, run_job, train
from tinyforge.data.importers import import_fsdd, import_har_stm32

PLOT_DIR = Path("/tmp/tinyforge-train-plots")


def _held_out_by_file(names: list[tuple[str, str]], fraction: float = 0.25) -> set[str]:
    """Per label, the ``fraction`` of file names with the lowest sha256 (stable, independent
    of the code under test) form the testing set."""
    out: set[str] = set()
    for label in sorted({lab for _n, lab in names}):
        files = sorted((n for n, lab in names if lab == label),
                       key=lambda n: hashlib.sha256(n.encode()).hexdigest())
        out |= set(files[:max(1, round(fraction * len(files)))])
    return out


def _save(name: str, png: bytes) -> None:
    assert Image.open(io.BytesIO(png)).format == "PNG"
    PLOT_DIR.mkdir(parents=True, exist_ok=True)
    (PLOT_DIR / name).write_bytes(png)


def test_har_spectral_dense_held_out_by_file(platform, tenant, client) -> None:
    t0 = time.perf_counter()
    items = list(import_har_stm32(dataset("har_stm32_accel")))
    test_files = _held_out_by_file([(it.path.name, it.label) for it in items])
    by_id = {}
    for it in items:
        cat = "testing" if it.path.name in test_files else "training"
        s = client.upload_file(it.path, label=it.label, frequency_hz=it.frequency_hz,
                               category=cat)
        by_id[s.id] = it
    axes = [a.name for a in client.get_sample(next(iter(by_id))).axes]
    imp = client.create_impulse("har", {
        "input": {"type": "time-series", "window_size_ms": 2000, "window_stride_ms": 1000,
                  "frequency_hz": 26, "axes": axes},
        # milli-g -> g: one int8 input scale then keeps the RMS and spectra at full resolution
        "processing": [{"name": "spectral", "block": "spectral_analysis",
                        "params": {"scale_axes": 0.001}}],
        "learning": [{"name": "nn", "type": "classifier", "inputs": ["spectral"]}],
    })
    job, _, _ = generate(client, imp.impulse_id)
    assert job.status == SUCCEEDED, job.error
    job, result, lines = train(client, imp.impulse_id, epochs=20, learning_rate=0.01, seed=0)
    assert job.status == SUCCEEDED, job.error
    assert sum(ln.startswith("epoch ") for ln in lines) == 20
    model = client.get_model(int(result["model_id"]))
    assert list(model.labels) == ["running", "stationary", "walking"]

    tjob, _, _ = run_job(client, client.test_model(model.id, threshold=0.0).job_id)
    assert tjob.status == SUCCEEDED, tjob.error
    tr = client.get_test_result(model.id)
    forms = {f.form: f.accuracy for f in tr.forms}
    test_ids = {sid for sid, it in by_id.items() if it.path.name in test_files}
    assert {s.sample_id for s in tr.samples} == test_ids
    print(f"HAR through the API: float {forms['float']:.4f}, int8 {forms['int8']:.4f} "
          f"({tr.accuracy_difference:+.2f} points), int8 model {model.int8_bytes} bytes, "
          f"{time.perf_counter() - t0:.1f} s")
    assert forms["float"] >= 0.95, f"HAR float test accuracy {forms['float']:.3f} < 0.95"
    assert abs(tr.accuracy_difference) <= 3.0, f"int8 {forms['int8']:.3f} vs float"
    for plot in tr.plots:
        _save(f"har_{plot}", client.download_model_file(model.id,
                                                        f"tests/{tr.test_id}/{plot}"))

    # a held-out file classified live from its CSV bytes (rate given: no timestamp column)
    sid = sorted(test_ids)[0]
    it = by_id[sid]
    res = client.classify(model.id, it.path.read_bytes(), filename=it.path.name,
                          frequency_hz=it.frequency_hz)
    assert res.label == it.label and res.form == "int8"
    assert len(res.windows) == (1000 - 52) // 26 + 1


@pytest.mark.slow
def test_fsdd_mfcc_conv_through_the_api(platform, tenant, client) -> None:
    items = list(import_fsdd(dataset("fsdd") / "recordings"))
    for it in items:
        client.upload_file(it.path, label=it.label, category=str(it.category))
    imp = client.create_impulse("digits", {
        "input": {"type": "time-series", "window_size_ms": 1000, "window_stride_ms": 1000,
                  "frequency_hz": 8000, "axes": ["audio"], "zero_pad": True},
        "processing": [{"name": "mfcc", "block": "mfcc"}],
        "learning": [{"name": "conv", "type": "classifier", "inputs": ["mfcc"],
                      "params": {"conv_filters": "16,32", "augmentation": True}}],
    })
    job, _, _ = generate(client, imp.impulse_id)
    assert job.status == SUCCEEDED, job.error
    job, result, _ = train(client, imp.impulse_id, epochs=80, seed=0)
    assert job.status == SUCCEEDED, job.error
    model = client.get_model(int(result["model_id"]))
    tjob, _, _ = run_job(client, client.test_model(model.id, threshold=0.0).job_id)
    assert tjob.status == SUCCEEDED, tjob.error
    tr = client.get_test_result(model.id)
    forms = {f.form: f.accuracy for f in tr.forms}
    print(f"FSDD through the API: float {forms['float']:.4f}, int8 {forms['int8']:.4f}, "
          f"int8 model {model.int8_bytes} bytes")
    assert forms["float"] >= 0.95, f"FSDD float test accuracy {forms['float']:.3f} < 0.95"
    assert abs(tr.accuracy_difference) <= 1.0
    _save("fsdd_confusion_matrix_int8.png",
          client.download_model_file(model.id, f"tests/{tr.test_id}/confusion_matrix_int8.png"))
