"""Run a TFLite model (float32 or int8) on float feature batches with LiteRT.

Inputs are quantized with the model's own input scale/zero point
(``q = clamp(round(x / scale) + zero_point, -128, 127)``) and int8 outputs dequantized
(``(q - zero_point) * scale``), so both forms take and return floats. The default XNNPACK
delegate is disabled: the built-in kernels are what the exported C code must match.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyforge.errors import InvalidArgument


class TFLiteModel:
    """A loaded ``.tflite`` model with one input ``[1, ...]`` and one output."""

    def __init__(self, model_bytes: bytes) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        if len(model_bytes) < 8 or model_bytes[4:8] != b"TFL3":
            raise InvalidArgument("model is not a TFLite flatbuffer (no TFL3 identifier)",
                                  field="model")
        try:
            self._it = Interpreter(
                model_content=bytes(model_bytes),
                experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            )
            self._it.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise InvalidArgument(f"TFLite model cannot be loaded: {e}", field="model") from None
        self._in: dict[str, Any] = self._it.get_input_details()[0]
        self._out: dict[str, Any] = self._it.get_output_details()[0]
        self.input_shape = tuple(int(d) for d in self._in["shape"])
        self.input_size = int(np.prod(self.input_shape[1:]))
        self.input_dtype = np.dtype(self._in["dtype"])
        self.output_dtype = np.dtype(self._out["dtype"])

    @property
    def is_quantized(self) -> bool:
        return self.input_dtype == np.int8

    def op_names(self) -> set[str]:
        """Builtin op names in the graph (e.g. ``{'FULLY_CONNECTED', 'SOFTMAX'}``)."""
        return {d["op_name"] for d in self._it._get_ops_details()}

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """float ``[F]`` → the model's input dtype (int8 with its scale/zero point)."""
        if not self.is_quantized:
            return x.astype(self.input_dtype)
        scale, zp = self._in["quantization"]
        q = np.round(x / scale) + zp
        return np.clip(q, -128, 127).astype(np.int8)

    def predict(self, x: Any) -> np.ndarray:
        """Float outputs ``[N, outputs]`` for features ``[N, F]`` (or ``[N, *input shape]``)."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 0 or x.shape[0] == 0:
            raise InvalidArgument("no samples to run the model on", field="features")
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.input_size:
            raise InvalidArgument(
                f"features have {flat.shape[1]} values per sample, the model expects "
                f"{self.input_size} (input shape {list(self.input_shape)})",
                field="features",
            )
        in_idx, out_idx = self._in["index"], self._out["index"]
        oscale, ozp = self._out["quantization"]
        outs = []
        for row in flat:
            self._it.set_tensor(in_idx, self.quantize_input(row).reshape(self.input_shape))
            self._it.invoke()
            outs.append(self._it.get_tensor(out_idx).reshape(-1).copy())
        out = np.stack(outs).astype(np.float32)
        if self.output_dtype == np.int8:
            out = (out - ozp) * oscale
        return out
