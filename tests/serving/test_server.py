"""``tinyforge serve`` as a real KServe model server (subprocess, loopback): v1 REST, v2 REST
and v2 gRPC answer with exactly the scores of the platform path computed here in-process
(tinyforge DSP block -> LiteRT int8/float model), for raw windows and for whole sample files
(CSV, Edge Impulse JSON, WAV); readiness; bad input is refused with 400 / INVALID_ARGUMENT
and the server keeps serving."""

from __future__ import annotations

import base64
import io
import json
import wave
from pathlib import Path

import grpc
import numpy as np
import pytest

from tests.serving.conftest import AXES, FS, Server, Trained, har_impulse
from tinyforge.data.windowing import window_sample
from tinyforge.dsp.registry import get_block
from tinyforge.quantize.runner import TFLiteModel
from tinyforge.serving.kserve_compat import import_kserve

import_kserve()
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb  # noqa: E402
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc  # noqa: E402
from kserve.protocol.infer_type import InferResponse  # noqa: E402

WINDOW = 52  # 2 s at 26 Hz
Tensor = pb.ModelInferRequest.InferInputTensor


def platform_scores(trained: Trained, windows: np.ndarray, model: str = "int8") -> np.ndarray:
    """The platform path, in-process: spectral features -> LiteRT model -> float scores."""
    feats = get_block("spectral_analysis").features_batch(windows, FS, {})
    b = trained.bundle
    return TFLiteModel(b.model_int8 if model == "int8" else b.model_float32).predict(
        feats.reshape(len(windows), -1))


def csv_windows(path: Path) -> np.ndarray:
    values = np.loadtxt(path, delimiter=",", dtype=np.float32)
    return window_sample(values, 1000.0 / FS, har_impulse().input).data


