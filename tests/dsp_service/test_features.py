"""DspService end to end on a synthetic dataset uploaded through the API (always runs):
GenerateFeatures as a watched job, the published matrices, incremental re-runs, failures that
leave nothing visible, the feature explorer and autotune."""

from __future__ import annotations

import copy
import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.dsp_service.conftest import (
    AXES,
    FAILED,
    FS,
    SUCCEEDED,
    generate,
    make_synthetic,
    run_job,
    ts_impulse,
)
from tinyforge.client import ApiError
from tinyforge.dsp.flatten import flatten
from tinyforge.dsp.spectral_analysis import spectral_analysis
from tinyforge.features import load_features


def _feature_keys(platform, project_id: int, impulse_id: int) -> list[str]:
    return [o.key for o in platform.ctx.objects.list(f"projects/{project_id}/features/"
                                                     f"{impulse_id}/")]


def test_generate_explore_and_incremental(platform, tenant, client) -> None:
    ds = make_synthetic(client, tenant.project_id, per_class=4, n=200)
    imp = client.create_impulse("synthetic", ts_impulse())
    job, result, lines = generate(client, imp.impulse_id)
    assert job.status == SUCCEEDED, job.error
    assert any("to process" in ln for ln in lines)

    # 200 samples at 50 Hz, windows of 50 every 25 -> (200 - 50) // 25 + 1 = 7 per sample
    per_sample = (200 - 50) // 25 + 1
    n_win = per_sample * len(ds.samples)
    fm = load_features(platform.ctx.objects, tenant.project_id, imp.impulse_id, 1, "spectral")
    stats = load_features(platform.ctx.objects, tenant.project_id, imp.impulse_id, 1, "stats")
    assert fm.X.dtype == np.float32 and fm.X.shape[0] == n_win
    assert stats.X.shape == (n_win, 7 * 3)  # 7 statistics per axis
    assert fm.classes == ["fast", "slow"]
    ids = sorted(ds.samples)
    assert fm.sample_ids.tolist() == [i for i in ids for _ in range(per_sample)]
    assert fm.window_index.tolist() == list(range(per_sample)) * len(ids)
    assert fm.labels == [ds.samples[i][0] for i in ids for _ in range(per_sample)]
    cats = [fm.categories[c] for c in fm.category.tolist()]
    assert cats == [ds.samples[i][2] for i in ids for _ in range(per_sample)]
    np.testing.assert_allclose(fm.window_start_ms[:per_sample], np.arange(per_sample) * 500.0)
    # the rows equal the blocks run on the windows cut here by hand from the uploaded values
    for row in (0, per_sample + 3, n_win - 1):
        sid, w = int(fm.sample_ids[row]), int(fm.window_index[row])
        window = ds.samples[sid][1][w * 25: w * 25 + 50].astype(np.float32)
        np.testing.assert_allclose(fm.X[row], spectral_analysis(window[:, :2], FS,
                                                                {"fft_length": 32}),
                                   rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(stats.X[row], flatten(window, FS), rtol=1e-4, atol=1e-4)
    assert result["blocks"]["spectral"]["processed_samples"] == len(ds.samples)
    info = client.get_features(imp.impulse_id)
    assert {b.block: (list(b.shape), b.windows) for b in info.blocks} == {
        "spectral": ([fm.X.shape[1]], n_win), "stats": ([21], n_win)}

    # re-run: nothing to do
    _, again, _ = generate(client, imp.impulse_id)
    assert {k: (v["processed_samples"], v["reused_samples"])
            for k, v in again["blocks"].items()} == {"spectral": (0, 8), "stats": (0, 8)}
    fm2 = load_features(platform.ctx.objects, tenant.project_id, imp.impulse_id, 1, "spectral")
    np.testing.assert_array_equal(fm2.X, fm.X)
    # one generation per block is kept: the old one was removed after publishing
    keys = _feature_keys(platform, tenant.project_id, imp.impulse_id)
    assert len({k.split("/")[6] for k in keys if "/spectral/" in k}) == 2  # gen + manifest

    # change one param of one block -> new version, only that block recomputed
    changed = ts_impulse(fft_length=64)
    up = client.update_impulse(imp.impulse_id, changed)
    assert up.impulse.version == 2
    _, r3, _ = generate(client, imp.impulse_id)
    assert r3["version"] == 2
    assert r3["blocks"]["spectral"]["processed_samples"] == 8
    assert r3["blocks"]["stats"]["processed_samples"] == 0
    fm3 = load_features(platform.ctx.objects, tenant.project_id, imp.impulse_id, 2, "spectral")
    assert fm3.X.shape[1] > fm.X.shape[1]  # more FFT bins
    # version 1's features are still published
    assert load_features(platform.ctx.objects, tenant.project_id, imp.impulse_id, 1,
                         "spectral").X.shape == fm.X.shape

    # add one sample -> only it is processed; relabelling needs no recomputation
    new_id = ds.add("fast", 120, 99)
    client.update_sample(ids[0], label="relabelled")
    _, r4, _ = generate(client, imp.impulse_id)
    assert {k: (v["processed_samples"], v["reused_samples"])
            for k, v in r4["blocks"].items()} == {"spectral": (1, 8), "stats": (1, 8)}
    fm4 = load_features(platform.ctx.objects, tenant.project_id, imp.impulse_id, 2, "spectral")
    assert (fm4.sample_ids == new_id).sum() == (120 - 50) // 25 + 1
    assert set(fm4.labels[:per_sample]) == {"relabelled"}
    assert fm4.classes == ["fast", "relabelled", "slow"]

    # disabled samples are left out
    client.update_sample(new_id, enabled=False)
    _, r5, _ = generate(client, imp.impulse_id)
    assert r5["samples"] == 8 and r5["windows"] == n_win

    # feature explorer: PCA points with labels and sample ids, and a PNG
    resp = client.feature_explorer(imp.impulse_id, block="spectral", png=True)
    assert len(resp.points) == n_win == resp.total_windows
    assert {p.sample_id for p in resp.points} == set(ids)
    assert len(resp.explained_variance) == 2 and sum(resp.explained_variance) <= 1.0 + 1e-6
    by_label: dict[str, list[float]] = {}
    for p in resp.points:
        by_label.setdefault(p.label, []).append(p.x)
    # a 2 Hz and a 9 Hz sine land on opposite sides of the first principal component
    assert np.sign(np.mean(by_label["fast"])) != np.sign(np.mean(by_label["slow"]))
    img = Image.open(io.BytesIO(resp.png))
    assert img.format == "PNG" and img.size == (900, 700)
    tsne = client.feature_explorer(imp.impulse_id, block="stats", method="tsne",
                                   max_points=40)
    assert len(tsne.points) == 40 and not tsne.png
    assert all(np.isfinite([p.x, p.y]).all() for p in tsne.points)

    # autotune: valid params that the impulse accepts, scored at least as well as the current
    tuned = client.autotune_block(imp.impulse_id, "spectral", max_windows=60)
    best = json.loads(tuned.best.params_json)
    assert 0.0 <= tuned.best.score <= 1.0 and tuned.best.score >= tuned.current.score
    assert len(tuned.candidates) >= 5 and tuned.windows >= 20
    changed = copy.deepcopy(ts_impulse())
    changed["processing"][0]["params"] = best
    assert client.update_impulse(imp.impulse_id, changed).impulse.version == 3
    with pytest.raises(ApiError) as e:
        client.autotune_block(imp.impulse_id, "stats")
    assert e.value.code == "INVALID_ARGUMENT" and "flatten" in e.value.message


def test_job_fails_cleanly_and_publishes_nothing(platform, tenant, client) -> None:
    ds = make_synthetic(client, tenant.project_id, per_class=2, n=100)
    # a later sample lacks axis 'az': the job fails on it after processing others
    bad_id = ds.add("slow", 100, 50, axes=["ax", "ay", "gz"])
    imp = client.create_impulse("axes", ts_impulse())
    job, _, lines = generate(client, imp.impulse_id)
    assert job.status == FAILED
    assert f"sample {bad_id}" in job.error and "'az'" in job.error and "gz" in job.error
    assert _feature_keys(platform, tenant.project_id, imp.impulse_id) == []
    assert list(client.get_features(imp.impulse_id).blocks) == []
    with pytest.raises(ApiError) as e:
        client.feature_explorer(imp.impulse_id)
    assert e.value.code == "FAILED_PRECONDITION" and "GenerateFeatures" in e.value.message
    # fix the data: the next run succeeds
    client.update_sample(bad_id, enabled=False)
    job, result, _ = generate(client, imp.impulse_id)
    assert job.status == SUCCEEDED and result["samples"] == 4

    # window longer than every sample: the reason is in WatchJob
    no_pad = ts_impulse(window_ms=5000, stride_ms=5000)
    no_pad["input"]["zero_pad"] = False
    long = client.create_impulse("long", no_pad)
    resp = client.generate_features(long.impulse_id)
    final, _, _ = run_job(client, resp.job_id)
    assert final.status == FAILED
    assert "longer than every sample" in final.error and "5000 ms" in final.error
    assert _feature_keys(platform, tenant.project_id, long.impulse_id) == []
    # with zero padding the same window gives one padded window per sample
    padded = client.create_impulse("padded", ts_impulse(window_ms=5000, stride_ms=5000))
    job, result, _ = generate(client, padded.impulse_id)
    assert job.status == SUCCEEDED and result["windows"] == result["samples"] == 4
    fm = load_features(platform.ctx.objects, tenant.project_id, padded.impulse_id, 1, "stats")
    first = next(iter(sorted(ds.samples)))
    # flatten's mean of ax over the padded window: the 100 values' sum / 250
    np.testing.assert_allclose(fm.X[0][0], ds.samples[first][1][:, 0].sum() / 250, atol=1e-3)


def test_project_without_data_and_wrong_kind(tenant, client) -> None:
    imp = client.create_impulse("empty", ts_impulse())
    job, _, _ = generate(client, imp.impulse_id)
    assert job.status == FAILED and "no enabled samples" in job.error
    # images against a time-series impulse
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="PNG")
    s = client.upload_sample(buf.getvalue(), "red.png", label="red")
    job, _, _ = generate(client, imp.impulse_id)
    assert job.status == FAILED and f"sample {s.id}" in job.error and "image" in job.error
    with pytest.raises(ApiError) as e:
        client.generate_features(imp.impulse_id, 5)
    assert e.value.code == "NOT_FOUND"


