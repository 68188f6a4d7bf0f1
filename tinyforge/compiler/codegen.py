"""Code generator: IR + memory plan -> ``model.c`` / ``model.h`` (plain C99, no interpreter).

Weights, biases, per-channel multipliers/shifts and lookup tables become ``const`` arrays;
every intermediate tensor lives at a fixed offset of one static arena; ``<prefix>_invoke``
is one kernel call per operator. RESHAPE/SQUEEZE are zero-copy (the output aliases the input),
and element-wise ops whose input dies at that op run in place.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tinyforge.compiler.importer import FUSED_ACTIVATIONS
from tinyforge.compiler.ir import Graph, Op, Tensor
from tinyforge.compiler.planner import Buffer, Plan, cluster_extent, clusters, plan_memory
from tinyforge.compiler.quant import (
    activation_range,
    c_double,
    c_float,
    lut_int8,
    quantize_multiplier,
    softmax_table,
)
from tinyforge.errors import InvalidArgument

NN_DIR = Path(__file__).resolve().parents[1] / "csdk" / "nn"
KERNEL_FILES = {
    "CONV_2D": ["conv2d.c", "conv2d_dsp.c", "tf_nn_dsp.h", "conv_inplace.c"],
    "DEPTHWISE_CONV_2D": ["dwconv2d.c", "dwconv2d_dsp.c", "tf_nn_dsp.h",
                          "conv_inplace.c"],
    "FULLY_CONNECTED": ["fully_connected.c", "fully_connected_dsp.c", "tf_nn_dsp.h"],
    "AVERAGE_POOL_2D": ["avgpool.c"], "MAX_POOL_2D": ["maxpool.c"], "ADD": ["add.c"],
    "MUL": ["mul.c"], "MEAN": ["mean.c"], "PAD": ["pad.c"], "PADV2": ["pad.c"],
    "SOFTMAX": ["softmax.c"], "LOGISTIC": ["logistic.c"], "TANH": ["tanh.c"],
    "CONCATENATION": ["concat.c"], "QUANTIZE": ["quantize.c"], "DEQUANTIZE": ["dequantize.c"],
    "RESHAPE": [], "SQUEEZE": [],
}
ALIAS_OPS = ("RESHAPE", "SQUEEZE")
INPLACE_OPS = ("ADD", "MUL", "LOGISTIC", "TANH", "QUANTIZE")
CTYPE = {"int8": "int8_t", "float32": "float", "int32": "int32_t"}


@dataclass
class Compiled:
    """Result of :func:`generate`: sources written, plan, and static facts about the model."""

    out_dir: Path
    sources: list[Path]
    plan: Plan
    macs: int
    ops: list[str]
    weight_bytes: int
    input_shape: list[int]
    output_shape: list[int]
    input_dtype: str
    output_dtype: str
    input_quant: tuple[float, int] | None
    output_quant: tuple[float, int] | None
    prefix: str
    notes: list[str] = field(default_factory=list)

    @property
    def input_bytes(self) -> int:
        return int(np.prod(self.input_shape)) * (4 if self.input_dtype == "float32" else 1)

    @property
    def output_bytes(self) -> int:
        return int(np.prod(self.output_shape)) * (4 if self.output_dtype == "float32" else 1)


class _Groups:
    """Union-find over tensor indices: tensors of one group share the same bytes."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, keep: int, other: int) -> None:
        self.parent[self.find(other)] = self.find(keep)


def _c_array(ctype: str, name: str, values, per_line: int = 24) -> str:
    vals = [str(int(v)) for v in np.asarray(values).ravel()]
    if ctype == "int32_t":
        vals = [f"{v}" if int(v) != -(2**31) else "(-2147483647 - 1)" for v in vals]
    lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    body = ",\n    ".join(lines) if lines else "0"
    return f"static const {ctype} {name}[{max(len(vals), 1)}] = {{\n    {body}\n}};\n"


def _pad(padding: str, stride: int, dil: int, in_size: int, k: int, out_size: int) -> int:
    if padding == "VALID":
        return 0
    eff = (k - 1) * dil + 1
    total = max((out_size - 1) * stride + eff - in_size, 0)
    return total // 2


def _nhwc(shape: list[int]) -> list[int]:
    if len(shape) != 4:
        raise ValueError(shape)
    return shape


