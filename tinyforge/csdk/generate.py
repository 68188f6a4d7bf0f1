"""Generate the impulse-specific C of a deployment: ``model_metadata.h`` and ``impulse.c``.

``model_metadata.h`` holds compile-time constants only: labels, window size, frequency, axes,
feature count, continuous-mode slicing, static buffer sizes, every DSP block's parameters as
``TF_DSP_<i>_<PARAM>`` macros, and (instantiated only in ``impulse.c``, which defines
``TF_METADATA_TABLES``) the block configurations with their precomputed tables (FFT twiddles,
mel filterbank, DCT matrix, filter sections). ``impulse.c`` chains the DSP blocks (each on
its own axes, features concatenated in the learning block's input order) into the model
compiled by :mod:`tinyforge.compiler` (``tf_model_invoke``): features are quantised with the
model's input scale / zero point (``clamp(round_half_even(x / scale) + zp)``, as
:mod:`tinyforge.quantize.runner`) and int8 outputs dequantised; float models take the
features as they are.

With the SDK sources (:func:`sdk_sources`), ``model.c``/``model.h`` and the NN kernels the
compiler copies next to them, this is a complete, heap-free C99 classifier.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyforge.compiler.codegen import Compiled
from tinyforge.csdk.dspgen import DSP_DIR, BlockCode, CTables, block_code, c_f32, dsp_sources
from tinyforge.dsp.registry import get_block
from tinyforge.errors import InvalidArgument
from tinyforge.impulse import ImageInput, Impulse

CLASSIFIER_DIR = Path(__file__).resolve().parent / "classifier"


def sdk_sources() -> list[Path]:
    """``.c`` files of the SDK's DSP blocks and classifier API."""
    return [*dsp_sources(), CLASSIFIER_DIR / "tf_classifier.c"]


def sdk_include_dirs() -> list[Path]:
    return [DSP_DIR, CLASSIFIER_DIR]


@dataclass
class ImpulseSources:
    """What :func:`generate_impulse` wrote and the static memory it sized (bytes)."""

    metadata_h: Path
    impulse_c: Path
    blocks: list[BlockCode]
    feature_count: int
    scratch_floats: int
    static_ram: dict[str, int]

    @property
    def static_ram_bytes(self) -> int:
        return sum(self.static_ram.values())