def test_image_impulse(platform, tenant, client) -> None:
    for i, color in enumerate([(250, 0, 0), (0, 0, 250)] * 3):
        buf = io.BytesIO()
        Image.new("RGB", (40, 20), color).save(buf, format="PNG")
        client.upload_sample(buf.getvalue(), f"c{i}.png", label="red" if i % 2 == 0 else "blue")
    imp = client.create_impulse("img", {
        "input": {"type": "image", "width": 16, "height": 16, "resize_mode": "fit-short",
                  "color": "rgb"},
        "processing": [{"name": "img", "block": "image", "params": {"channels": "Grayscale"}}]})
    job, result, _ = generate(client, imp.impulse_id)
    assert job.status == SUCCEEDED, job.error
    fm = load_features(platform.ctx.objects, tenant.project_id, imp.impulse_id, 1, "img")
    assert fm.X.shape == (6, 16, 16, 1) and fm.classes == ["blue", "red"]
    red = fm.X[np.array(fm.labels) == "red"]
    np.testing.assert_allclose(red, 0.299 * 250 / 255, atol=0.01)  # luma of pure red
    # RunBlock on a stored image window
    run = client.run_block("img", impulse_id=imp.impulse_id, sample_id=int(fm.sample_ids[0]))
    assert list(run.shape) == [16, 16, 1] and run.plots[0].type == "image"
    assert Image.open(io.BytesIO(run.plots[0].png)).size == (16, 16)


def test_axes_in_impulse_match_samples(tenant, client) -> None:
    """AXES of the synthetic data are what the impulse names (guards the fixtures)."""
    ds = make_synthetic(client, tenant.project_id, per_class=1, n=60)
    s = client.get_sample(next(iter(ds.samples)))
    assert [a.name for a in s.axes] == AXES
