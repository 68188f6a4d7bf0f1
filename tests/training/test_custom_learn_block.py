"""Registered custom learn blocks used exactly like built-in learning blocks, through the API:
register (BlockService) -> impulse with ``custom:NAME`` -> StartTraining (the block's output in
the job log) -> model record (which TFLite forms it has, which are missing) -> TestModel
(confusion matrix) -> Classify -> a c-library build of the int8 model, verified on the host.
Failing blocks (non-zero exit, no model, not a TFLite file, time limit) and bad parameters
fail with the block's log tail or a named field, and store no model. Runs the blocks' local
commands (no container engine needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.blocks.conftest import EXAMPLE_BLOCKS, make_block
from tests.dsp_service.conftest import AXES, FS, envelope
from tests.train_service.conftest import (
    FAILED,
    SUCCEEDED,
    generate,
    run_job,
    synthetic_dataset,
    synthetic_impulse,
    train,
)
from tinyforge.client import ApiError
from tinyforge.quantize.runner import TFLiteModel

KERAS_DENSE = EXAMPLE_BLOCKS / "keras-dense"
PER_SAMPLE = (200 - 50) // 25 + 1  # windows per synthetic sample (4 s at 50 Hz, 1 s / 0.5 s)
EPOCHS = 25


def _impulse(block_type: str, params: dict | None = None) -> dict:
    return synthetic_impulse([{"name": "nn", "type": block_type,
                               "inputs": ["spectral", "stats"], "params": params or {}}])


def _project(client, tenant, block_type: str, params: dict | None = None):
    """The synthetic motion set, an impulse whose learning block is ``block_type``, features."""
    ds = synthetic_dataset(client, tenant.project_id, train_per_class=5, test_per_class=2)
    imp = client.create_impulse("custom-learn", _impulse(block_type, params))
    job, _, _ = generate(client, imp.impulse_id)
    assert job.status == SUCCEEDED, job.error
    return ds, imp


def _nothing_stored(platform, tenant, client) -> None:
    assert client.list_models() == []
    assert list(platform.ctx.objects.list(f"projects/{tenant.project_id}/models/")) == []


def test_keras_dense_int8_trains_tests_classifies_and_builds(platform, tenant, client) -> None:
    client.register_block_dir(KERAS_DENSE, name="keras-dense")
    ds, imp = _project(client, tenant, "custom:keras-dense",
                       {"hidden_units": 16, "quantize": True})
    job, result, lines = train(client, imp.impulse_id, epochs=EPOCHS, learning_rate=0.01)
    assert job.status == SUCCEEDED, job.error
    # the block ran with the platform's epochs and its output streamed into the job log
    assert any(ln.startswith(f"Epoch {EPOCHS}/{EPOCHS}") for ln in lines), lines[-20:]
    assert any('"quantized": true' in ln for ln in lines)  # its metrics line
    assert result["block_type"] == "custom:keras-dense" and result["missing_forms"] == ["float32"]

    model = client.get_model(int(result["model_id"]))
    assert model.block_type == "custom:keras-dense" and model.task == "classification"
    assert list(model.labels) == ["fast", "slow"]
    names = {f.name for f in model.files}
    assert "model_int8.tflite" in names and "model_float32.tflite" not in names
    info = json.loads(model.metrics_json)["extra"]["custom_block"]
    assert info["version"] == 1 and info["engine"] == "local"
    assert info["forms"] == ["int8"] and info["missing"] == ["float32"]
    assert info["sources"] == {"int8": "block"}
    assert any("no float32 form" in n for n in info["notes"])
    meta = json.loads(client.download_model_file(model.id, "metadata.json"))
    assert meta["missing_forms"] == ["float32"]
    assert json.loads(model.params_json) == {"hidden_units": 16, "batch_size": 32,
                                             "quantize": True, "seed": 1}
    # the stored model is the block's int8 model, as it wrote it
    tfl = TFLiteModel(client.download_model_file(model.id, "model_int8.tflite"))
    assert tfl.is_quantized and tfl.input_shape[0] == 1
    assert meta["quantization"]["input_shape"] == [1, tfl.input_size]

    # TestModel: the int8 form only (no "float" result made up from int8 kernels)
    resp = client.test_model(model.id, threshold=0.5)
    tjob, tlines, _ = run_job(client, resp.job_id)
    assert tjob.status == SUCCEEDED, tjob.error
    assert any("has no float32 form" in ln for ln in tlines)
    tr = client.get_test_result(model.id, include_results=True)
    test_ids = sorted(i for i, (_l, _v, c) in ds.samples.items() if c == "testing")
    assert tr.windows == len(test_ids) * PER_SAMPLE
    forms = {f.form: f for f in tr.forms}
    assert set(forms) == {"int8"}
    cm = forms["int8"].confusion
    counts = np.array(cm.counts).reshape(len(cm.labels), -1)
    assert counts.sum() == tr.windows
    assert abs(forms["int8"].accuracy - np.trace(counts[:, :2]) / counts.sum()) < 1e-9
    assert forms["int8"].accuracy > 0.75  # two classes: chance is 0.5
    assert set(tr.plots) == {"confusion_matrix_int8.png"}
    assert json.loads(tr.summary_json)["missing_forms"] == ["float32"]
    # the stored per-window scores are the block's int8 model run on the stored features
    from tinyforge.features import load_features

    fm = [load_features(platform.ctx.objects, tenant.project_id, imp.impulse_id, 1, b)
          for b in ("spectral", "stats")]
    x = np.concatenate([f.X.reshape(len(f.X), -1) for f in fm], axis=1)
    windows = json.loads(tr.results_json)["windows"]
    row = {f"{s}:{w}": i for i, (s, w) in enumerate(zip(fm[0].sample_ids.tolist(),
                                                         fm[0].window_index.tolist(),
                                                         strict=True))}
    ids = [w["sample_id"] for w in windows]
    mine = tfl.predict(x[[row[i] for i in ids]])
    np.testing.assert_allclose([w["int8"]["scores"] for w in windows], mine, atol=1e-6)

    # Classify: int8 (asking for float gets the only form there is, and says so)
    sid = test_ids[0]
    label, values, _ = ds.samples[sid]
    data = envelope(values, AXES, 1000.0 / FS)
    c8 = client.classify(model.id, data, filename="x.json")
    cf = client.classify(model.id, data, filename="x.json", use_float=True)
    assert c8.form == "int8" and cf.form == "int8"
    assert c8.label == label and len(c8.windows) == PER_SAMPLE
    np.testing.assert_allclose(c8.scores, cf.scores)

    # keras-dense folds its standardisation into the first layer: the block's own int8 model
    # compiles to C, and the build verifies it on the host on every testing window
    assert info["compiles_to_c"] is True, info["notes"]
    b = client.start_build("c-library", "linux-x86_64", model_id=model.id,
                           options={"test_windows": "2000", "slices_per_window": "5"})
    bjob, _, _ = run_job(client, b.job_id)  # (continuous-mode slices must divide 50 samples)
    assert bjob.status == SUCCEEDED, bjob.error
    build = client.get_build(b.build_id)
    assert build.compared_windows == tr.windows
    assert build.on_target_accuracy == build.platform_accuracy == forms["int8"].accuracy


def test_float_only_model_says_int8_is_missing(platform, tenant, client, tmp_path) -> None:
    client.register_block_dir(KERAS_DENSE, name="keras-dense")
    ds, imp = _project(client, tenant, "custom:keras-dense", {"hidden_units": 16})
    job, result, lines = train(client, imp.impulse_id, epochs=EPOCHS, learning_rate=0.01)
    assert job.status == SUCCEEDED, job.error
    assert any("only a float32 model.tflite" in ln for ln in lines)
    model = client.get_model(int(result["model_id"]))
    names = {f.name for f in model.files}
    assert "model_float32.tflite" in names and "model_int8.tflite" not in names
    assert json.loads(model.metrics_json)["extra"]["custom_block"]["missing"] == ["int8"]
    assert model.HasField("float_accuracy") and not model.HasField("int8_accuracy")
    tjob, _, _ = run_job(client, client.test_model(model.id).job_id)
    assert tjob.status == SUCCEEDED, tjob.error
    tr = client.get_test_result(model.id)
    assert {f.form for f in tr.forms} == {"float"} and tr.forms[0].accuracy > 0.75
    assert json.loads(tr.summary_json)["missing_forms"] == ["int8"]
    c = client.classify(model.id, sample_id=min(i for i, s in ds.samples.items()
                                                if s[2] == "testing"))
    assert c.form == "float"
    with pytest.raises(ApiError) as err:  # nothing to compile for a microcontroller
        client.start_build("c-library", "linux-x86_64", model_id=model.id)
    assert err.value.code == "FAILED_PRECONDITION" and "int8" in err.value.message

    # the CLI's model summary says which block version ran and what is missing
    from typer.testing import CliRunner

    from tinyforge.cli.main import app

    res = CliRunner().invoke(app, ["models", "show", str(model.id)], env={
        "TINYFORGE_ADDRESS": platform.address, "TINYFORGE_API_KEY": tenant.admin_key,
        "TINYFORGE_PROJECT_ID": str(tenant.project_id),
        "TINYFORGE_DATA_DIR": str(tmp_path)})
    assert res.exit_code == 0, res.output
    assert "custom block:  keras-dense v1 (local), forms float32, missing int8" in res.stdout
    assert "note:" in res.stdout and "no int8 form" in res.stdout


SAVED_MODEL_BLOCK = """
    import argparse, os, sys
    import numpy as np
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    ap = argparse.ArgumentParser()
    for a in ("--data-directory", "--out-directory"):
        ap.add_argument(a, required=True)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--learning-rate", type=float)
    ap.add_argument("--units", type=int)
    a = ap.parse_args()
    x = np.load(os.path.join(a.data_directory, "X_split_train.npy"))
    y = np.load(os.path.join(a.data_directory, "Y_split_train.npy"))
    x = x.reshape(len(x), -1)
    print(f"train {x.shape} one-hot {y.shape} sums {sorted(set(y.sum(axis=1).tolist()))}")
    print("test split:", os.path.exists(os.path.join(a.data_directory, "X_split_test.npy")))
    keras.utils.set_random_seed(1)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    m = keras.Sequential([keras.Input((x.shape[1],)),
                          keras.layers.Dense(a.units, activation="relu"),
                          keras.layers.Dense(y.shape[1], activation="softmax")])
    m.compile(keras.optimizers.Adam(a.learning_rate), "categorical_crossentropy")
    m.fit((x - mean) / std, y, epochs=a.epochs, verbose=0)
    # fold the standardisation into the first layer: the model takes raw features
    w, b = m.layers[0].get_weights()
    m.layers[0].set_weights([w / std[:, None], b - (mean / std) @ w])
    m.export(os.path.join(a.out_directory, "saved_model"))
    print("exported")