def c_string(s: str) -> str:
    """A C string literal of ``s`` (UTF-8, non-printable bytes as octal escapes)."""
    out = []
    for b in s.encode():
        ch = chr(b)
        out.append(ch if 32 <= b < 127 and ch not in '"\\?' else f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def _macro(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return c_f32(value)
    return c_string(str(value))


def generate_impulse(impulse: Impulse, labels: list[str], model: Compiled, out_dir: str | Path,
                     slices_per_window: int = 4, learning_block: str | None = None,
                     ) -> ImpulseSources:
    """Write ``model_metadata.h`` and ``impulse.c`` for ``impulse`` into ``out_dir``.

    ``labels``: class names in model output order; ``model``: the compiled model (from
    :func:`tinyforge.compiler.verify.compile_model`) whose ``model.h`` sits beside them;
    ``slices_per_window``: continuous-mode slices (must divide the window's samples).
    Raises InvalidArgument when a block has no C twin or sizes disagree with the model.
    """
    impulse.validate()
    out_dir = Path(out_dir)
    is_image = isinstance(impulse.input, ImageInput)
    inp = impulse.input
    shape = inp.window_shape()
    fs = 0.0 if is_image else float(inp.frequency_hz)
    window_samples = shape[0] if not is_image else shape[0] * shape[1]
    n_axes = shape[-1]
    raw_count = math.prod(shape)
    if not labels:
        raise InvalidArgument("give the model's class labels", field="labels")
    if slices_per_window < 1 or window_samples % slices_per_window:
        raise InvalidArgument(f"slices_per_window {slices_per_window} must divide the window "
                              f"of {window_samples} samples", field="slices_per_window")
    order = [b.name for b in impulse.processing]
    if impulse.learning:
        lb = impulse.learning[0]
        if learning_block is not None:
            lb = next((x for x in impulse.learning if x.name == learning_block), None)
            if lb is None:
                raise InvalidArgument(f"impulse has no learning block {learning_block!r}",
                                      field="learning_block")
        order = list(lb.inputs)

    t = CTables("tf_dsp")
    codes, gathers, param_lines = [], [], []
    offset, gather_floats = 0, 0
    for i, name in enumerate(order):
        b = impulse.processing_block(name)
        axes = impulse.block_axes(b)
        bshape = inp.window_shape(axes)
        code = block_code(t, f"b{i}", b.block, b.params, fs, bshape)
        idx = [inp.axes.index(a) for a in axes] if not is_image else list(range(n_axes))
        whole = idx == list(range(n_axes))
        gathers.append((idx, whole, offset))
        if not whole:
            gather_floats = max(gather_floats, math.prod(bshape))
        offset += code.n_features
        codes.append(code)
        params = get_block(b.block).validate(b.params)
        param_lines.append(f"#define TF_DSP_{i}_NAME {c_string(b.name)}\n"
                           f"#define TF_DSP_{i}_BLOCK {c_string(b.block)}\n"
                           f"#define TF_DSP_{i}_FEATURES {code.n_features}\n"
                           + "".join(f"#define TF_DSP_{i}_{k.upper()} {_macro(v)}\n"
                                     for k, v in params.items()))
    n_features = offset
    in_size = math.prod(model.input_shape)
    out_size = math.prod(model.output_shape)
    if in_size != n_features:
        raise InvalidArgument(f"the DSP blocks give {n_features} features, the model takes "
                              f"{in_size} (input shape {model.input_shape})", field="model")
    if out_size != len(labels):
        raise InvalidArgument(f"{len(labels)} labels for a model with {out_size} outputs",
                              field="labels")
    scratch = max([1] + [c.scratch_floats for c in codes])
    quantized = model.input_dtype == "int8"
    ram = {
        "window": 4 * raw_count,
        "features": 4 * n_features,
        "scores": 4 * len(labels) * (1 + slices_per_window),
        "dsp_scratch": 4 * scratch,
        "axis_gather": 4 * gather_floats,
        "nn_io": (in_size if quantized else 0) + (out_size if model.output_dtype == "int8"
                                                  else 4 * out_size),
        "nn_arena": model.plan.arena_bytes,
    }

    p = model.prefix
    up = p.upper()
    axes_text = ",".join(inp.axes)
    header = (
        "/* Generated by tinyforge.csdk.generate: do not edit. */\n"
        "#ifndef TF_MODEL_METADATA_H\n#define TF_MODEL_METADATA_H\n\n"
        f"#define TF_CLASSIFIER_LABEL_COUNT {len(labels)}\n"
        f"#define TF_CLASSIFIER_FREQUENCY {c_f32(fs)}\n"
        f"#define TF_CLASSIFIER_WINDOW_SAMPLES {window_samples}\n"
        f"#define TF_CLASSIFIER_AXES {n_axes}\n"
        f"#define TF_CLASSIFIER_AXIS_NAMES {c_string(axes_text)}\n"
        f"#define TF_CLASSIFIER_RAW_SAMPLE_COUNT {raw_count}\n"
        f"#define TF_CLASSIFIER_FEATURE_COUNT {n_features}\n"
        f"#define TF_CLASSIFIER_SLICES_PER_WINDOW {slices_per_window}\n"
        f"#define TF_CLASSIFIER_SLICE_SIZE {raw_count // slices_per_window}\n"
        f"#define TF_CLASSIFIER_DSP_SCRATCH_FLOATS {scratch}\n"
        f"#define TF_CLASSIFIER_AXIS_GATHER_FLOATS {max(1, gather_floats)}\n"
        f"#define TF_CLASSIFIER_QUANTIZED {int(quantized)}\n"
        f"#define TF_CLASSIFIER_STATIC_RAM_BYTES {sum(ram.values())}\n"
        f"#define TF_DSP_BLOCK_COUNT {len(codes)}\n\n"
        + "".join(param_lines) +
        "\nextern const char *const tf_classifier_labels[TF_CLASSIFIER_LABEL_COUNT];\n\n"
        "#ifdef TF_METADATA_TABLES\n#include \"tf_dsp.h\"\n"
        "const char *const tf_classifier_labels[TF_CLASSIFIER_LABEL_COUNT] = {"
        + ", ".join(c_string(lab) for lab in labels) + "};\n\n"
        + t.source() + "#endif\n\n#endif\n")

    lines = []
    for code, (idx, whole, off) in zip(codes, gathers, strict=True):
        lines.append(f"    /* {code.name}: {code.block} on axes {idx} */")
        if whole:
            lines.append("    x = window;")
        else:
            lines.append("    for (t = 0; t < TF_CLASSIFIER_WINDOW_SAMPLES; ++t) {")
            for j, a in enumerate(idx):
                lines.append(f"        tf_axis_buf[t * {len(idx)} + {j}] = "
                             f"window[t * TF_CLASSIFIER_AXES + {a}];")
            lines.append("    }\n    x = tf_axis_buf;")
        lines.append(f"    out = features + {off};")
        lines.append(f"    if ({code.call} != 0) {{\n        return -1;\n    }}")
    any_gather = any(not w for _, w, _ in gathers)
    if quantized:
        infer = (
            f"    for (i = 0; i < {up}_INPUT_SIZE; ++i) {{\n"
            f"        float q = nearbyintf(features[i] / (float){up}_INPUT_SCALE) + "
            f"(float){up}_INPUT_ZERO_POINT;\n"
            "        q = q < -128.0f ? -128.0f : (q > 127.0f ? 127.0f : q);\n"
            "        tf_nn_input[i] = (int8_t)q;\n    }\n"
            f"    if ({p}_invoke(tf_nn_input, tf_nn_output) != 0) {{\n        return -1;\n    }}\n")
    else:
        infer = (f"    if ({p}_invoke(features, tf_nn_output) != 0) {{\n"
                 "        return -1;\n    }\n")
    if model.output_dtype == "int8":
        infer += (f"    for (i = 0; i < {up}_OUTPUT_SIZE; ++i) {{\n"
                  f"        scores[i] = ((float)tf_nn_output[i] - "
                  f"(float){up}_OUTPUT_ZERO_POINT) * (float){up}_OUTPUT_SCALE;\n    }}\n")
    else:
        infer += (f"    for (i = 0; i < {up}_OUTPUT_SIZE; ++i) {{\n"
                  "        scores[i] = tf_nn_output[i];\n    }\n")
    source = (
        "/* Generated by tinyforge.csdk.generate: do not edit. DSP blocks -> model. */\n"
        "#include <math.h>\n#include <stdint.h>\n"
        "#define TF_METADATA_TABLES\n#include \"model_metadata.h\"\n"
        "#include \"tf_classifier.h\"\n#include \"tf_dsp.h\"\n#include \"model.h\"\n\n"
        "static float tf_dsp_scratch[TF_CLASSIFIER_DSP_SCRATCH_FLOATS];\n"
        + ("static float tf_axis_buf[TF_CLASSIFIER_AXIS_GATHER_FLOATS];\n" if any_gather
           else "")
        + (f"static int8_t tf_nn_input[{up}_INPUT_SIZE];\n" if quantized else "")
        + f"static {p}_output_t tf_nn_output[{up}_OUTPUT_SIZE];\n\n"
        "int tf_impulse_dsp(const float *window, float *features)\n{\n"
        "    float *scratch = tf_dsp_scratch;\n    const float *x;\n    float *out;\n"
        + ("    int t;\n" if any_gather else "")
        + "\n".join(lines) + "\n    return 0;\n}\n\n"
        "int tf_impulse_infer(const float *features, float *scores)\n{\n    int i;\n"
        + infer + "    return 0;\n}\n")
    out_dir.mkdir(parents=True, exist_ok=True)
    meta, imp = out_dir / "model_metadata.h", out_dir / "impulse.c"
    for path, text in ((meta, header), (imp, source)):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return ImpulseSources(metadata_h=meta, impulse_c=imp, blocks=codes, feature_count=n_features,
                          scratch_floats=scratch, static_ram=ram)