class _Emitter:
    def __init__(self, graph: Graph, prefix: str) -> None:
        self.g = graph
        self.p = prefix
        self.decls: list[str] = []
        self.const_names: dict[int, str] = {}
        self.weight_bytes = 0
        self.fold_bias = False
        self.kscratch: dict[int, str] = {}  # op index -> C expression of its DSP scratch
        self.folded: set[int] = set()  # bias tensors replaced by a folded bias

    def kbias(self, key: str, bias: Tensor | None, in_offset: int, wsum: np.ndarray) -> str:
        """Folded bias for the DSP paths, wrapped to int32 like the kernels' arithmetic."""
        if not self.fold_bias:
            return "0"
        b = np.zeros(len(wsum), np.int64) if bias is None else bias.data.astype(np.int64)
        v = b + in_offset * wsum.astype(np.int64)
        v = (v + 2**31) % 2**32 - 2**31
        name = f"{self.p}_{key}_kbias"
        self.decls.append(_c_array("int32_t", name, v))
        return name

    def const(self, t: Tensor, ctype: str) -> str:
        if t.index not in self.const_names:
            name = f"{self.p}_c{t.index}"
            self.decls.append(_c_array(ctype, name, t.data))
            self.const_names[t.index] = name
            self.weight_bytes += t.data.size * t.data.itemsize
        return self.const_names[t.index]

    def bias(self, b: Tensor | None, kbias: str) -> str:
        """The bias array, or "0" when the folded bias replaces it (the portable kernels
        accept either). A folded bias still counts as raw weight bytes: it is the model's
        bias in another form, of the same size."""
        if b is None:
            return "0"
        if kbias != "0":
            if b.index not in self.folded:
                self.folded.add(b.index)
                self.weight_bytes += b.data.size * b.data.itemsize
            return "0"
        return self.const(b, "int32_t")

    def multipliers(self, key: str, reals: list[float]) -> tuple[str, str, int]:
        """Per-channel Q31 multipliers and shifts; one entry when all channels share it."""
        ms, ss = zip(*(_multiplier(r) for r in reals), strict=True)
        per_channel = int(len(set(zip(ms, ss, strict=True))) > 1)
        if not per_channel:
            ms, ss = ms[:1], ss[:1]
        mn, sn = f"{self.p}_{key}_mult", f"{self.p}_{key}_shift"
        self.decls.append(_c_array("int32_t", mn, ms))
        self.decls.append(_c_array("int8_t", sn, ss))
        return mn, sn, per_channel