"""


def test_saved_model_is_quantized_by_the_platform(platform, tenant, client, tmp_path) -> None:
    block = make_block(tmp_path / "sm", SAVED_MODEL_BLOCK, btype="learn", name="Saved model",
                       params=[{"param": "units", "name": "Units", "type": "int", "value": 8,
                                "min": 1, "max": 256}])
    client.register_block_dir(block, name="saved-dense")
    _ds, imp = _project(client, tenant, "custom:saved-dense@1")
    job, result, lines = train(client, imp.impulse_id, epochs=30, learning_rate=0.01)
    assert job.status == SUCCEEDED, job.error
    # the contract's input: one-hot labels of 2 classes, the validation split as "test"
    assert any(ln.startswith("train (") and "one-hot (" in ln and ", 2) sums [1.0]" in ln
               for ln in lines), lines
    assert "test split: True" in lines
    model = client.get_model(int(result["model_id"]))
    names = {f.name for f in model.files}
    assert {"model_int8.tflite", "model_float32.tflite"} <= names
    info = json.loads(model.metrics_json)["extra"]["custom_block"]
    assert info["missing"] == [] and info["sources"]["int8"].startswith("platform")
    i8 = TFLiteModel(client.download_model_file(model.id, "model_int8.tflite"))
    f32 = TFLiteModel(client.download_model_file(model.id, "model_float32.tflite"))
    assert i8.is_quantized and not f32.is_quantized and i8.input_shape == f32.input_shape
    assert model.float_accuracy > 0.75 and model.int8_accuracy > 0.75
    assert info["compiles_to_c"] is True
    tjob, _, _ = run_job(client, client.test_model(model.id).job_id)
    assert tjob.status == SUCCEEDED, tjob.error
    tr = client.get_test_result(model.id)
    assert {f.form for f in tr.forms} == {"float", "int8"}

    # c-library for the host from the platform's int8 model: compiled and verified on the
    # host on every testing window, with the platform's own int8 accuracy
    b = client.start_build("c-library", "linux-x86_64", model_id=model.id,
                           options={"test_windows": "2000", "slices_per_window": "5"})
    bjob, _, _ = run_job(client, b.job_id)  # (continuous-mode slices must divide 50 samples)
    assert bjob.status == SUCCEEDED, bjob.error
    build = client.get_build(b.build_id)
    assert build.compared_windows == tr.windows
    assert build.on_target_accuracy == build.platform_accuracy
    assert build.platform_accuracy == {f.form: f for f in tr.forms}["int8"].accuracy


# -- failures ------------------------------------------------------------------------------------
def _failing(tmp_path: Path, script: str, **kw) -> Path:
    return make_block(tmp_path / "bad", script, btype="learn", name="Failing", **kw)


@pytest.mark.parametrize("script, resources, said, reason", [
    ("import sys\nprint('loading the data')\nprint('boom: no GPU found', file=sys.stderr)\n"
     "sys.exit(3)\n", None, "boom: no GPU found", "exited with code 3"),
    ("import sys\nout = sys.argv[sys.argv.index('--out-directory') + 1]\n"
     "open(out + '/metrics.json', 'w').write('{}')\nprint('trained, forgot the model')\n",
     None, "trained, forgot the model", "wrote neither model.tflite nor saved_model"),
    ("import sys\nout = sys.argv[sys.argv.index('--out-directory') + 1]\n"
     "open(out + '/model.tflite', 'wb').write(b'not a model')\nprint('wrote junk')\n",
     None, "wrote junk", "not a TensorFlow Lite flatbuffer"),
    ("import time\nprint('thinking', flush=True)\ntime.sleep(60)\n",
     {"timeoutSeconds": 2}, "thinking", "time limit of 2 s"),
], ids=["exit-code", "no-model", "not-tflite", "timeout"])
def test_failing_block_fails_the_job_and_stores_nothing(platform, tenant, client, tmp_path,
                                                        script, resources, said,
                                                        reason) -> None:
    client.register_block_dir(_failing(tmp_path, script, resources=resources), name="bad")
    _ds, imp = _project(client, tenant, "custom:bad")
    job, _, lines = train(client, imp.impulse_id, epochs=2)
    assert job.status == FAILED
    assert reason in job.error and said in job.error  # the block's log tail in the message
    assert said in lines  # and its output in the job log
    _nothing_stored(platform, tenant, client)


WRONG_SHAPE_BLOCK = """
    import os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras, tensorflow as tf
    out = sys.argv[sys.argv.index("--out-directory") + 1]
    net = keras.Sequential([keras.Input((3,), batch_size=1), keras.layers.Dense(2)])
    data = tf.lite.TFLiteConverter.from_keras_model(net).convert()
    open(os.path.join(out, "model.tflite"), "wb").write(data)
    print("wrote a model on 3 features")
