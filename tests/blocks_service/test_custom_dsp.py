"""Registered custom DSP blocks used exactly like built-in ones, through the API: impulse
validation against the block's schema, feature generation (a watched job) equal to running the
block directly on the same windows, incremental re-runs, ListBlocks and RunBlock, and failing
blocks (exit code, no output, timeout) failing the job with the block's log and publishing
nothing. Runs the blocks' local commands (no container engine needed)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.blocks.conftest import EXAMPLE_BLOCKS
from tests.dsp_service.conftest import (
    FAILED,
    SUCCEEDED,
    generate,
    make_synthetic,
    ts_impulse,
)
from tinyforge.blocks.registry_store import pack_block_source
from tinyforge.blocks.run import run_block
from tinyforge.client import ApiError
from tinyforge.features import load_features

ZCR = EXAMPLE_BLOCKS / "zcr-bands"
PER_SAMPLE = (200 - 50) // 25 + 1  # 200 samples at 50 Hz, windows of 50 every 25


def _impulse(block: str, params: dict | None = None) -> dict:
    imp = ts_impulse()
    imp["processing"].append({"name": "zcr", "block": block,
                              "params": {"bands": 3, "log_energy": True} if params is None
                              else params})
    imp["learning"][0]["inputs"].append("zcr")
    return imp


def _direct(ds, sample_ids, params: dict, tmp: Path) -> np.ndarray:
    """The block run directly (its local command) on windows cut here from uploaded values."""
    x = np.stack([ds.samples[sid][1][w * 25: w * 25 + 50].astype(np.float32)
                  for sid in sample_ids for w in range(PER_SAMPLE)])
    tmp.mkdir(parents=True, exist_ok=True)
    np.save(tmp / "X.npy", x)
    res = run_block(ZCR, tmp / "X.npy", tmp / "out", params=params, engine="local")
    return np.load(res.out_dir / "features.npy")


def test_custom_block_in_an_impulse_end_to_end(platform, tenant, client, tmp_path) -> None:
    ds = make_synthetic(client, tenant.project_id, per_class=3, n=200)
    client.register_block_dir(ZCR, name="zcr-bands")
    imp = client.create_impulse("with-custom", _impulse("custom:zcr-bands"))
    job, result, lines = generate(client, imp.impulse_id)
    assert job.status == SUCCEEDED, job.error
    assert result["blocks"]["zcr"]["processed_samples"] == len(ds.samples)
    assert any("[zcr]" in ln and "windows x 3 axes" in ln for ln in lines)  # the block's log

    fm = load_features(platform.ctx.objects, tenant.project_id, imp.impulse_id, 1, "zcr")
    ids = sorted(ds.samples)
    n_win = PER_SAMPLE * len(ids)
    assert fm.X.shape == (n_win, 3 * (1 + 3)) and fm.X.dtype == np.float32
    assert fm.sample_ids.tolist() == [i for i in ids for _ in range(PER_SAMPLE)]
    assert fm.labels == [ds.samples[i][0] for i in ids for _ in range(PER_SAMPLE)]
    assert fm.manifest["block_type"] == "custom:zcr-bands"
    direct = _direct(ds, ids, {"bands": 3, "log_energy": True}, tmp_path / "direct")
    np.testing.assert_allclose(fm.X, direct, rtol=1e-5, atol=1e-5)
    info = {b.block: list(b.shape) for b in client.get_features(imp.impulse_id).blocks}
    assert info["zcr"] == [12]

    # re-run: every block reused from the cache
    _, again, _ = generate(client, imp.impulse_id)
    assert {k: v["processed_samples"] for k, v in again["blocks"].items()} == \
        {"spectral": 0, "stats": 0, "zcr": 0}

    # a new registered version (same code, other default) is a different block: "custom:NAME"
    # follows the latest version and recomputes; built-in blocks stay cached
    doc = json.loads((ZCR / "parameters.json").read_text())
    doc["parameters"][2]["value"] = False
    client.register_block(doc, name="zcr-bands", source_archive=pack_block_source(ZCR))
    v2 = client.update_impulse(imp.impulse_id, _impulse("custom:zcr-bands", {"bands": 3}))
    _, third, _ = generate(client, imp.impulse_id, v2.impulse.version)
    assert third["blocks"]["zcr"]["processed_samples"] == len(ds.samples)
    assert third["blocks"]["spectral"]["processed_samples"] == 0
    fm2 = load_features(platform.ctx.objects, tenant.project_id, imp.impulse_id,
                        v2.impulse.version, "zcr")
    np.testing.assert_allclose(fm2.X, _direct(ds, ids, {"bands": 3, "log_energy": False},
                                              tmp_path / "direct2"), rtol=1e-5, atol=1e-5)
    # pinned to version 1: the features of version 1 are reused
    v3 = client.update_impulse(imp.impulse_id, _impulse("custom:zcr-bands@1"))
    _, fourth, _ = generate(client, imp.impulse_id, v3.impulse.version)
    assert fourth["blocks"]["zcr"]["processed_samples"] == 0


def test_impulse_validation_against_the_registry(platform, tenant, client) -> None:
    client.register_block_dir(ZCR, name="zcr-bands")
    cases = [
        ("custom:absent", {}, "processing[2].block", "absent"),
        ("custom:zcr-bands@7", {}, "processing[2].block", "no version 7"),
        ("custom:Bad Name", {}, "processing[2].block", "custom:NAME"),
        ("custom:zcr-bands", {"bands": 100}, "processing[2].params.bands", "1..64"),
        ("custom:zcr-bands", {"bands": 2.5}, "processing[2].params.bands", "int"),
        ("custom:zcr-bands", {"colour": 1}, "processing[2].params.colour", "log_energy"),
    ]
    for block, params, field, words in cases:
        with pytest.raises(ApiError) as err:
            client.create_impulse("bad", _impulse(block, params))
        assert (err.value.code, err.value.field) == ("INVALID_ARGUMENT", field), block
        assert words in err.value.message, err.value.message
    # another organization's block is unknown here
    other = platform.new_tenant()
    other.client().register_block_dir(ZCR, name="theirs")
    with pytest.raises(ApiError) as err:
        client.create_impulse("bad", _impulse("custom:theirs"))
    assert (err.value.code, err.value.field) == ("INVALID_ARGUMENT", "processing[2].block")
    # a non-DSP block cannot be a processing block
    doc = json.loads((ZCR / "parameters.json").read_text())
    doc["type"] = "transform"
    client.register_block(doc, name="a-transform", image="127.0.0.1:5000/x/t:1")
    with pytest.raises(ApiError) as err:
        client.create_impulse("bad", _impulse("custom:a-transform"))
    assert "transform block" in err.value.message


def test_list_blocks_and_run_block(platform, tenant, client) -> None:
    client.register_block_dir(ZCR, name="zcr-bands")
    blocks = {b.name: b for b in client.list_dsp_blocks()}
    assert "mfcc" in blocks and "custom:zcr-bands" in blocks
    custom = blocks["custom:zcr-bands"]
    schema = json.loads(custom.schema_json)
    assert custom.implementation_version == 1 and custom.input == "time-series"
    assert {p["param"]: (p["min"], p["max"]) for p in schema["parameters"]
            if p["type"] == "int"} == {"axes": (1, 64), "bands": (1, 64)}
    # other organizations do not see it
    assert "custom:zcr-bands" not in {b.name for b in platform.new_tenant().client()
                                      .list_dsp_blocks()}

    rng = np.random.default_rng(3)
    window = rng.normal(size=(64, 2)).astype(np.float32)
    resp = client.run_block("custom:zcr-bands", window, frequency_hz=100,
                            axis_names=["a", "b"], params={"bands": 2})
    assert list(resp.shape) == [6] and resp.block_type == "custom:zcr-bands"
    np.save(Path(platform.ctx.settings.data_dir) / "w.npy", window[None])
    out = run_block(ZCR, Path(platform.ctx.settings.data_dir) / "w.npy",
                    Path(platform.ctx.settings.data_dir) / f"o-{tenant.org_id}",
                    params={"bands": 2}, engine="local")
    np.testing.assert_allclose(resp.features, np.load(out.out_dir / "features.npy")[0],
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ApiError) as err:
        client.run_block("custom:zcr-bands", window, frequency_hz=100, params={"bands": 0})
    assert (err.value.code, err.value.field) == ("INVALID_ARGUMENT", "params.bands")


_FAILING = {
    "exit": ("import sys\nprint('reading windows')\nprint('boom: cannot parse', file=sys.stderr)"
             "\nsys.exit(3)\n", "exited with code 3", "boom: cannot parse"),
    "no-output": ("print('did nothing, on purpose')\n", "wrote no output",
                  "did nothing, on purpose"),
    "timeout": ("import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n",
                "time limit of 1 s", "sleeping"),
}


@pytest.mark.parametrize("kind", sorted(_FAILING))
def test_failing_custom_block_fails_the_job(platform, tenant, client, tmp_path, kind) -> None:
    script, reason, said = _FAILING[kind]
    d = tmp_path / "bad-block"
    d.mkdir()
    (d / "main.py").write_text(textwrap.dedent(script))
    (d / "parameters.json").write_text(json.dumps({
        "version": 1, "type": "dsp",
        "info": {"name": "Bad", "localCommand": ["python3", "main.py"],
                 "resources": {"timeoutSeconds": 1}},
        "parameters": []}))
    make_synthetic(client, tenant.project_id, per_class=1, n=100)
    client.register_block_dir(d, name="bad")
    imp = client.create_impulse("failing", _impulse("custom:bad", {}))
    job, _, lines = generate(client, imp.impulse_id)
    assert job.status == FAILED
    assert reason in job.error and said in job.error  # the block's log tail, in WatchJob
    assert any(said in ln for ln in lines)
    # nothing published: no feature set, no manifest, no feature files
    assert list(client.get_features(imp.impulse_id).blocks) == []
    prefix = f"projects/{tenant.project_id}/features/{imp.impulse_id}/"
    assert [o.key for o in platform.ctx.objects.list(prefix)] == []


def test_local_commands_can_be_disabled(platform, tenant, client, monkeypatch) -> None:
    make_synthetic(client, tenant.project_id, per_class=1, n=100)
    client.register_block_dir(ZCR, name="zcr-bands")
    imp = client.create_impulse("no-local", _impulse("custom:zcr-bands"))
    monkeypatch.setenv("TINYFORGE_BLOCKS_LOCAL_COMMANDS", "0")
    job, _, _ = generate(client, imp.impulse_id)
    assert job.status == FAILED
    assert "local commands are disabled" in job.error and "it has no image" in job.error


def test_model_on_a_custom_block_trains_tests_and_classifies(platform, tenant, client,
                                                              tmp_path) -> None:
    """Training and testing check the custom block's features against the registry; the model
    records the block version it was trained on, and Classify runs that version even after a
    newer one is registered."""
    from tests.dsp_service.conftest import AXES, FS, envelope
    from tests.train_service.conftest import run_job as run_train_job
    from tests.train_service.conftest import synthetic_dataset, synthetic_impulse, train
    from tinyforge.quantize.runner import TFLiteModel

    ds = synthetic_dataset(client, tenant.project_id, train_per_class=5, test_per_class=2)
    client.register_block_dir(ZCR, name="zcr-bands")
    doc = synthetic_impulse([{"name": "nn", "type": "classifier", "inputs": ["zcr"],
                              "params": {"dense_layers": "16"}}])
    params = {"bands": 3, "log_energy": True}
    doc["processing"].append({"name": "zcr", "block": "custom:zcr-bands", "params": params})
    imp = client.create_impulse("zcr-model", doc)
    job, _, _ = generate(client, imp.impulse_id)
    assert job.status == SUCCEEDED, job.error
    job, result, _ = train(client, imp.impulse_id, epochs=40, learning_rate=0.01)
    assert job.status == SUCCEEDED, job.error
    model_id = int(result["model_id"])
    meta = json.loads(client.download_model_file(model_id, "metadata.json"))
    zcr = next(b for b in meta["impulse"]["processing"] if b["name"] == "zcr")
    assert zcr["block"] == "custom:zcr-bands@1"

    tjob, _, _ = run_train_job(client, client.test_model(model_id).job_id)
    assert tjob.status == SUCCEEDED, tjob.error
    tr = client.get_test_result(model_id)
    assert {f.form for f in tr.forms} >= {"int8"}

    # a newer version (other default) must not change what the trained model computes
    v2 = json.loads((ZCR / "parameters.json").read_text())
    v2["parameters"][2]["value"] = False
    client.register_block(v2, name="zcr-bands", source_archive=pack_block_source(ZCR))
    sid = next(i for i, (_l, _v, c) in ds.samples.items() if c == "testing")
    label, values, _ = ds.samples[sid]
    res = client.classify(model_id, envelope(values, AXES, 1000.0 / FS), filename="x.json")
    assert res.form == "int8" and len(res.windows) == PER_SAMPLE
    # the same windows through the block v1 directly, then the stored int8 model
    feats = _direct(ds, [sid], params, tmp_path / "direct")
    tfl = TFLiteModel(client.download_model_file(model_id, "model_int8.tflite"))
    np.testing.assert_allclose([w.scores for w in res.windows], tfl.predict(feats), atol=1e-6)

    # no build can run the block's DSP (no C twin, no predictor implementation): refused at
    # once, naming the block, and no build is recorded
    for fmt in ("c-library", "tflite"):
        with pytest.raises(ApiError) as err:
            client.start_build(fmt, "linux-x86_64", model_id=model_id)
        assert err.value.code == "FAILED_PRECONDITION"
        assert "custom DSP block(s) custom:zcr-bands" in err.value.message
    assert client.list_builds() == []