def generate(graph: Graph, out_dir: str | Path, prefix: str = "tf_model",
             fold_bias: bool = False) -> Compiled:
    """Plan memory and write ``model.c``, ``model.h`` and the used kernels under ``out_dir``.

    ``fold_bias`` also emits, per conv/FC layer, bias + input_offset * sum(weights) for the
    Cortex-M DSP fast paths (4 bytes per output channel of flash).
    Files are written to a temporary directory first and moved into place, so a failure
    leaves no partial output. Returns a :class:`Compiled` describing the result.
    """
    if not prefix.isidentifier():
        raise InvalidArgument(f"prefix {prefix!r} is not a C identifier", field="prefix")
    g = graph
    n_ops = len(g.ops)
    gin, gout = g.inputs[0], g.outputs[0]

    # 1. aliasing: RESHAPE/SQUEEZE outputs share their input's bytes.
    groups = _Groups(len(g.tensors))
    copies: dict[int, tuple[int, int]] = {}  # op index -> (src, dst) when aliasing is impossible
    for op in g.ops:
        if op.name in ALIAS_OPS:
            src, dst = op.inputs[0], op.outputs[0]
            bound = {groups.find(gin): "in", groups.find(gout): "out"}
            if {bound.get(groups.find(src)), bound.get(groups.find(dst))} == {"in", "out"}:
                copies[op.index] = (src, dst)
            else:
                groups.union(src, dst)

    def uses_of(group: int) -> tuple[int, int]:
        first, last = n_ops, -1
        for op in g.ops:
            for i in op.outputs:
                if groups.find(i) == group:
                    first = min(first, op.index)
            for i in op.inputs:
                if i >= 0 and groups.find(i) == group:
                    last = max(last, op.index)
        return first, last

    # 2. in-place element-wise ops: the output takes over an input that dies here.
    for op in g.ops:
        if op.name not in INPLACE_OPS:
            continue
        out = g.t(op.outputs[0])
        og = groups.find(out.index)
        if og in (groups.find(gin), groups.find(gout)):
            continue
        for i in op.inputs:
            if i < 0 or g.t(i).is_const:
                continue
            t = g.t(i)
            ig = groups.find(i)
            if ig in (groups.find(gin), groups.find(gout)) or t.nbytes != out.nbytes:
                continue
            if t.dtype != out.dtype:
                continue
            if uses_of(ig)[1] == op.index:
                groups.union(i, out.index)
                break

    # 3. buffers: one per non-constant, non-external group, plus scratch per op.
    buffers: list[Buffer] = []
    group_buf: dict[int, Buffer] = {}
    # The input lives in the arena (callers may write it there through <prefix>_input());
    # only the output is the caller's buffer.
    external = {groups.find(gout): "output"}
    in_group = groups.find(gin)  # if it is the output's group, invoke copies input there
    for t in g.tensors:
        if t.is_const:
            continue
        r = groups.find(t.index)
        if r in external or r in group_buf:
            continue
        first, last = uses_of(r)
        if r == in_group:
            first = 0  # written before the first op
        if last < 0 and first >= n_ops:
            continue  # unused tensor
        size = max(g.t(i).nbytes for i in range(len(g.tensors)) if groups.find(i) == r)
        b = Buffer(name=t.name, size=size, start=min(first, last), end=max(first, last))
        group_buf[r] = b
        buffers.append(b)
    # 3b. overlapped (in-place) convolutions: pin the output's buffer to the input's at the
    # offset found by _inplace_conv_plan, when that does not widen the pinned cluster.
    inplace_conv: dict[int, tuple[int, int]] = {}  # op index -> (delay, ring bytes)
    index_of = {id(b): n for n, b in enumerate(buffers)}
    for op in g.ops:
        cp = _inplace_conv_plan(g, op)
        if cp is None:
            continue
        ig, og = groups.find(op.inputs[0]), groups.find(op.outputs[0])
        if ig not in group_buf or og not in group_buf or group_buf[og].pin is not None:
            continue
        bi, bo = group_buf[ig], group_buf[og]
        if bi.end != op.index or bo.start != op.index or \
                bi.size != g.t(op.inputs[0]).nbytes or bo.size != g.t(op.outputs[0]).nbytes:
            continue
        if any(b.pin and b.pin[0] == index_of[id(bo)] for b in buffers):
            continue
        before = [c for c in clusters(buffers) if index_of[id(bi)] in (i for i, _ in c)][0]
        ext_before = cluster_extent(buffers, before)
        bo.pin = (index_of[id(bi)], cp[0])
        after = [c for c in clusters(buffers) if index_of[id(bi)] in (i for i, _ in c)][0]
        rel = dict(after)
        clash = any(
            buffers[x].start <= buffers[y].end and buffers[y].start <= buffers[x].end
            and rel[x] < rel[y] + buffers[y].size and rel[y] < rel[x] + buffers[x].size
            and not (buffers[x].pin and buffers[x].pin[0] == y)
            and not (buffers[y].pin and buffers[y].pin[0] == x)
            for x in rel for y in rel if x < y)
        # A pin that widens the rigid cluster can still shrink the arena (e.g. the cluster
        # holds a big tensor that is dead by this op): then plan both ways and compare.
        if clash or (cluster_extent(buffers, after) > max(ext_before, bo.size)
                     and _trial_arena(buffers) >= _trial_arena(buffers, unpin=bo)):
            bo.pin = None
            continue
        inplace_conv[op.index] = (cp[1], cp[2])
    scratch: dict[int, Buffer] = {}
    kscratch: dict[int, Buffer] = {}  # DSP kernels' working memory (fold_bias builds only)
    for op in g.ops:
        size = inplace_conv[op.index][1] if op.index in inplace_conv else _scratch_bytes(g, op)
        if size:
            b = Buffer(name=f"scratch.op{op.index}.{op.name}", size=size, start=op.index,
                       end=op.index)
            scratch[op.index] = b
            buffers.append(b)
        ksize = _dsp_scratch_bytes(g, op) if fold_bias else 0
        if ksize:
            b = Buffer(name=f"dsp.op{op.index}.{op.name}", size=ksize, start=op.index,
                       end=op.index)
            kscratch[op.index] = b
            buffers.append(b)
    plan = plan_memory(buffers)

    def loc(i: int) -> str:
        t = g.t(i)
        ctype = CTYPE[t.dtype]
        r = groups.find(i)
        if t.is_const:
            return em.const(t, ctype)
        if r in external:
            base = external[r]
            ext_t = g.t(gin if base == "input" else gout)
            return base if ext_t.dtype == t.dtype else f"(({ctype} *)(void *){base})"
        off = group_buf[r].offset
        if ctype == "int8_t":
            return f"(a + {off})"
        return f"(({ctype} *)(void *)(a + {off}))"

    em = _Emitter(g, prefix)
    em.fold_bias = fold_bias
    em.kscratch = {k: f"(int8_t *){prefix}_arena + {b.offset}" for k, b in kscratch.items()}
    calls: list[str] = []
    macs = 0
    for op in g.ops:
        if op.name in ALIAS_OPS:
            if op.index in copies:
                src, dst = copies[op.index]
                calls.append(f"memcpy({loc(dst)}, {loc(src)}, {g.t(dst).nbytes});")
            else:
                calls.append("/* zero-copy: output aliases input */")
            continue
        sb = scratch.get(op.index)
        call, m = _lower(em, g, op, loc, f"(a + {sb.offset})" if sb else None)
        if op.index in inplace_conv:
            fn = "tf_conv2d_s8" if op.name == "CONV_2D" else "tf_dwconv2d_s8"
            head, _, direct = call.partition(fn + "(")
            rows = (f"tf_conv_rows_inplace_s8({fn}, &{prefix}_op{op.index}, "
                    f"{loc(op.inputs[0])}, {loc(op.outputs[0])}, (a + {sb.offset}), "
                    f"{inplace_conv[op.index][0]}); /* overlapped */")
            if op.index in kscratch and _pixelwise_inplace(g, op) and \
                    group_buf[groups.find(op.inputs[0])].offset == \
                    group_buf[groups.find(op.outputs[0])].offset:
                # the DSP kernel copies each pixel pair's column into its scratch before
                # writing that pair's outputs, so a 1x1 layer can run fully in place
                call = (f"{head}\n#if defined(__ARM_FEATURE_DSP) && !defined(TF_NN_PORTABLE)\n"
                        f"    {fn}({direct} /* in place */\n#else\n    {rows}\n#endif")
            else:
                call = head + rows
        macs += m
        calls.append(call)

    it, ot = g.t(gin), g.t(gout)
    in_off = group_buf[in_group].offset if in_group in group_buf else None
    out_dir = Path(out_dir)
    files = _write(out_dir, prefix, g, em, calls, plan, it, ot, in_off)
    iq = (it.quant.scale, it.quant.zero_point) if it.quant else None
    oq = (ot.quant.scale, ot.quant.zero_point) if ot.quant else None
    return Compiled(out_dir=out_dir, sources=files, plan=plan, macs=macs,
                    ops=[op.name for op in g.ops], weight_bytes=em.weight_bytes,
                    input_shape=list(it.shape), output_shape=list(ot.shape),
                    input_dtype=it.dtype, output_dtype=ot.dtype, input_quant=iq,
                    output_quant=oq, prefix=prefix)