def held_out_windows(trained: Trained, n: int = 4) -> np.ndarray:
    return np.concatenate([csv_windows(p)[:2] for p in trained.files[: (n + 1) // 2]])[:n]


def score_rows(predictions_scores: list[dict[str, float]], labels: tuple[str, ...]) -> np.ndarray:
    return np.array([[s[lab] for lab in labels] for s in predictions_scores], np.float32)


def grpc_stub(srv: Server) -> pb_grpc.GRPCInferenceServiceStub:
    channel = grpc.insecure_channel(f"127.0.0.1:{srv.grpc}")
    return pb_grpc.GRPCInferenceServiceStub(channel)


def wav_bytes(values: np.ndarray, rate: int) -> bytes:
    """A multi-channel 16-bit PCM WAV written with the standard library."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(values.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(values.astype("<i2").tobytes())
    return buf.getvalue()


# -- readiness ---------------------------------------------------------------------------------
def test_readiness_rest_and_grpc(server: Server) -> None:
    assert server.request("GET", "/v2/health/ready")[0] == 200
    assert server.request("GET", "/v2/health/live")[0] == 200
    status, body = server.request("GET", f"/v2/models/{server.name}/ready")
    assert status == 200 and body["ready"] is True
    assert server.request("GET", "/v2/models/nosuchmodel/ready")[0] == 404
    stub = grpc_stub(server)
    assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
    assert stub.ModelReady(pb.ModelReadyRequest(name=server.name), timeout=10).ready


def test_listens_on_loopback_only(server: Server) -> None:
    """Both ports are bound to 127.0.0.1 (kserve's own default would be every interface)."""
    bound: dict[int, set[str]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, port = local.split(":")
            if state == "0A" and int(port, 16) in (server.http, server.grpc):  # LISTEN
                bound.setdefault(int(port, 16), set()).add(addr)
    assert set(bound) == {server.http, server.grpc}, bound
    loopback = {"0100007F", "0000000000000000FFFF00000100007F"}  # 127.0.0.1, ::ffff:127.0.0.1
    for port, addrs in bound.items():
        assert addrs <= loopback, (port, addrs)


# -- v1 ----------------------------------------------------------------------------------------
def test_v1_raw_windows_equal_platform_scores(server: Server, har_model: Trained) -> None:
    windows = held_out_windows(har_model)
    expected = platform_scores(har_model, windows)
    instances = [w.tolist() for w in windows[:-1]] + [windows[-1].reshape(-1).tolist()]  # flat
    status, body = server.request("POST", f"/v1/models/{server.name}:predict",
                                  {"instances": instances})
    assert status == 200, body
    labels = har_model.bundle.labels
    got = score_rows([p["scores"] for p in body["predictions"]], labels)
    np.testing.assert_array_equal(got, expected)
    assert [p["label"] for p in body["predictions"]] == [labels[i] for i in expected.argmax(1)]
    params = body["parameters"]
    assert json.loads(params["labels"]) == list(labels)
    assert params["model_type"] == "int8" and params["windows"] == len(windows)
    assert isinstance(params["dsp_time_us"], int) and params["dsp_time_us"] > 0
    assert isinstance(params["inference_time_us"], int) and params["inference_time_us"] > 0


def test_v1_file_instances_equal_platform_scores(server: Server, har_model: Trained) -> None:
    """A whole CSV (base64, bare or as {"b64": ...}) and a raw text/csv body: one prediction
    per file with every window's scores, start times and the mean."""
    path = har_model.files[-1]
    windows = csv_windows(path)
    expected = platform_scores(har_model, windows)
    b64 = base64.b64encode(path.read_bytes()).decode()
    status, body = server.request("POST", f"/v1/models/{server.name}:predict",
                                  {"instances": [b64, {"b64": b64, "content_type": "text/csv"}]})
    assert status == 200, body
    status, raw = server.request("POST", f"/v1/models/{server.name}:predict",
                                 path.read_bytes(), content_type="text/csv")
    assert status == 200, raw
    labels = har_model.bundle.labels
    for pred in [*body["predictions"], *raw["predictions"]]:
        got = score_rows([w["scores"] for w in pred["windows"]], labels)
        np.testing.assert_array_equal(got, expected)
        assert [w["start_ms"] for w in pred["windows"]] == pytest.approx(
            [1000.0 * i for i in range(len(windows))])
        mean = score_rows([pred["scores"]], labels)[0]
        np.testing.assert_allclose(mean, expected.mean(axis=0), rtol=1e-6)
    assert body["parameters"]["windows"] == 2 * len(windows)


# -- v2 REST -----------------------------------------------------------------------------------
def test_v2_rest_tensor_layouts_equal_platform_scores(server: Server, har_model: Trained) -> None:
    windows = held_out_windows(har_model)
    expected = platform_scores(har_model, windows)
    url = f"/v2/models/{server.name}/infer"
    for shape, data in (([len(windows), WINDOW * 3], windows.reshape(len(windows), -1)),
                        ([len(windows), WINDOW, 3], windows)):
        status, body = server.request("POST", url, {"inputs": [
            {"name": "x", "shape": shape, "datatype": "FP32", "data": data.ravel().tolist()}]})
        assert status == 200, body
        out = {o["name"]: o for o in body["outputs"]}
        assert out["scores"]["shape"] == [len(windows), len(har_model.bundle.labels)]
        got = np.array(out["scores"]["data"], np.float32).reshape(out["scores"]["shape"])
        np.testing.assert_array_equal(got, expected)
        assert out["source"]["data"] == list(range(len(windows)))
        assert out["label"]["data"] == [har_model.bundle.labels[i] for i in expected.argmax(1)]
    # one window [T, axes]
    status, body = server.request("POST", url, {"inputs": [
        {"name": "x", "shape": [WINDOW, 3], "datatype": "FP32",
         "data": windows[0].ravel().tolist()}]})
    assert status == 200, body
    got = np.array(body["outputs"][0]["data"], np.float32)
    np.testing.assert_array_equal(got, expected[0])


def test_v2_rest_bytes_files_json_and_wav(server: Server, har_model: Trained) -> None:
    """BYTES inputs: an Edge Impulse JSON envelope with the axes in another order (picked by
    name) and a 3-channel WAV at 26 Hz (picked by position), base64 in JSON."""
    path = har_model.files[0]
    values = np.loadtxt(path, delimiter=",", dtype=np.float32)
    expected = platform_scores(har_model, csv_windows(path))
    order = [2, 0, 1]
    envelope = {"protected": {"ver": "v1", "alg": "none"}, "signature": "0" * 64,
                "payload": {"device_type": "test", "interval_ms": 1000.0 / FS,
                            "sensors": [{"name": AXES[i], "units": "mg"} for i in order],
                            "values": values[:, order].tolist()}}
    files = [json.dumps(envelope).encode(), wav_bytes(values, int(FS))]
    status, body = server.request("POST", f"/v2/models/{server.name}/infer", {"inputs": [
        {"name": "files", "shape": [2], "datatype": "BYTES",
         "data": [base64.b64encode(f).decode() for f in files]}]})
    assert status == 200, body
    out = {o["name"]: o for o in body["outputs"]}
    got = np.array(out["scores"]["data"], np.float32).reshape(out["scores"]["shape"])
    np.testing.assert_array_equal(got, np.concatenate([expected, expected]))
    n = len(expected)
    assert out["source"]["data"] == [0] * n + [1] * n
    assert out["start_ms"]["data"] == pytest.approx([1000.0 * i for i in range(n)] * 2)


def test_float32_model_on_request(server: Server, har_model: Trained) -> None:
    windows = held_out_windows(har_model)
    status, body = server.request("POST", f"/v2/models/{server.name}/infer", {
        "parameters": {"model_type": "float32"},
        "inputs": [{"name": "x", "shape": [len(windows), WINDOW * 3], "datatype": "FP32",
                    "data": windows.ravel().tolist()}]})
    assert status == 200, body
    assert body["parameters"]["model_type"] == "float32"
    got = np.array(body["outputs"][0]["data"], np.float32).reshape(len(windows), -1)
    np.testing.assert_array_equal(got, platform_scores(har_model, windows, "float32"))


# -- v2 gRPC -----------------------------------------------------------------------------------
def test_v2_grpc_equal_platform_scores(server: Server, har_model: Trained) -> None:
    windows = held_out_windows(har_model)
    expected = platform_scores(har_model, windows)
    stub = grpc_stub(server)
    req = pb.ModelInferRequest(model_name=server.name, inputs=[Tensor(
        name="x", datatype="FP32", shape=[len(windows), WINDOW * 3],
        contents=pb.InferTensorContents(fp32_contents=windows.ravel().tolist()))])
    resp = InferResponse.from_grpc(stub.ModelInfer(req, timeout=30))
    np.testing.assert_array_equal(resp.get_output_by_name("scores").as_numpy(), expected)
    assert resp.parameters["model_type"].string_param == "int8"
    assert resp.parameters["inference_time_us"].int64_param > 0
    # a raw CSV file as BYTES (no base64 over gRPC)
    path = har_model.files[1]
    req = pb.ModelInferRequest(model_name=server.name, inputs=[Tensor(
        name="file", datatype="BYTES", shape=[1],
        contents=pb.InferTensorContents(bytes_contents=[path.read_bytes()]))])
    resp = InferResponse.from_grpc(stub.ModelInfer(req, timeout=30))
    np.testing.assert_array_equal(resp.get_output_by_name("scores").as_numpy(),
                                  platform_scores(har_model, csv_windows(path)))


# -- bad input ---------------------------------------------------------------------------------
def test_bad_input_is_refused_and_the_server_keeps_serving(server: Server,
                                                           har_model: Trained) -> None:
    v1, v2 = f"/v1/models/{server.name}:predict", f"/v2/models/{server.name}/infer"
    cases = [
        (v1, {"instances": [[[1.0, 2.0, 3.0]] * 10]}, "[52, 3]"),          # too short window
        (v1, {"instances": "not a list"}, "instances"),
        (v1, {"instances": ["%%% not base64 %%%"]}, "base64"),
        (v1, {"instances": [base64.b64encode(b"RIFF\x10\x00\x00\x00WAVEjunkjunk").decode()]},
         "WAV"),
        (v1, {"instances": [{"b64": base64.b64encode(b"a,b\n1,2\n").decode(),
                             "content_type": "text/csv"}]}, "axes"),
        (v2, {"inputs": [{"name": "x", "shape": [2, 7], "datatype": "FP32",
                          "data": list(range(14))}]}, "[52, 3]"),
        (v2, {"parameters": {"model_type": "int4"}, "inputs": [
            {"name": "x", "shape": [WINDOW, 3], "datatype": "FP32", "data": [0.0] * 156}]},
         "model_type"),
    ]
    for path, body, needle in cases:
        status, reply = server.request("POST", path, body)
        assert status == 400, (body, reply)
        assert needle in reply["error"], reply
    assert server.request("POST", "/v1/models/other:predict", {"instances": [[0.0] * 156]}
                          )[0] == 404
    assert server.request("POST", "/v2/models/other/infer", {"inputs": [
        {"name": "x", "shape": [1, 156], "datatype": "FP32", "data": [0.0] * 156}]})[0] == 404
    stub = grpc_stub(server)
    bad = pb.ModelInferRequest(model_name=server.name, inputs=[Tensor(
        name="x", datatype="FP32", shape=[3], contents=pb.InferTensorContents(
            fp32_contents=[1.0, 2.0, 3.0]))])
    with pytest.raises(grpc.RpcError) as exc:
        stub.ModelInfer(bad, timeout=30)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "[52, 3]" in exc.value.details()
    bad.model_name = "other"
    with pytest.raises(grpc.RpcError) as exc:
        stub.ModelInfer(bad, timeout=30)
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    # still serving, same answers
    windows = held_out_windows(har_model, 1)
    status, body = server.request("POST", v1, {"instances": [windows[0].tolist()]})
    assert status == 200 and server.proc.poll() is None
    np.testing.assert_array_equal(
        score_rows([body["predictions"][0]["scores"]], har_model.bundle.labels),
        platform_scores(har_model, windows))


# -- the platform's live classification ----------------------------------------------------------
def test_v2_scores_equal_the_platform_classify(server: Server, har_model: Trained) -> None:
    """The model served by KServe and the platform's Classify path
    (tinyforge.training.classify.LoadedModel, behind `tinyforge classify` / the Classify API)
    give the same per-window and mean scores for the same sample file."""
    try:
        from tinyforge.training.classify import LoadedModel
        from tinyforge.training.store import FLOAT32_FILE, INT8_FILE, ModelFiles
    except ImportError as e:
        pytest.skip(f"the platform's classify library is not available: {e}")
    b = har_model.bundle
    stored = ModelFiles(1, 1, {
        "task": "classification", "labels": list(b.labels), "impulse": b.impulse.to_dict(),
        "input_blocks": ["spectral"], "feature_shape": [int(TFLiteModel(b.model_int8).input_size)],
    }, {INT8_FILE: b.model_int8, FLOAT32_FILE: b.model_float32})
    path = har_model.files[2]
    values = np.loadtxt(path, delimiter=",", dtype=np.float32)
    envelope = json.dumps({"protected": {"ver": "v1", "alg": "none"}, "signature": "0" * 64,
                           "payload": {"device_type": "test", "interval_ms": 1000.0 / FS,
                                       "sensors": [{"name": a, "units": "mg"} for a in AXES],
                                       "values": values.tolist()}}).encode()
    for use_float, model_type in ((False, "int8"), (True, "float32")):
        platform = LoadedModel(stored).classify_bytes(envelope, use_float=use_float)
        req = pb.ModelInferRequest(
            model_name=server.name, inputs=[Tensor(
                name="file", datatype="BYTES", shape=[1],
                contents=pb.InferTensorContents(bytes_contents=[envelope]))],
            parameters={"model_type": pb.InferParameter(string_param=model_type)})
        resp = InferResponse.from_grpc(grpc_stub(server).ModelInfer(req, timeout=30))
        got = resp.get_output_by_name("scores").as_numpy()
        np.testing.assert_array_equal(got, np.array([w.scores for w in platform.windows],
                                                    np.float32))
        np.testing.assert_allclose(got.mean(axis=0), platform.scores, rtol=1e-6)
        assert list(resp.get_output_by_name("start_ms").as_numpy()) == pytest.approx(
            [w.start_ms for w in platform.windows])
