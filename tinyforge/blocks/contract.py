"""The per-type calling convention of custom blocks (DESIGN.md §5), shared by every engine.

What a block of each type receives and must leave behind:

=========  ===================================================  ===============================
type       arguments                                            must write into the out dir
=========  ===================================================  ===============================
transform  ``--in-directory D`` (or ``--in-file F``)            at least one file
           ``--out-directory O`` + ``--<param> value`` each
dsp        ``--in X.npy --out O/features.npy --params JSON``    ``features.npy`` with one row
           (JSON = every parameter, defaults filled in)          per input row (window)
learn      ``--data-directory D --out-directory O --epochs N``  ``model.tflite`` (TFL3 file)
           ``--learning-rate LR`` + ``--<param> value`` each     and/or ``saved_model/``
deploy     ``--metadata D/deployment-metadata.json``            exactly one file: the artifact
           ``--in-directory D --out-directory O`` + params
=========  ===================================================  ===============================

Paths are as the block sees them: host paths for a local command, mount points in a container.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyforge.blocks.manifest import BlockManifest
from tinyforge.errors import InvalidArgument

#: Where a container sees its input and output.
IN_MOUNT = "/block/in"
OUT_MOUNT = "/block/out"
DSP_FEATURES = "features.npy"
LEARN_REQUIRED = ("X_split_train.npy", "Y_split_train.npy")
LEARN_OPTIONAL = ("X_split_test.npy", "Y_split_test.npy")
DEPLOY_METADATA = "deployment-metadata.json"
DEFAULT_EPOCHS = 30
DEFAULT_LEARNING_RATE = 0.001


@dataclass(frozen=True)
class InputInfo:
    """What :func:`check_input` learned about the input (used to check the output)."""

    path: Path
    is_file: bool
    rows: int | None = None  # dsp: number of windows in X.npy


def check_input(block_type: str, in_path: Path) -> InputInfo:
    """Validate the input a block of ``block_type`` is given; raise InvalidArgument(field=in)."""
    p = Path(in_path)
    if not p.exists():
        raise InvalidArgument(f"input {p} does not exist", field="in")
    if block_type == "transform":
        return InputInfo(p, p.is_file())
    if block_type == "dsp":
        if not p.is_file() or p.suffix != ".npy":
            raise InvalidArgument(
                f"a dsp block takes one .npy file of windows (N x features); got {p}", field="in"
            )
        try:
            x = np.load(p, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise InvalidArgument(
                f"input {p} is not a valid .npy file: {exc}", field="in"
            ) from None
        if x.ndim < 2 or x.shape[0] == 0:
            raise InvalidArgument(
                f"input {p} has shape {x.shape}; expected N >= 1 windows x features (ndim >= 2)",
                field="in",
            )
        return InputInfo(p, True, rows=int(x.shape[0]))
    if not p.is_dir():
        raise InvalidArgument(f"a {block_type} block takes a directory; got file {p}", field="in")
    if block_type == "learn":
        missing = [n for n in LEARN_REQUIRED if not (p / n).is_file()]
        if missing:
            raise InvalidArgument(
                f"{p} lacks {', '.join(missing)} (a learn block needs "
                f"{', '.join(LEARN_REQUIRED)}, optionally {', '.join(LEARN_OPTIONAL)})",
                field="in",
            )
        return InputInfo(p, False)
    if block_type == "deploy":
        meta = p / DEPLOY_METADATA
        try:
            doc = json.loads(meta.read_text())
        except FileNotFoundError:
            raise InvalidArgument(f"{p} lacks {DEPLOY_METADATA}", field="in") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"{meta} is not valid JSON: {exc}", field="in") from None
        if not isinstance(doc, dict):
            raise InvalidArgument(f"{meta} must hold a JSON object", field="in")
        return InputInfo(p, False)
    raise InvalidArgument(f"unknown block type {block_type!r}", field="type")


def block_args(
    manifest: BlockManifest,
    *,
    in_path: str,
    in_is_file: bool,
    out_dir: str,
    params: dict[str, Any] | None,
    epochs: int | None = None,
    learning_rate: float | None = None,
) -> list[str]:
    """The argv (after the entrypoint or local command) for one run, per the table above.

    ``params`` are validated against the manifest (InvalidArgument names ``parameters.<key>``).
    """
    t = manifest.type
    if t == "dsp":
        values = manifest.validate_values(params)
        return [
            "--in", in_path,
            "--out", f"{out_dir}/{DSP_FEATURES}",
            "--params", json.dumps(values, sort_keys=True),
        ]  # fmt: skip
    if t == "transform":
        flag = "--in-file" if in_is_file else "--in-directory"
        return [flag, in_path, "--out-directory", out_dir, *manifest.cli_args(params)]
    if t == "learn":
        values = manifest.validate_values(params)
        ep = epochs if epochs is not None else values.get("epochs", DEFAULT_EPOCHS)
        lr = (
            learning_rate
            if learning_rate is not None
            else values.get("learning_rate", DEFAULT_LEARNING_RATE)
        )
        if isinstance(ep, bool) or not isinstance(ep, int) or not 1 <= ep <= 100_000:
            raise InvalidArgument(
                f"epochs = {ep!r} is invalid: expected int 1..100000", field="epochs"
            )
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr <= 10:
            raise InvalidArgument(
                f"learning_rate = {lr!r} is invalid: expected a float in (0, 10]",
                field="learning_rate",
            )
        # epochs/learning rate are platform arguments; a block that also declares them as
        # parameters gets them once, with the platform's value.
        rest = _drop_flags(manifest.cli_args(params), {"--epochs", "--learning-rate"})
        return [
            "--data-directory", in_path,
            "--out-directory", out_dir,
            "--epochs", str(ep),
            "--learning-rate", repr(float(lr)),
            *rest,
        ]  # fmt: skip
    if t == "deploy":
        return [
            "--metadata", f"{in_path}/{DEPLOY_METADATA}",
            "--in-directory", in_path,
            "--out-directory", out_dir,
            *manifest.cli_args(params),
        ]  # fmt: skip
    raise InvalidArgument(f"unknown block type {t!r}", field="type")


def _drop_flags(args: list[str], flags: set[str]) -> list[str]:
    out: list[str] = []
    it = iter(args)
    for flag in it:
        value = next(it)
        if flag not in flags:
            out += [flag, value]
    return out


def check_output(block_type: str, out_dir: Path, info: InputInfo) -> str | None:
    """None when ``out_dir`` holds what a block of this type must write, else what is wrong."""
    files = sorted(p for p in out_dir.rglob("*") if p.is_file())
    if not files:
        return "the block exited successfully but wrote no output"
    if block_type == "dsp":
        f = out_dir / DSP_FEATURES
        if not f.is_file():
            return f"the block did not write {DSP_FEATURES}"
        try:
            feats = np.load(f, allow_pickle=False)
        except (ValueError, OSError) as exc:
            return f"{DSP_FEATURES} is not a valid .npy file: {exc}"
        if feats.ndim < 1 or feats.shape[0] != info.rows:
            return (
                f"{DSP_FEATURES} has shape {feats.shape}; expected one row per input window "
                f"({info.rows} rows)"
            )
        if feats.dtype.kind not in "fiu" or not np.all(np.isfinite(feats)):
            return f"{DSP_FEATURES} must hold finite numbers (dtype {feats.dtype})"
    elif block_type == "learn":
        tfl = out_dir / "model.tflite"
        saved = out_dir / "saved_model" / "saved_model.pb"
        if not tfl.is_file() and not saved.is_file():
            return "the block wrote neither model.tflite nor saved_model/"
        if tfl.is_file() and tfl.read_bytes()[4:8] != b"TFL3":
            return "model.tflite is not a TensorFlow Lite flatbuffer (no TFL3 identifier)"
    elif block_type == "deploy":
        top = [p for p in out_dir.iterdir()]
        if len(top) != 1 or not top[0].is_file():
            names = ", ".join(sorted(p.name for p in top))
            return f"a deploy block must write exactly one artifact file; it wrote: {names}"
    return None