def _trial_arena(buffers: list[Buffer], unpin: Buffer | None = None) -> int:
    """Arena bytes of a plan of copies of ``buffers`` (``unpin``'s copy without its pin)."""
    trial = [replace(b, pin=None if b is unpin else b.pin) for b in buffers]
    return plan_memory(trial).arena_bytes


def _inplace_conv_plan(g: Graph, op: Op) -> tuple[int, int, int] | None:
    """Overlapped execution plan for a conv: (output offset relative to the input, in bytes;
    delay in rows; ring bytes), or None. Checked by simulating the row schedule: when output
    row r is stored (after row r + delay is computed), its bytes must not overlap any input
    row that a later output row still reads."""
    if op.name not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        return None
    x, out = g.t(op.inputs[0]), g.t(op.outputs[0])
    if len(x.shape) != 4 or x.shape[0] != 1:
        return None
    _, ih, iw, ic = x.shape
    _, oh, ow, oc = out.shape
    kh = g.t(op.inputs[1]).shape[1]
    sh, dh = op.options["stride"][0], op.options["dilation"][0]
    pad_h = _pad(op.options["padding"], sh, dh, ih, kh, oh)
    row_in, row_out = iw * ic, ow * oc
    best = None
    for delta in {0, x.nbytes - out.nbytes}:
        for delay in range(0, kh * dh + 1):
            ok = True
            for r in range(oh):
                lo = delta + r * row_out
                hi = lo + row_out
                y_next = r + delay + 1  # first output row computed after row r is stored
                if y_next >= oh:
                    continue
                first_in = max(0, y_next * sh - pad_h)  # lowest input row still read later
                if hi > first_in * row_in and lo < ih * row_in:
                    ok = False
                    break
            if ok:
                ring = (delay + 1) * row_out
                foot = max(x.nbytes, delta + out.nbytes) - min(0, delta) + ring
                if best is None or foot < best[0]:
                    best = (foot, delta, delay, ring)
                break
    if best is None or best[0] >= x.nbytes + out.nbytes:
        return None
    return best[1], best[2], best[3]


def _multiplier(real: float) -> tuple[int, int]:
    """quantize_multiplier, with shift -2 instead of 0 for a zero multiplier: any shift
    gives 0 there (in TFLite's arithmetic too), and -2 suits the DSP requantization."""
    m, sh = quantize_multiplier(real)
    return (0, -2) if m == 0 else (m, sh)


