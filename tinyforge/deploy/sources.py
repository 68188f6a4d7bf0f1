"""The C half of every C-based format: compiled model + generated impulse + SDK, samples.

:func:`write_sources` lays out, under one folder, ``model/`` (``model.c``/``model.h`` and the
NN kernels from :mod:`tinyforge.compiler`, ``impulse.c`` + ``model_metadata.h`` from
:mod:`tinyforge.csdk.generate`) and ``tinyforge-sdk/{dsp,classifier}/`` (the SDK sources).
:func:`samples_source` embeds test windows as C arrays (int16 when every value is an exact
int16 — audio in int16 units — else float32; either way the values the DSP sees are exact).
Templates (package data under ``templates/``) are rendered by replacing ``@KEY@`` markers.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from tinyforge.compiler.codegen import Compiled
from tinyforge.compiler.verify import compile_model
from tinyforge.csdk.dspgen import DSP_DIR
from tinyforge.csdk.generate import ImpulseSources, generate_impulse, sdk_sources
from tinyforge.deploy.context import BuildContext
from tinyforge.errors import InvalidArgument, ResourceExhausted

SDK_FOLDER = "tinyforge-sdk"


@dataclass
class CSources:
    """Where the sources of one C deployment were written (paths under ``root``)."""

    root: Path
    c_files: list[Path]
    include_dirs: list[Path]
    compiled: Compiled
    impulse: ImpulseSources

    def rel(self, paths: list[Path]) -> list[str]:
        return [p.relative_to(self.root).as_posix() for p in paths]


def template(name: str) -> str:
    """Text of the template ``templates/<name>`` (package data)."""
    return resources.files("tinyforge.deploy").joinpath("templates", name).read_text()


def render(text: str, **values: object) -> str:
    """``text`` with every ``@KEY@`` replaced by ``values[KEY]``."""
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    return text


def write_sources(ctx: BuildContext, root: Path, *, arm_fast_paths: bool | None = None) -> CSources:
    """Compile the model and generate the impulse + copy the SDK under ``root``.

    ``arm_fast_paths`` emits the folded biases the Cortex-M DSP kernels use (default: when the
    target is a Cortex-M). Checks the static RAM / weight size against the target first:
    ResourceExhausted with the numbers when the impulse cannot fit.
    """
    b = ctx.bundle
    arm = ctx.target.arch.startswith("cortex-m") if arm_fast_paths is None else arm_fast_paths
    model_dir = root / "model"
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    ctx.log(f"compiling the int8 model for {ctx.target.arch}")
    compiled = compile_model(b.model_int8, model_dir, "cortex-m4f" if arm else "host")
    if compiled.input_dtype != "int8":
        raise InvalidArgument("model_int8 must take int8 input (full-int8 quantisation)",
                              field="model_int8")
    slices = int(ctx.option("slices_per_window", "4"))
    gen = generate_impulse(b.impulse, list(b.labels), compiled, model_dir,
                           slices_per_window=slices)
    check_fits(ctx, gen.static_ram_bytes, compiled.weight_bytes, stage="before building")
    dsp = root / SDK_FOLDER / "dsp"
    cls = root / SDK_FOLDER / "classifier"
    dsp.mkdir(parents=True, exist_ok=True)
    cls.mkdir(parents=True, exist_ok=True)
    for src in [*sdk_sources(), *DSP_DIR.glob("*.h"), *sdk_sources()[-1].parent.glob("*.h")]:
        shutil.copy(src, (cls if src.parent.name == "classifier" else dsp) / src.name)
    c_files = sorted(model_dir.glob("*.c")) + sorted(dsp.glob("*.c")) + sorted(cls.glob("*.c"))
    ctx.metrics["arena_bytes"] = compiled.plan.arena_bytes
    ctx.metrics["classifier_static_ram_bytes"] = gen.static_ram_bytes
    ctx.metrics["weight_bytes"] = compiled.weight_bytes
    ctx.log(f"model: {len(compiled.ops)} ops, arena {compiled.plan.arena_bytes} B, weights "
            f"{compiled.weight_bytes} B; classifier static RAM {gen.static_ram_bytes} B")
    return CSources(root=root, c_files=c_files, include_dirs=[model_dir, dsp, cls],
                    compiled=compiled, impulse=gen)


def check_fits(ctx: BuildContext, ram: int, flash: int, stage: str) -> None:
    """ResourceExhausted when ``ram``/``flash`` bytes exceed the (MCU) target's."""
    t = ctx.target
    if not t.is_mcu:
        return
    over = []
    if ram > t.ram_bytes:
        over.append(f"RAM {ram} B needed, {t.ram_bytes} B available")
    if flash > t.flash_bytes:
        over.append(f"flash {flash} B needed, {t.flash_bytes} B available")
    if over:
        raise ResourceExhausted(f"the impulse does not fit target {t.name} ({stage}): "
                                + "; ".join(over), field="target")


def _c_rows(values: list[str], per_line: int = 16) -> str:
    return ",\n".join("    " + ", ".join(values[i:i + per_line])
                      for i in range(0, len(values), per_line)) or "    0"


