"""``ImpulseModel``: a ``kserve.Model`` that runs the whole impulse, DSP included.

Requests (the model type is ``int8`` by default; ``"parameters": {"model_type": "float32"}``
on the request picks the float model):

v1 ``POST /v1/models/NAME:predict`` (``Content-Type: application/json``)
    ``{"instances": [...]}``, each instance one of: a raw window as nested lists ``[T][axes]``
    (images ``[H][W][C]``) or flat; a base64 string of a sample file (WAV, CSV, EI JSON/CBOR,
    JPEG/PNG); ``{"b64": "...", "content_type": ..., "filename": ...}``. A body with a
    non-JSON content type (e.g. ``audio/wav``) is one sample file.
    Reply ``{"predictions": [...], "parameters": {...}}``; a raw window gives
    ``{"label", "scores": {label: p}, ["anomaly"]}``, a file the same for the mean scores of
    its windows plus ``"windows": [{"start_ms", "label", "scores", ["anomaly"]}]``.

v2 ``POST /v2/models/NAME/infer`` and gRPC ``ModelInfer`` (open inference protocol)
    One input tensor: numeric ``[N, T*axes]``, ``[N, T, axes]`` or one window ``[T, axes]``
    (any numeric datatype), or ``BYTES`` ``[N]`` of sample files (raw bytes over gRPC/binary
    REST; base64 strings in JSON). Outputs, one row per window: ``scores`` FP32
    ``[W, labels]``, ``label`` BYTES ``[W]``, ``source`` INT32 ``[W]`` (index of the input
    row or file it came from), ``start_ms`` FP32 ``[W]``, ``anomaly`` FP32 ``[W]`` (when the
    deployment has an anomaly scorer).

Both reply parameters hold ``labels`` (JSON list), ``model_type``, ``windows``,
``dsp_time_us`` and ``inference_time_us``. Bad input raises ``kserve.errors.InvalidInput``
(HTTP 400 / gRPC INVALID_ARGUMENT) with a message naming the expected shape or the fault.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from tinyforge.errors import TinyForgeError
from tinyforge.serving.kserve_compat import import_kserve
from tinyforge.serving.model_dir import load_model_source
from tinyforge.serving.runtime import Classification, ImpulseRuntime

kserve = import_kserve()
from kserve.errors import InvalidInput, ModelNotReady  # noqa: E402
from kserve.protocol.infer_type import (  # noqa: E402
    InferOutput,
    InferRequest,
    InferResponse,
    to_http_parameters,
)

_NUMERIC = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16",
            "UINT32", "UINT64"}


def _b64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidInput(f"{where}: not valid base64 ({e}); send sample files "
                           "base64-encoded") from None


class ImpulseModel(kserve.Model):
    """Serves one impulse from a model directory or artifact zip (``model_path``)."""

    def __init__(self, name: str, model_path: str | Path, model_type: str | None = None) -> None:
        super().__init__(name)
        self.model_path = Path(model_path)
        self.model_type = model_type
        self.runtime: ImpulseRuntime | None = None

    def load(self) -> bool:
        """Read and check the model files, load the LiteRT models. Raises TinyForgeError."""
        self.runtime = ImpulseRuntime(load_model_source(self.model_path))
        if self.model_type is not None and self.model_type not in self.runtime.models:
            raise InvalidInput(f"--model-type {self.model_type}: the deployment has "
                               f"{', '.join(self.runtime.models)}")
        self.ready = True
        return self.ready

    # -- metadata (GET /v2/models/NAME) --------------------------------------------------------
    def get_input_types(self) -> list[dict[str, Any]]:
        rt = self._rt()
        return [{"name": "input", "datatype": "FP32", "shape": [-1, rt.window_size]},
                {"name": "input", "datatype": "BYTES", "shape": [-1]}]

    def get_output_types(self) -> list[dict[str, Any]]:
        rt = self._rt()
        out = [{"name": "scores", "datatype": "FP32", "shape": [-1, len(rt.labels)]},
               {"name": "label", "datatype": "BYTES", "shape": [-1]},
               {"name": "source", "datatype": "INT32", "shape": [-1]},
               {"name": "start_ms", "datatype": "FP32", "shape": [-1]}]
        if rt.files.anomaly is not None:
            out.append({"name": "anomaly", "datatype": "FP32", "shape": [-1]})
        return out

    def _rt(self) -> ImpulseRuntime:
        if self.runtime is None:
            raise ModelNotReady(self.name)
        return self.runtime

    # -- inference ----------------------------------------------------------------------------
    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        """v1 dict / raw file bytes → v1 dict; v2 InferRequest → InferResponse."""
        try:
            if isinstance(payload, InferRequest):
                return self._predict_v2(payload)
            return self._predict_v1(payload, headers or {})
        except TinyForgeError as e:
            where = f" ({e.field})" if e.field else ""
            raise InvalidInput(f"{e.message}{where}") from None

    def _model_type(self, params: Any) -> str | None:
        if params:
            mt = to_http_parameters(params).get("model_type")
            if mt is not None:
                return str(mt)
        return self.model_type

    def _predict_v1(self, payload: Any, headers: dict[str, str]) -> dict[str, Any]:
        rt = self._rt()
        if isinstance(payload, bytes | bytearray):  # non-JSON body: one sample file
            ctype = {k.lower(): v for k, v in headers.items()}.get("content-type")
            w, st = rt.windows_from_file(bytes(payload), content_type=ctype)
            res = rt.classify(w, model_type=self.model_type, source=np.zeros(len(w), int),
                              start_ms=st)
            return {"predictions": [self._v1_item(res, 0, True)], "parameters": _params(res)}
        if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
            raise InvalidInput('v1 request must be {"instances": [...]} (a list)')
        instances = payload["instances"]
        if not instances:
            raise InvalidInput('"instances" is empty')
        params = payload.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise InvalidInput('"parameters" must be an object')
        windows, source, starts, is_file = [], [], [], []
        for i, inst in enumerate(instances):
            data, ctype, fname = None, None, None
            if isinstance(inst, str):
                data = _b64(inst, f"instances[{i}]")
            elif isinstance(inst, dict):
                if not isinstance(inst.get("b64"), str):
                    raise InvalidInput(f'instances[{i}]: an object instance must be '
                                       '{"b64": "<base64 file>"}')
                data = _b64(inst["b64"], f"instances[{i}].b64")
                ctype, fname = inst.get("content_type"), inst.get("filename")
            try:
                if data is not None:
                    w, st = rt.windows_from_file(data, content_type=ctype, filename=fname)
                else:
                    w, st = rt.windows_from_array(inst, batched=False), np.zeros(1)
            except TinyForgeError as e:
                raise InvalidInput(f"instances[{i}]: {e.message}") from None
            windows.append(w)
            source += [i] * len(w)
            starts.append(st)
            is_file.append(data is not None)
        res = rt.classify(np.concatenate(windows), model_type=self._model_type(params),
                          source=np.array(source), start_ms=np.concatenate(starts))
        preds = [self._v1_item(res, i, is_file[i]) for i in range(len(instances))]
        return {"predictions": preds, "parameters": _params(res)}

    @staticmethod
    def _v1_item(res: Classification, i: int, is_file: bool) -> dict[str, Any]:
        rows = np.flatnonzero(res.source == i)

        def one(scores: np.ndarray, anomaly: float | None) -> dict[str, Any]:
            d: dict[str, Any] = {
                "label": res.labels[int(np.argmax(scores))],
                "scores": {lab: float(s) for lab, s in zip(res.labels, scores, strict=True)},
            }
            if anomaly is not None:
                d["anomaly"] = anomaly
            return d

        def anom(rows_: np.ndarray) -> float | None:
            return None if res.anomaly is None else float(res.anomaly[rows_].mean())

        item = one(res.scores[rows].mean(axis=0), anom(rows))
        if is_file:
            item["windows"] = [{"start_ms": float(res.start_ms[r]),
                                **one(res.scores[r], anom(np.array([r])))} for r in rows]
        return item

    def _predict_v2(self, req: InferRequest) -> InferResponse:
        rt = self._rt()
        if len(req.inputs) != 1:
            raise InvalidInput(f"expected one input tensor, got {len(req.inputs)}: a numeric "
                               f"tensor of {rt.expected_shape_text()} rows, or BYTES sample files")
        inp = req.inputs[0]
        if inp.datatype == "BYTES":
            items = np.asarray(inp.as_numpy(), dtype=object).reshape(-1)
            windows, source, starts = [], [], []
            for i, item in enumerate(items):
                data = _b64(item, f"input {inp.name}[{i}]") if isinstance(item, str) \
                    else bytes(item)
                try:
                    w, st = rt.windows_from_file(data)
                except TinyForgeError as e:
                    raise InvalidInput(f"input {inp.name}[{i}]: {e.message}") from None
                windows.append(w)
                source += [i] * len(w)
                starts.append(st)
            if not windows:
                raise InvalidInput(f"input {inp.name} holds no file")
            res = rt.classify(np.concatenate(windows), model_type=self._model_type(req.parameters),
                              source=np.array(source), start_ms=np.concatenate(starts))
        elif inp.datatype in _NUMERIC:
            try:
                x = inp.as_numpy()
            except (ValueError, TypeError) as e:
                raise InvalidInput(f"input {inp.name}: data does not match shape "
                                   f"{list(inp.shape)} ({e})") from None
            try:
                w = rt.windows_from_array(x)
            except TinyForgeError as e:
                raise InvalidInput(f"input {inp.name}: {e.message}") from None
            res = rt.classify(w, model_type=self._model_type(req.parameters))
        else:
            raise InvalidInput(f"input {inp.name}: datatype {inp.datatype} is not supported; "
                               "send FP32 (or another numeric type) windows or BYTES files")
        n = len(res.scores)
        outs = [
            InferOutput("scores", [n, len(res.labels)], "FP32",
                        res.scores.astype(np.float32).reshape(-1).tolist()),
            InferOutput("label", [n], "BYTES", res.top_labels),
            InferOutput("source", [n], "INT32", [int(s) for s in res.source]),
            InferOutput("start_ms", [n], "FP32", [float(s) for s in res.start_ms]),
        ]
        if res.anomaly is not None:
            outs.append(InferOutput("anomaly", [n], "FP32", res.anomaly.tolist()))
        return InferResponse(response_id=req.id or str(uuid.uuid4()), model_name=self.name,
                             infer_outputs=outs, parameters=_params(res))


def _params(res: Classification) -> dict[str, Any]:
    """Reply parameters (open-inference parameters must be str, int or bool)."""
    return {"labels": json.dumps(list(res.labels)), "model_type": res.model_type,
            "windows": int(len(res.scores)), "dsp_time_us": int(res.dsp_us),
            "inference_time_us": int(res.inference_us)}