def _pixelwise_inplace(g: Graph, op: Op) -> bool:
    """A 1x1, stride-1, unpadded CONV_2D with no more output than input channels: output
    pixel n only needs input pixel n, and writes no byte of a later input pixel."""
    if op.name != "CONV_2D":
        return False
    x, w, out = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    return (tuple(w.shape[1:3]) == (1, 1) and tuple(op.options["stride"]) == (1, 1)
            and x.shape[:3] == out.shape[:3] and out.shape[3] <= x.shape[3])


def _conv_reals(g: Graph, op: Op) -> list[float]:
    """Per-output-channel real multipliers input_scale * weight_scale / output_scale."""
    x, w, out = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    ws = w.quant.scales
    return [x.quant.scale * ws[c if len(ws) > 1 else 0] / out.quant.scale
            for c in range(out.shape[-1])]


def _dsp_scratch_bytes(g: Graph, op: Op) -> int:
    """Working memory of the Cortex-M DSP conv kernels (layouts in conv2d_dsp.c and
    dwconv2d_dsp.c): im2col column + widened pixel pair, or zero-point row + tap table.
    0 (portable kernel) unless every channel's multiplier suits the single-SMLAL
    requantization (m >= 0, shift in [-31, -2], see tf_rq in tf_nn_dsp.h)."""
    if op.name not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        return 0
    for m, sh in (_multiplier(r) for r in _conv_reals(g, op)):
        if m < 0 or not -31 <= sh <= -2:
            return 0
    if op.name == "CONV_2D":
        _, kh, kw, ic = g.t(op.inputs[1]).shape
        k = kh * kw * ic
        return (k + 3) // 4 * 4 + 4 * (k // 4 * 4) + 16
    if op.name == "DEPTHWISE_CONV_2D":
        x, out = g.t(op.inputs[0]), g.t(op.outputs[0])
        if out.shape[3] != x.shape[3]:
            return 0  # depth multiplier > 1: portable kernel
        _, kh, kw, _ = g.t(op.inputs[1]).shape
        return (x.shape[3] + 3) // 4 * 4 + 4 * kh * kw
    return 0


def _scratch_bytes(g: Graph, op: Op) -> int:
    if op.name == "MEAN":
        return g.t(op.outputs[0]).numel * 4
    return 0


def _act(op: Op, out: Tensor) -> tuple[int, int]:
    return activation_range(op.options.get("activation", 0), out.quant.scale,
                            out.quant.zero_point)


