"""``tflite``: the int8 and float32 ``.tflite`` files with ``metadata.json`` (labels, impulse,
input/output shapes and quantisation, feature layout, sha256 of each file) and a README.

Check: the packaged files are re-loaded with LiteRT; their input/output sizes must match the
impulse's feature count and the labels, and the packaged int8 model, run on the Python DSP
features of the test windows, must reproduce the platform's predictions.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from tinyforge.deploy.context import BuildContext
from tinyforge.deploy.reference import impulse_features
from tinyforge.deploy.sources import impulse_summary, render, template, write
from tinyforge.deploy.verification import compare_predictions, max_windows
from tinyforge.errors import InvalidArgument


def _io(model: bytes) -> dict[str, Any]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model)

    def desc(d: dict) -> dict[str, Any]:
        scale, zp = d["quantization"]
        out: dict[str, Any] = {"shape": [int(v) for v in d["shape"]],
                               "dtype": np.dtype(d["dtype"]).name}
        if scale:
            out.update(scale=float(scale), zero_point=int(zp))
        return out

    return {"input": desc(it.get_input_details()[0]), "output": desc(it.get_output_details()[0])}


def build(ctx: BuildContext) -> None:
    """Fill ``ctx.stage`` with the model files, metadata.json and README."""
    b = ctx.bundle
    files = {"int8": ("model_int8.tflite", b.model_int8)}
    if b.model_float32 is not None:
        files["float32"] = ("model_float32.tflite", b.model_float32)
    n_features = sum(int(np.prod(_block_shape(ctx, name)))
                     for name in _feature_order(ctx))
    meta: dict[str, Any] = {
        "name": b.name, "labels": list(b.labels), "impulse": b.impulse.to_dict(),
        "features": {"count": n_features, "blocks": _feature_order(ctx),
                     "layout": "concatenation of each block's flattened features"},
        "models": {},
    }
    for kind, (fname, data) in files.items():
        io = _io(data)
        size_in = int(np.prod(io["input"]["shape"]))
        size_out = int(np.prod(io["output"]["shape"]))
        if size_in != n_features or size_out != len(b.labels):
            raise InvalidArgument(f"{fname} takes {size_in} inputs / gives {size_out} outputs; "
                                  f"the impulse has {n_features} features and {len(b.labels)} "
                                  "labels", field=f"model_{kind}")
        write(ctx.stage / fname, data)
        meta["models"][kind] = {"file": fname, "bytes": len(data),
                                "sha256": hashlib.sha256(data).hexdigest(), **io}
    write(ctx.stage / "metadata.json", json.dumps(meta, indent=2, sort_keys=True))
    if b.test_windows is not None:
        from tinyforge.quantize.runner import TFLiteModel

        indices = list(range(max_windows(ctx)))
        feats = impulse_features(b.impulse, np.asarray(b.test_windows)[indices])
        packaged = (ctx.stage / "model_int8.tflite").read_bytes()
        preds = np.argmax(TFLiteModel(packaged).predict(feats), axis=1)
        compare_predictions(ctx, indices, [int(p) for p in preds],
                            "LiteRT (the packaged int8 file)")
    write(ctx.stage / "README.md", render(template("tflite/README.md"), **impulse_summary(ctx),
                                          N_FEATURES=n_features,
                                          FLOAT=("`model_float32.tflite` (float32)"
                                                 if "float32" in files else "no float32 model")))


def _feature_order(ctx: BuildContext) -> list[str]:
    imp = ctx.bundle.impulse
    return list(imp.learning[0].inputs) if imp.learning else [b.name for b in imp.processing]


def _block_shape(ctx: BuildContext, name: str) -> tuple[int, ...]:
    from tinyforge.dsp.registry import get_block
    from tinyforge.impulse import ImageInput

    imp = ctx.bundle.impulse
    b = imp.processing_block(name)
    fs = 0.0 if isinstance(imp.input, ImageInput) else float(imp.input.frequency_hz)
    _, spec = get_block(b.block).check(b.params, fs, imp.input.window_shape(imp.block_axes(b)))
    return tuple(spec.shape)