"""


def test_wrong_model_shape_fails(platform, tenant, client, tmp_path) -> None:
    # a block ignoring its input: a valid TFLite model, but on 3 features
    block = make_block(tmp_path / "wrong", WRONG_SHAPE_BLOCK, btype="learn", name="Wrong shape")
    client.register_block_dir(block, name="wrong-shape")
    _ds, imp = _project(client, tenant, "custom:wrong-shape")
    job, _, _ = train(client, imp.impulse_id, epochs=1)
    assert job.status == FAILED
    assert "model.tflite takes 3 input values" in job.error
    assert "features per window" in job.error and "wrote a model on 3 features" in job.error
    _nothing_stored(platform, tenant, client)


def test_bad_parameters_and_references_are_refused(platform, tenant, client) -> None:
    client.register_block_dir(KERAS_DENSE, name="keras-dense")
    cases = [
        ("custom:keras-dense", {"hidden_units": 0}, "learning[0].params.hidden_units", "1..4096"),
        ("custom:keras-dense", {"colour": 1}, "learning[0].params.colour", "hidden_units"),
        ("custom:keras-dense@9", {}, "learning[0].type", "no version 9"),
        ("custom:absent", {}, "learning[0].type", "absent"),
        ("custom:Bad Name", {}, "learning[0].type", "custom:NAME"),
    ]
    for block_type, params, field, words in cases:
        with pytest.raises(ApiError) as err:
            client.create_impulse("bad", _impulse(block_type, params))
        assert (err.value.code, err.value.field) == ("INVALID_ARGUMENT", field), block_type
        assert words in err.value.message, err.value.message
    # a registered block of another type is no learning block
    zcr = json.loads((EXAMPLE_BLOCKS / "zcr-bands" / "parameters.json").read_text())
    client.register_block(zcr, name="zcr", image="127.0.0.1:5000/x/zcr:1")
    with pytest.raises(ApiError) as err:
        client.create_impulse("bad", _impulse("custom:zcr"))
    assert err.value.field == "learning[0].type" and "dsp block" in err.value.message

    # StartTraining with parameters the block's schema refuses: InvalidArgument naming
    # parameters.<key>, no job, no model
    _ds, imp = _project(client, tenant, "custom:keras-dense")
    jobs = len(client.list_jobs())
    for params, field in (({"hidden_units": 5000}, "parameters.hidden_units"),
                          ({"quantize": "maybe"}, "parameters.quantize"),
                          ({"nope": 1}, "parameters.nope")):
        with pytest.raises(ApiError) as err:
            client.start_training(imp.impulse_id, epochs=2, params=params)
        assert (err.value.code, err.value.field) == ("INVALID_ARGUMENT", field), params
    assert len(client.list_jobs()) == jobs
    _nothing_stored(platform, tenant, client)


def test_block_that_cannot_run_here_is_refused(platform, tenant, client,
                                               monkeypatch) -> None:
    client.register_block_dir(KERAS_DENSE, name="keras-dense")
    _ds, imp = _project(client, tenant, "custom:keras-dense")
    monkeypatch.setenv("TINYFORGE_BLOCKS_LOCAL_COMMANDS", "0")
    with pytest.raises(ApiError) as err:
        client.start_training(imp.impulse_id, epochs=2)
    assert (err.value.code, err.value.field) == ("FAILED_PRECONDITION", "learn_block")
    assert "local commands are disabled" in err.value.message
    assert "it has no image" in err.value.message