def _lower(em: _Emitter, g: Graph, op: Op, loc, scratch: str | None) -> tuple[str, int]:
    """Return the C statement(s) for one op and its MAC count."""
    p = em.p
    k = op.index
    name = op.name
    ins = [g.t(i) if i >= 0 else None for i in op.inputs]
    out = g.t(op.outputs[0])
    comment = f"/* op {k}: {name}" + (
        f" + {FUSED_ACTIVATIONS[op.options['activation']]}"
        if op.options.get("activation") else "") + " */\n    "

    if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        x, w, b = ins[0], ins[1], ins[2] if len(ins) > 2 else None
        n, ih, iw, ic = _nhwc(x.shape)
        _, oh, ow, oc = _nhwc(out.shape)
        if name == "CONV_2D":
            _, kh, kw, _ = w.shape
        else:
            _, kh, kw, _ = w.shape
        sh, sw = op.options["stride"]
        dh, dw = op.options["dilation"]
        ph = _pad(op.options["padding"], sh, dh, ih, kh, oh)
        pw = _pad(op.options["padding"], sw, dw, iw, kw, ow)
        mn, sn, pc = em.multipliers(f"op{k}", _conv_reals(g, op))
        wn = em.const(w, "int8_t")
        lo, hi = _act(op, out)
        dm = oc // ic if name == "DEPTHWISE_CONV_2D" else 1
        wsum = (w.data.astype(np.int64).reshape(oc, -1).sum(axis=1) if name == "CONV_2D"
                else w.data.astype(np.int64).reshape(-1, oc).sum(axis=0))
        kb = em.kbias(f"op{k}", b, -x.quant.zero_point, wsum)
        bn = em.bias(b, kb)
        em.decls.append(
            f"static const tf_conv_params {p}_op{k} = {{{ih}, {iw}, {ic}, {oh}, {ow}, {oc}, "
            f"{kh}, {kw}, {sh}, {sw}, {dh}, {dw}, {ph}, {pw}, {dm}, {n}, "
            f"{-x.quant.zero_point}, {out.quant.zero_point}, {lo}, {hi}, {wn}, {bn}, {mn}, {sn}, "
            f"{kb}, {pc}, {em.kscratch.get(k, '0')}}};\n")
        fn = "tf_conv2d_s8" if name == "CONV_2D" else "tf_dwconv2d_s8"
        macs = n * oh * ow * oc * kh * kw * (ic if name == "CONV_2D" else 1)
        return f"{comment}{fn}(&{p}_op{k}, {loc(x.index)}, {loc(out.index)});", macs

    if name == "FULLY_CONNECTED":
        x, w, b = ins[0], ins[1], ins[2] if len(ins) > 2 else None
        of, inf = w.shape
        batches = x.numel // inf
        ws = w.quant.scales
        reals = [x.quant.scale * ws[c if len(ws) > 1 else 0] / out.quant.scale
                 for c in range(of)]
        mn, sn, pc = em.multipliers(f"op{k}", reals)
        wn = em.const(w, "int8_t")
        lo, hi = _act(op, out)
        kb = em.kbias(f"op{k}", b, -x.quant.zero_point,
                      w.data.astype(np.int64).sum(axis=1)) if w.quant.zero_point == 0 else "0"
        bn = em.bias(b, kb)
        em.decls.append(
            f"static const tf_fc_params {p}_op{k} = {{{batches}, {inf}, {of}, "
            f"{-x.quant.zero_point}, {-w.quant.zero_point}, {out.quant.zero_point}, {lo}, {hi}, "
            f"{wn}, {bn}, {mn}, {sn}, {kb}, {pc}}};\n")
        return (f"{comment}tf_fully_connected_s8(&{p}_op{k}, {loc(x.index)}, "
                f"{loc(out.index)});", batches * inf * of)

    if name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        x = ins[0]
        n, ih, iw, c = _nhwc(x.shape)
        _, oh, ow, _ = _nhwc(out.shape)
        kh, kw = op.options["filter"]
        sh, sw = op.options["stride"]
        ph = _pad(op.options["padding"], sh, 1, ih, kh, oh)
        pw = _pad(op.options["padding"], sw, 1, iw, kw, ow)
        lo, hi = _act(op, out)
        em.decls.append(
            f"static const tf_pool_params {p}_op{k} = {{{n}, {ih}, {iw}, {c}, {oh}, {ow}, "
            f"{kh}, {kw}, {sh}, {sw}, {ph}, {pw}, {lo}, {hi}}};\n")
        fn = "tf_avgpool_s8" if name == "AVERAGE_POOL_2D" else "tf_maxpool_s8"
        return f"{comment}{fn}(&{p}_op{k}, {loc(x.index)}, {loc(out.index)});", 0

    if name in ("ADD", "MUL"):
        a, b = ins[0], ins[1]
        dims = [1] * (4 - len(out.shape)) + list(out.shape)

        def strides(t: Tensor) -> list[int]:
            s = [1] * (4 - len(t.shape)) + list(t.shape)
            st, acc = [0] * 4, 1
            for d in range(3, -1, -1):
                st[d] = 0 if s[d] == 1 and dims[d] != 1 else acc
                acc *= s[d]
            return st

        lo, hi = _act(op, out)
        qa, qb, qo = a.quant.scale, b.quant.scale, out.quant.scale
        if name == "ADD":
            left = 20
            twice = 2.0 * float(max(np.float32(qa), np.float32(qb)))
            am, ash = quantize_multiplier(qa / twice)
            bm, bsh = quantize_multiplier(qb / twice)
            om, osh = quantize_multiplier(twice / ((1 << left) * qo))
        else:
            left, am, ash, bm, bsh = 0, 0, 0, 0, 0
            om, osh = quantize_multiplier(qa * qb / qo)
        fmt = ", ".join
        em.decls.append(
            f"static const tf_binary_params {p}_op{k} = {{{{{fmt(map(str, dims))}}}, "
            f"{{{fmt(map(str, strides(a)))}}}, {{{fmt(map(str, strides(b)))}}}, "
            f"{-a.quant.zero_point}, {-b.quant.zero_point}, {out.quant.zero_point}, {left}, "
            f"{am}, {ash}, {bm}, {bsh}, {om}, {osh}, {lo}, {hi}}};\n")
        fn = "tf_add_s8" if name == "ADD" else "tf_mul_s8"
        return (f"{comment}{fn}(&{p}_op{k}, {loc(a.index)}, {loc(b.index)}, "
                f"{loc(out.index)});", 0)

    if name in ("PAD", "PADV2"):
        x, pads = ins[0], ins[1]
        pv = out.quant.zero_point
        if name == "PADV2" and len(ins) > 2 and ins[2] is not None:
            pv = int(np.asarray(ins[2].data).ravel()[0])
        pd = np.asarray(pads.data).reshape(-1, 2)
        r = len(x.shape)
        em.decls.append(
            f"static const tf_pad_params {p}_op{k} = {{{r}, "
            f"{{{', '.join(str(d) for d in x.shape)}}}, "
            f"{{{', '.join(str(int(v)) for v in pd[:, 0])}}}, "
            f"{{{', '.join(str(int(v)) for v in pd[:, 1])}}}, {pv}}};\n")
        return f"{comment}tf_pad_s8(&{p}_op{k}, {loc(x.index)}, {loc(out.index)});", 0

    if name == "SOFTMAX":
        x = ins[0]
        depth = x.shape[-1]
        table = softmax_table(x.quant.scale, op.options.get("beta", 1.0))
        tn = f"{p}_op{k}_exp"
        body = ",\n    ".join(", ".join(c_float(v) for v in table[i:i + 6])
                              for i in range(0, 256, 6))
        em.decls.append(f"static const float {tn}[256] = {{\n    {body}\n}};\n")
        em.decls.append(
            f"static const tf_softmax_params {p}_op{k} = {{{x.numel // depth}, {depth}, {tn}, "
            f"{c_float(out.quant.scale)}, {out.quant.zero_point}}};\n")
        return f"{comment}tf_softmax_s8(&{p}_op{k}, {loc(x.index)}, {loc(out.index)});", 0

    if name in ("LOGISTIC", "TANH"):
        x = ins[0]
        kind = name.lower()
        table = lut_int8(kind, x.quant.scale, x.quant.zero_point, out.quant.scale,
                         out.quant.zero_point)
        tn = f"{p}_op{k}_lut"
        em.decls.append(_c_array("int8_t", tn, table, per_line=16))
        return (f"{comment}tf_{kind}_s8({tn}, {x.numel}, {loc(x.index)}, "
                f"{loc(out.index)});", 0)

    if name == "CONCATENATION":
        axis = op.options["axis"]
        axis = axis + len(out.shape) if axis < 0 else axis
        outer = int(np.prod(out.shape[:axis])) if axis else 1
        sizes = [int(np.prod(t.shape[axis:])) for t in ins]
        sn = f"{p}_op{k}_sizes"
        em.decls.append(_c_array("int32_t", sn, sizes))
        ptrs = ", ".join(loc(t.index) for t in ins)
        return (f"{comment}{{\n        const int8_t *const in{k}[{len(ins)}] = {{{ptrs}}};\n"
                f"        tf_concat_s8({outer}, {len(ins)}, in{k}, {sn}, {loc(out.index)});\n"
                f"    }}", 0)

    if name == "QUANTIZE":
        x = ins[0]
        if x.dtype == "float32":
            return (f"{comment}tf_quantize_f32_s8({out.numel}, {c_float(out.quant.scale)}, "
                    f"{out.quant.zero_point}, {loc(x.index)}, {loc(out.index)});", 0)
        m, s = quantize_multiplier(x.quant.scale / out.quant.scale)
        return (f"{comment}tf_requantize_s8({out.numel}, {x.quant.zero_point}, "
                f"{out.quant.zero_point}, {m}, {s}, {loc(x.index)}, {loc(out.index)});", 0)

    if name == "DEQUANTIZE":
        x = ins[0]
        return (f"{comment}tf_dequantize_s8_f32({x.numel}, {c_double(x.quant.scale)}, "
                f"{x.quant.zero_point}, {loc(x.index)}, {loc(out.index)});", 0)

    if name == "MEAN":
        x = ins[0]
        r = len(x.shape)
        axes = {int(a) % r for a in np.asarray(ins[1].data).ravel()}
        count = int(np.prod([x.shape[a] for a in axes])) if axes else 1
        ostr, acc = [0] * r, 1
        for d in range(r - 1, -1, -1):
            if d not in axes:
                ostr[d] = acc
                acc *= x.shape[d]
        f = np.float32
        real = float(f(x.quant.scale) / (f(count) * f(out.quant.scale)))
        m, s = quantize_multiplier(real)
        pad6 = [0] * (6 - r)
        em.decls.append(
            f"static const tf_mean_params {p}_op{k} = {{{r}, "
            f"{{{', '.join(map(str, list(x.shape) + pad6))}}}, "
            f"{{{', '.join(map(str, ostr + pad6))}}}, {out.numel}, {x.quant.zero_point}, "
            f"{out.quant.zero_point}, {m}, {s}}};\n")
        return (f"{comment}tf_mean_s8(&{p}_op{k}, {loc(x.index)}, {loc(out.index)}, "
                f"(int32_t *)(void *){scratch});", 0)

    raise InvalidArgument(f"operator #{k} {name} has no code generator", field="model")


