"""Read an int8 ``.tflite`` flatbuffer into the typed IR (:mod:`tinyforge.compiler.ir`).

Only what the C kernels implement is accepted; anything else raises ``InvalidArgument``
naming the operator, its index and the supported set, before any code is generated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyforge.compiler.ir import Graph, Op, Quant, Tensor
from tinyforge.errors import InvalidArgument

SUPPORTED_OPS = (
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE",
    "FULLY_CONNECTED", "LOGISTIC", "MAX_POOL_2D", "MEAN", "MUL", "PAD", "PADV2", "QUANTIZE",
    "RESHAPE", "SOFTMAX", "SQUEEZE", "TANH",
)
FUSED_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}
_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool",
          7: "int16", 9: "int8"}
_NP = {"float32": np.float32, "int32": np.int32, "uint8": np.uint8, "int64": np.int64,
       "int16": np.int16, "int8": np.int8}
_PADDING = {0: "SAME", 1: "VALID"}


def _builtin_names() -> dict[int, str]:
    from tflite.BuiltinOperator import BuiltinOperator

    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


def _options(name: str, op) -> dict:
    """Decode the builtin options the kernels need into a plain dict."""
    import tflite

    table = op.BuiltinOptions()

    def load(cls):
        o = cls()
        o.Init(table.Bytes, table.Pos)
        return o

    if table is None:
        return {}
    if name == "CONV_2D":
        o = load(tflite.Conv2DOptions)
        return {"padding": _PADDING[o.Padding()], "stride": (o.StrideH(), o.StrideW()),
                "dilation": (o.DilationHFactor(), o.DilationWFactor()),
                "activation": o.FusedActivationFunction()}
    if name == "DEPTHWISE_CONV_2D":
        o = load(tflite.DepthwiseConv2DOptions)
        return {"padding": _PADDING[o.Padding()], "stride": (o.StrideH(), o.StrideW()),
                "dilation": (o.DilationHFactor(), o.DilationWFactor()),
                "depth_multiplier": o.DepthMultiplier(),
                "activation": o.FusedActivationFunction()}
    if name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        o = load(tflite.Pool2DOptions)
        return {"padding": _PADDING[o.Padding()], "stride": (o.StrideH(), o.StrideW()),
                "filter": (o.FilterHeight(), o.FilterWidth()),
                "activation": o.FusedActivationFunction()}
    if name == "FULLY_CONNECTED":
        o = load(tflite.FullyConnectedOptions)
        return {"activation": o.FusedActivationFunction(), "keep_num_dims": o.KeepNumDims(),
                "weights_format": o.WeightsFormat()}
    if name in ("ADD", "MUL"):
        o = load(tflite.AddOptions if name == "ADD" else tflite.MulOptions)
        return {"activation": o.FusedActivationFunction()}
    if name == "SOFTMAX":
        return {"beta": load(tflite.SoftmaxOptions).Beta()}
    if name == "CONCATENATION":
        o = load(tflite.ConcatenationOptions)
        return {"axis": o.Axis(), "activation": o.FusedActivationFunction()}
    if name == "MEAN":
        return {"keep_dims": bool(load(tflite.ReducerOptions).KeepDims())}
    return {}


def load_tflite(source: str | Path | bytes) -> Graph:
    """Parse a ``.tflite`` model (path or bytes) into a :class:`Graph`.

    Raises InvalidArgument(field="model") for a corrupt file, several subgraphs, or an
    operator / dtype / option outside the supported set.
    """
    import tflite

    if isinstance(source, bytes):
        buf = source
    else:
        path = Path(source)
        if not path.is_file():
            raise InvalidArgument(f"model file {path} does not exist", field="model")
        buf = path.read_bytes()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise InvalidArgument("model is not a TFLite flatbuffer (no 'TFL3' identifier)",
                              field="model")
    try:
        model = tflite.Model.GetRootAsModel(buf, 0)
        n_sub = model.SubgraphsLength()
    except Exception as exc:  # corrupt flatbuffer
        raise InvalidArgument(f"model flatbuffer cannot be parsed: {exc}", field="model") from exc
    if n_sub != 1:
        raise InvalidArgument(f"model has {n_sub} subgraphs; only 1 is supported", field="model")
    sg = model.Subgraphs(0)
    names = _builtin_names()

    tensors: list[Tensor] = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        dtype = _TYPES.get(t.Type(), f"type{t.Type()}")
        shape = [int(d) for d in t.ShapeAsNumpy()] if t.ShapeLength() else []
        quant = None
        q = t.Quantization()
        if q is not None and q.ScaleLength() > 0:
            quant = Quant(scales=[float(s) for s in q.ScaleAsNumpy()],
                          zero_points=[int(z) for z in q.ZeroPointAsNumpy()],
                          axis=int(q.QuantizedDimension()))
        data = None
        b = model.Buffers(t.Buffer())
        if b is not None and b.DataLength() > 0 and dtype in _NP:
            raw = b.DataAsNumpy().tobytes()
            data = np.frombuffer(raw, dtype=_NP[dtype]).reshape(shape).copy()
        elif b is not None and b.Offset() > 1:  # large-model external buffer
            raw = buf[b.Offset(): b.Offset() + b.Size()]
            data = np.frombuffer(raw, dtype=_NP[dtype]).reshape(shape).copy()
        name = t.Name().decode() if t.Name() else f"t{i}"
        tensors.append(Tensor(index=i, name=name, shape=shape, dtype=dtype, quant=quant,
                              data=data))

    ops: list[Op] = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = names.get(builtin, f"BUILTIN_{builtin}")
        if builtin == 32:  # CUSTOM
            name = f"CUSTOM({code.CustomCode().decode()})"
        ins = [int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(x) for x in op.OutputsAsNumpy()] if op.OutputsLength() else []
        if name not in SUPPORTED_OPS:
            raise InvalidArgument(
                f"operator #{i} {name} is not supported; supported operators: "
                f"{', '.join(SUPPORTED_OPS)}", field="model")
        ops.append(Op(index=i, name=name, inputs=ins, outputs=outs, options=_options(name, op)))

    graph = Graph(tensors=tensors, ops=ops,
                  inputs=[int(x) for x in sg.InputsAsNumpy()],
                  outputs=[int(x) for x in sg.OutputsAsNumpy()])
    validate(graph)
    return graph


def _fail(op: Op, what: str) -> InvalidArgument:
    return InvalidArgument(f"operator #{op.index} {op.name}: {what}", field="model")


def validate(graph: Graph) -> None:
    """Check dtypes, quantization and options of every op against what the kernels support."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise InvalidArgument(
            f"model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
            "exactly 1 of each is supported", field="model")
    for op in graph.ops:
        act = op.options.get("activation", 0)
        if act not in (0, 1, 2, 3):
            raise _fail(op, f"fused activation {act} is not supported; supported: "
                            "NONE, RELU, RELU_N1_TO_1, RELU6")
        acts = [graph.t(i) for i in op.inputs if i >= 0]
        outs = [graph.t(i) for i in op.outputs]
        if op.name == "QUANTIZE":
            ok = acts[0].dtype in ("float32", "int8") and outs[0].dtype == "int8"
        elif op.name == "DEQUANTIZE":
            ok = acts[0].dtype == "int8" and outs[0].dtype == "float32"
        elif op.name in ("RESHAPE", "SQUEEZE"):
            ok = acts[0].dtype == outs[0].dtype
        else:
            data_ins = [t for t in acts if not t.is_const] + outs
            ok = all(t.dtype == "int8" for t in data_ins)
        if not ok:
            dt = [t.dtype for t in acts] + ["->"] + [t.dtype for t in outs]
            raise _fail(op, f"tensor types {' '.join(dt)} are not supported; supported: "
                            "int8 activations (QUANTIZE float32/int8->int8, "
                            "DEQUANTIZE int8->float32)")
        for t in acts + outs:
            if t.dtype == "int8" and t.quant is None:
                raise _fail(op, f"tensor '{t.name}' is int8 but has no quantization parameters")
        if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            w = graph.t(op.inputs[1])
            if w.dtype != "int8" or not w.is_const:
                raise _fail(op, f"weights must be constant int8, got {w.dtype}")
            bias = op.inputs[2] if len(op.inputs) > 2 else -1
            if bias >= 0 and graph.t(bias).dtype != "int32":
                raise _fail(op, "bias must be int32")
            if op.name == "FULLY_CONNECTED" and op.options.get("weights_format", 0) != 0:
                raise _fail(op, "only the DEFAULT weights format is supported")
            if op.name == "CONV_2D" and graph.t(op.inputs[0]).shape[-1] != w.shape[-1]:
                raise _fail(op, "grouped convolution (filter depth != input depth) "
                                "is not supported")
        if op.name == "CONCATENATION":
            q0 = outs[0].quant
            for t in acts:
                if (t.quant.scale, t.quant.zero_point) != (q0.scale, q0.zero_point):
                    raise _fail(op, "all inputs must share the output's scale and zero point")
            if act != 0:
                raise _fail(op, "fused activation on CONCATENATION is not supported")
        if op.name in ("ADD", "MUL", "CONCATENATION", "MEAN", "PAD", "PADV2") and any(
                len(t.shape) > (6 if op.name in ("MEAN", "PAD", "PADV2") else 4)
                for t in acts + outs):
            raise _fail(op, "tensors of rank > 4 are not supported")
        if op.name == "SOFTMAX" and outs[0].quant and (
                outs[0].quant.scale != 1.0 / 256 or outs[0].quant.zero_point != -128):
            raise _fail(op, "int8 output must have scale 1/256 and zero point -128")