def samples_source(windows: np.ndarray, label_idx: list[int]) -> tuple[str, str]:
    """(``tf_samples.c``, ``tf_samples.h``) embedding ``windows`` and their label indices."""
    x = np.asarray(windows, dtype=np.float32)
    n = len(x)
    flat = x.reshape(n, -1)
    as_i16 = bool(np.all(flat == np.round(flat)) and np.all(np.abs(flat) <= 32767))
    if as_i16:
        ctype, vals = "int16_t", [str(int(v)) for v in flat.ravel()]
    else:
        ctype = "float"
        vals = [float(v).hex() + "f" if v != 0 else "0.0f" for v in flat.ravel()]
    header = ("/* Generated by tinyforge.deploy: test windows to classify on the device. */\n"
              "#ifndef TF_SAMPLES_H\n#define TF_SAMPLES_H\n#include <stdint.h>\n"
              f"#define TF_SAMPLE_COUNT {n}\n#define TF_SAMPLE_VALUES {flat.shape[1]}\n"
              f"typedef {ctype} tf_sample_t;\n"
              "extern const tf_sample_t tf_samples[TF_SAMPLE_COUNT * TF_SAMPLE_VALUES];\n"
              "/* class index of each window's true label, -1 when unknown */\n"
              "extern const int tf_sample_labels[TF_SAMPLE_COUNT];\n#endif\n")
    source = ("/* Generated by tinyforge.deploy. */\n#include \"tf_samples.h\"\n"
              "const tf_sample_t tf_samples[TF_SAMPLE_COUNT * TF_SAMPLE_VALUES] = {\n"
              + _c_rows(vals) + "\n};\n"
              "const int tf_sample_labels[TF_SAMPLE_COUNT] = {\n"
              + _c_rows([str(int(v)) for v in label_idx]) + "\n};\n")
    return source, header


def sample_bytes_per_window(windows: np.ndarray) -> int:
    flat = np.asarray(windows, dtype=np.float32).reshape(len(windows), -1)
    as_i16 = bool(np.all(flat == np.round(flat)) and np.all(np.abs(flat) <= 32767))
    return flat.shape[1] * (2 if as_i16 else 4)


def label_indices(ctx: BuildContext) -> list[int]:
    b = ctx.bundle
    if b.test_labels is None:
        return [-1] * len(b.test_windows)
    return [b.labels.index(s) for s in b.test_labels]


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def copy_tree_files(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for p in src.iterdir():
        if p.is_file():
            shutil.copy(p, dst / p.name)


def c_string_literal(s: str) -> str:
    from tinyforge.csdk.generate import c_string

    return c_string(s)


def impulse_summary(ctx: BuildContext) -> dict[str, str]:
    """Values every README template uses (``@NAME@``, ``@SUMMARY@``, ``@LABELS@`` ...)."""
    from tinyforge.impulse import ImageInput

    imp = ctx.bundle.impulse
    inp = imp.input
    blocks = " + ".join(f"{b.block}" for b in imp.processing)
    if isinstance(inp, ImageInput):
        window = f"{inp.height}x{inp.width}x{inp.channels} image, row-major, channels last"
        raw = inp.height * inp.width * inp.channels
    else:
        window = (f"{inp.window_samples} samples x {len(inp.axes)} axes "
                  f"({', '.join(inp.axes)}) at {inp.frequency_hz:g} Hz, sample-major")
        raw = inp.window_samples * len(inp.axes)
    m = ctx.metrics
    return {"NAME": ctx.bundle.name, "SUMMARY": f"{blocks} -> int8 neural network",
            "LABELS": ", ".join(f"`{s}`" for s in ctx.bundle.labels), "WINDOW_DESC": window,
            "RAW_COUNT": str(raw), "TARGET": ctx.target.name,
            "TARGET_DESC": ctx.target.description,
            "STATIC_RAM": str(m.get("classifier_static_ram_bytes", "?")),
            "ARENA": str(m.get("arena_bytes", "?"))}


def verified_values(ctx: BuildContext) -> dict[str, str]:
    m = ctx.metrics
    return {"VERIFIED_ON": str(m.get("verified_on", "nothing (no test windows)")),
            "COMPARED": str(m.get("compared", 0))}


def example_sample_header(ctx: BuildContext) -> str:
    """``sample.h``: the first test window (exact float literals) or zeros, as an array."""
    raw = int(impulse_summary(ctx)["RAW_COUNT"])
    b = ctx.bundle
    if b.test_windows is not None:
        vals = np.asarray(b.test_windows[0], dtype=np.float32).ravel()
        rows = [float(v).hex() + "f" if v != 0 else "0.0f" for v in vals]
        note = (f"test window 0 (true label {b.test_labels[0]!r})" if b.test_labels
                else "test window 0")
    else:
        rows, note = ["0.0f"] * raw, "zeros (the bundle had no test window)"
    return ("/* Example input for main.c: " + note + ". Generated by tinyforge.deploy. */\n"
            "#ifndef TF_EXAMPLE_SAMPLE_H\n#define TF_EXAMPLE_SAMPLE_H\n"
            f"static const float tf_example_sample[{raw}] = {{\n" + _c_rows(rows, 8)
            + "\n};\n#endif\n")