def _write(out_dir: Path, p: str, g: Graph, em: _Emitter, calls: list[str], plan: Plan,
           it: Tensor, ot: Tensor, in_off: int | None) -> list[Path]:
    up = p.upper()
    ict, oct_ = CTYPE[it.dtype], CTYPE[ot.dtype]

    def quant_defs(tag: str, t: Tensor) -> str:
        if t.quant is None:
            return ""
        return (f"#define {up}_{tag}_SCALE {c_float(t.quant.scale)}\n"
                f"#define {up}_{tag}_ZERO_POINT {t.quant.zero_point}\n")

    header = (
        f"/* Generated by tinyforge.compiler: do not edit. */\n"
        f"#ifndef {up}_H\n#define {up}_H\n\n#include <stdint.h>\n\n"
        f"#ifdef __cplusplus\nextern \"C\" {{\n#endif\n\n"
        f"#define {up}_INPUT_SIZE {it.numel}\n"
        f"#define {up}_INPUT_RANK {len(it.shape)}\n"
        f"#define {up}_INPUT_DIMS {{{', '.join(map(str, it.shape))}}}\n"
        f"{quant_defs('INPUT', it)}"
        f"#define {up}_OUTPUT_SIZE {ot.numel}\n"
        f"#define {up}_OUTPUT_RANK {len(ot.shape)}\n"
        f"#define {up}_OUTPUT_DIMS {{{', '.join(map(str, ot.shape))}}}\n"
        f"{quant_defs('OUTPUT', ot)}"
        f"#define {up}_ARENA_SIZE {plan.arena_bytes}\n\n"
        f"typedef {ict} {p}_input_t;\n"
        f"typedef {oct_} {p}_output_t;\n\n"
        f"/* Runs one inference: reads {up}_INPUT_SIZE values, writes {up}_OUTPUT_SIZE.\n"
        f" * input and output must not overlap. Returns 0. Not reentrant (one static arena).\n"
        f" * input may be {p}_input(): then nothing is copied. */\n"
        f"int {p}_invoke(const {ict} *input, {oct_} *output);\n\n"
        f"/* The model's input tensor inside the arena: write {up}_INPUT_SIZE values there and\n"
        f" * call {p}_invoke({p}_input(), output) to save the caller's input buffer. The\n"
        f" * arena is reused during inference, so write the input again before each call. */\n"
        f"{ict} *{p}_input(void);\n\n"
        f"#ifdef __cplusplus\n}}\n#endif\n#endif\n")
    words = max(1, (plan.arena_bytes + 3) // 4)
    nin = it.numel * (4 if it.dtype == "float32" else 1)
    if in_off is None:  # input aliases the output (no arena copy)
        in_expr = "(input_t *)(void *)0"
        calls = [f"memcpy(output, input, {nin});", *calls]
    else:
        in_expr = f"(input_t *)(void *)((int8_t *){p}_arena + {in_off})"
        calls = [f"if (input != {p}_input()) {{\n        memcpy({p}_input(), input, {nin});\n"
                 f"    }}", *calls]
    body = "\n    ".join(calls)
    source = (
        f"/* Generated by tinyforge.compiler: do not edit.\n"
        f" * ops: {len(g.ops)}, arena: {plan.arena_bytes} bytes ({plan.strategy}). */\n"
        f"#include <string.h>\n#include \"tf_nn.h\"\n#include \"model.h\"\n\n"
        f"static int32_t {p}_arena[{words}]; /* int32 for 4-byte alignment */\n\n"
        + "".join(em.decls) +
        f"\n{ict} *{p}_input(void)\n{{\n    return {in_expr.replace('input_t', ict)};\n}}\n"
        f"\nint {p}_invoke(const {ict} *input, {oct_} *output)\n{{\n"
        f"    int8_t *const a = (int8_t *){p}_arena;\n"
        f"    (void)a;\n    (void)input;\n    (void)output;\n"
        f"    {body}\n    return 0;\n}}\n")
    tmp = out_dir.parent / f".{out_dir.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    (tmp / "model.h").write_text(header)
    (tmp / "model.c").write_text(source)
    kernels = {"tf_nn.h"}
    for op in g.ops:
        kernels.update(KERNEL_FILES[op.name])
    for f in sorted(kernels):
        if (NN_DIR / f).exists():
            shutil.copy(NN_DIR / f, tmp / f)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return sorted(out_dir.iterdir())
