"""The predictor in-process: a deployment with a K-means anomaly scorer (trained here by the
platform's anomaly block) reports the same anomaly scores as that block, through the runtime
and the v1/v2 request paths; input shapes and sample files are checked with clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.serving.conftest import FS, Trained
from tinyforge.data.windowing import window_sample
from tinyforge.dsp.registry import get_block
from tinyforge.errors import InvalidArgument
from tinyforge.impulse import Impulse
from tinyforge.serving.kserve_compat import import_kserve
from tinyforge.serving.model_dir import AnomalyScorer, load_model_source, model_dir_files
from tinyforge.serving.runtime import ImpulseRuntime

import_kserve()
from kserve.errors import InvalidInput  # noqa: E402
from kserve.protocol.infer_type import InferInput, InferRequest  # noqa: E402

from tinyforge.serving.predictor import ImpulseModel  # noqa: E402


def _windows(paths: list[Path], impulse: Impulse) -> np.ndarray:
    return np.concatenate([
        window_sample(np.loadtxt(p, delimiter=",", dtype=np.float32), 1000.0 / FS,
                      impulse.input).data for p in paths])


@pytest.fixture(scope="module")
def with_anomaly(har_model: Trained, tmp_path_factory: pytest.TempPathFactory):
    """Model directory = the HAR classifier + a K-means scorer fitted on stationary windows."""
    from tinyforge.learn.registry import get_block as learn_block

    b = har_model.bundle
    normal = _windows([p for p in har_model.files if p.parent.name == "stationary"][:6],
                      b.impulse)
    feats = get_block("spectral_analysis").features_batch(normal, FS, {}).reshape(len(normal), -1)
    km = learn_block("anomaly_kmeans").train(feats, params={"clusters": 4}, seed=0)
    scorer = AnomalyScorer.from_dict({**km.model.export(), "inputs": ["spectral"],
                                      "threshold": km.extra["threshold"]})
    d = tmp_path_factory.mktemp("anomaly-model")
    for name, data in model_dir_files(b.impulse, b.labels, b.model_int8, b.model_float32,
                                      anomaly=scorer).items():
        (d / name).write_bytes(data)
    return d, km


def test_anomaly_scores_equal_the_anomaly_block(har_model: Trained, with_anomaly) -> None:
    model_dir, km = with_anomaly
    rt = ImpulseRuntime(load_model_source(model_dir))
    windows = _windows(har_model.files[:4], rt.impulse)
    res = rt.classify(windows)
    feats = get_block("spectral_analysis").features_batch(windows, FS, {})
    expected = km.predict(feats.reshape(len(windows), -1))
    np.testing.assert_allclose(res.anomaly, expected, rtol=1e-4, atol=1e-4)
    # moving and still windows are told apart by the scorer fitted on still ones
    moving = np.array([p.parent.name != "stationary" for p in har_model.files[:4]
                       for _ in range(len(_windows([p], rt.impulse)))])
    if moving.any() and (~moving).any():
        assert res.anomaly[moving].mean() > res.anomaly[~moving].mean()


def test_anomaly_in_v1_and_v2_replies(har_model: Trained, with_anomaly) -> None:
    model_dir, km = with_anomaly
    model = ImpulseModel("har", model_dir)
    assert model.load() and model.ready
    windows = _windows(har_model.files[:1], har_model.bundle.impulse)[:3]
    feats = get_block("spectral_analysis").features_batch(windows, FS, {}).reshape(3, -1)
    expected = km.predict(feats)
    v1 = model.predict({"instances": [w.tolist() for w in windows]})
    np.testing.assert_allclose([p["anomaly"] for p in v1["predictions"]], expected,
                               rtol=1e-4, atol=1e-4)
    req = InferRequest("har", [InferInput("x", [3, windows[0].size], "FP32",
                                          windows.reshape(3, -1).ravel().tolist())])
    out = model.predict(req)
    np.testing.assert_allclose(out.get_output_by_name("anomaly").data, expected,
                               rtol=1e-4, atol=1e-4)
    assert {"name": "anomaly", "datatype": "FP32", "shape": [-1]} in model.get_output_types()
    assert json.loads(out.parameters["labels"]) == list(har_model.bundle.labels)


def test_shape_and_value_errors_name_what_is_expected(har_model: Trained, with_anomaly) -> None:
    rt = ImpulseRuntime(load_model_source(with_anomaly[0]))
    assert rt.windows_from_array(np.zeros((52, 3))).shape == (1, 52, 3)
    assert rt.windows_from_array(np.zeros((4, 156))).shape == (4, 52, 3)
    assert rt.windows_from_array(np.zeros(156), batched=False).shape == (1, 52, 3)
    for bad in (np.zeros((52, 2)), np.zeros((2, 52, 4)), np.zeros(155), np.zeros((0, 156))):
        with pytest.raises(InvalidArgument) as exc:
            rt.windows_from_array(bad)
        assert "[52, 3]" in exc.value.message and "156" in exc.value.message
    with pytest.raises(InvalidArgument, match="NaN"):
        rt.windows_from_array(np.full((52, 3), np.nan))
    with pytest.raises(InvalidArgument, match="numeric"):
        rt.windows_from_array([[1, 2], [3]])
    with pytest.raises(InvalidArgument, match="axes"):
        rt.windows_from_file(b"t,a\n0,1\n40,2\n")
    model = ImpulseModel("har", with_anomaly[0])
    model.load()
    with pytest.raises(InvalidInput, match="instances"):
        model.predict({"inputs": []})
    with pytest.raises(InvalidInput, match="one input tensor"):
        model.predict(InferRequest("har", []))
    with pytest.raises(InvalidInput, match="float32|int8"):
        model.predict({"instances": [np.zeros(156).tolist()],
                       "parameters": {"model_type": "fp16"}})
