"""Verification harness: compile a model for a target, run inputs on the target, and compare
every output byte with the TFLite interpreter's reference kernels (BUILTIN_REF).

Also measures, from the built binaries: flash (text + rodata + data of a footprint image:
the model plus the smallest caller), RAM (static data + bss, which holds the arena, plus the
stack high-water mark of one inference measured by stack painting on the emulated cores)
and instructions per inference (QEMU -icount: SysTick on Cortex-M4F, rdinstret on RV32).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyforge.compiler import toolchains
from tinyforge.compiler.codegen import Compiled, generate
from tinyforge.compiler.importer import load_tflite
from tinyforge.errors import FailedPrecondition, InvalidArgument


@dataclass
class Report:
    """What one compile + verify run established. ``instructions`` is per inference."""

    target: str
    bit_exact: bool
    compared: int
    mismatches: int
    arena_bytes: int
    ram_bytes: int | None
    flash_bytes: int | None
    stack_bytes: int | None
    static_ram_bytes: int | None
    instructions: int | None
    macs: int
    ops: list[str]
    weight_bytes: int
    plan: dict = field(default_factory=dict)
    first_mismatch: dict | None = None

    def as_dict(self, with_plan: bool = False) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "plan"}
        if with_plan:
            d["plan"] = self.plan
        return d


def reference_outputs(model: bytes, inputs: np.ndarray) -> np.ndarray:
    """Run ``inputs`` (N, *input_shape) through TFLite's reference kernels."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=model,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    i_det, o_det = it.get_input_details()[0], it.get_output_details()[0]
    outs = []
    for x in inputs:
        it.set_tensor(i_det["index"], x.reshape(i_det["shape"]).astype(i_det["dtype"]))
        it.invoke()
        outs.append(it.get_tensor(o_det["index"]).copy())
    return np.stack(outs)


def random_inputs(compiled: Compiled, n: int, seed: int = 0) -> np.ndarray:
    """``n`` random inputs covering the full int8 range (or the float range of the input)."""
    rng = np.random.default_rng(seed)
    shape = (n, *compiled.input_shape)
    if compiled.input_dtype == "int8":
        x = rng.integers(-128, 128, size=shape, dtype=np.int16)
        if n > 1:  # include the extremes
            x[0] = -128
            x[1] = 127 if n > 1 else x[1]
        return x.astype(np.int8)
    return rng.normal(0.0, 2.0, size=shape).astype(np.float32)


def _stim_source(inputs: np.ndarray) -> str:
    raw = np.ascontiguousarray(inputs).view(np.uint8).ravel()
    rows = [",".join(map(str, raw[i:i + 32].tolist())) for i in range(0, raw.size, 32)]
    return ("/* Generated stimuli. */\n"
            f"const unsigned char tf_stim[{max(raw.size, 1)}] "
            "__attribute__((aligned(8))) = {\n" + ",\n".join(rows) + "\n};\n"
            f"const unsigned int tf_stim_count = {len(inputs)}u;\n")


def parse_output(text: str, n: int, nbytes: int) -> tuple[list[bytes], int | None, int | None]:
    outs = [bytes.fromhex(m) for m in re.findall(r"^O ([0-9a-f]*)$", text, re.M)]
    if len(outs) != n or any(len(o) != nbytes for o in outs):
        raise FailedPrecondition(f"target printed {len(outs)} outputs, expected {n}:\n"
                                 f"{text[-2000:]}")
    stack = re.search(r"^STACK (\d+)$", text, re.M)
    insn = re.search(r"^INSN (\d+)$", text, re.M)
    return outs, int(stack.group(1)) if stack else None, int(insn.group(1)) if insn else None


def compile_model(model: str | Path | bytes, out_dir: str | Path, target: str = "host",
                  prefix: str = "tf_model") -> Compiled:
    """Import and generate C for ``model`` into ``out_dir`` (DSP data only for Cortex-M4F)."""
    return generate(load_tflite(model), out_dir, prefix=prefix,
                    fold_bias=target == "cortex-m4f")


def verify(model: str | Path | bytes, out_dir: str | Path, target: str = "host",
           n_random: int = 20, inputs: np.ndarray | None = None, seed: int = 0,
           measure: bool = True, defines: list[str] | None = None) -> Report:
    """Compile ``model``, run ``n_random`` random inputs plus ``inputs`` on ``target`` and
    compare every output byte with the reference interpreter. See :class:`Report`."""
    toolchains.tool_for(target)
    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    if n_random < 0:
        raise InvalidArgument("n_random must be >= 0", field="verify")
    out_dir = Path(out_dir)
    compiled = compile_model(data, out_dir, target)
    stim = [random_inputs(compiled, n_random, seed)] if n_random else []
    if inputs is not None:
        x = np.asarray(inputs)
        if x.shape[1:] != tuple(compiled.input_shape) and \
                x.reshape(len(x), -1).shape[1] == int(np.prod(compiled.input_shape)):
            x = x.reshape(len(x), *compiled.input_shape)
        if x.shape[1:] != tuple(compiled.input_shape):
            raise InvalidArgument(f"inputs have shape {x.shape[1:]}, the model takes "
                                  f"{tuple(compiled.input_shape)}", field="inputs")
        stim.append(x.astype(np.int8 if compiled.input_dtype == "int8" else np.float32))
    if not stim:
        raise InvalidArgument("nothing to verify: give n_random > 0 or inputs", field="verify")
    all_in = np.concatenate(stim)
    ref = reference_outputs(data, all_in)

    with tempfile.TemporaryDirectory(prefix=f"tf-{target}-") as tmp:
        work = Path(tmp)
        (work / "stim.c").write_text(_stim_source(all_in))
        exe = work / ("app.wasm" if target == "wasm" else "app.elf")
        toolchains.build(target, out_dir, [str(toolchains.BOARD / "harness.c"),
                                           str(work / "stim.c")], exe, app="harness",
                         defines=defines)
        text = toolchains.run(target, exe)
        outs, stack, insn = parse_output(text, len(all_in), compiled.output_bytes)
        flash = static_ram = None
        if measure:
            fp = work / ("fp.wasm" if target == "wasm" else "fp.elf")
            toolchains.build(target, out_dir, [str(toolchains.BOARD / "footprint.c")], fp,
                             app="footprint", defines=defines)
            sz = toolchains.section_sizes(target, fp)
            flash = sz["text"] + sz["data"]
            static_ram = sz["data"] + sz["bss"] if target != "wasm" else None

    mismatches, first = 0, None
    for k, (o, r) in enumerate(zip(outs, ref, strict=True)):
        rb = np.ascontiguousarray(r).tobytes()
        if o != rb:
            mismatches += 1
            if first is None:
                first = {"input": k, "got": list(np.frombuffer(o, dtype=r.dtype)[:16]),
                         "expected": list(r.ravel()[:16])}
    if first:
        first = {k: (v if not isinstance(v, list) else [float(x) if isinstance(x, float |
                                                        np.floating) else int(x) for x in v])
                 for k, v in first.items()}
    ram = None
    if static_ram is not None:
        ram = static_ram + (stack or 0)
    return Report(target=target, bit_exact=mismatches == 0, compared=len(all_in),
                  mismatches=mismatches, arena_bytes=compiled.plan.arena_bytes, ram_bytes=ram,
                  flash_bytes=flash, stack_bytes=stack, static_ram_bytes=static_ram,
                  instructions=insn if target in ("cortex-m4f", "rv32imc") else None,
                  macs=compiled.macs, ops=compiled.ops, weight_bytes=compiled.weight_bytes,
                  plan=compiled.plan.as_dict(), first_mismatch=first)
