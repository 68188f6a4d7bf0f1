"""Deployment formats and the one entry point that builds any of them: :func:`build_artifact`.

A format (:class:`DeployFormat`) fills a staging folder and the build's metrics from a
:class:`~tinyforge.deploy.context.BuildContext`; :func:`build_artifact` validates the request,
runs the format in a fresh temporary directory under the time limit and zips the staging
folder into ``out_dir`` atomically. Nothing is left in ``out_dir`` when a build fails.

Formats live in one module each (``c_library``, ``arduino``, ``cortex_m_firmware``,
``esp_idf``, ``linux``, ``wasm``, ``tflite_format``, ``kserve_format``: the KServe
engineer's :func:`~tinyforge.deploy.kserve_format.stage_kserve`).
"""

from __future__ import annotations

import importlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tinyforge.deploy.artifact import write_zip
from tinyforge.deploy.bundle import DeployBundle, check_bundle
from tinyforge.deploy.context import BuildContext
from tinyforge.deploy.targets import TARGETS, TargetSpec, get_target, require
from tinyforge.errors import InvalidArgument

__all__ = ["FORMATS", "TARGETS", "BuildResult", "DeployFormat", "TargetSpec", "build_artifact",
           "get_format"]

MCU_TARGETS = tuple(n for n, t in TARGETS.items() if t.is_mcu)
ARM_TARGETS = tuple(n for n, t in TARGETS.items() if t.arch.startswith("cortex-m"))
RV_TARGETS = tuple(n for n, t in TARGETS.items() if t.arch.startswith("rv32"))
LINUX_TARGETS = tuple(n for n in TARGETS if n.startswith("linux-"))


@dataclass(frozen=True)
class DeployFormat:
    """One deployment format: ``build`` fills ``ctx.stage`` (the zip's top folder)."""

    name: str
    description: str
    targets: tuple[str, ...]
    build: Callable[[BuildContext], None]
    verified: bool = True   # runs the bundle's test windows on the target
    compiles: bool = True   # needs the target's C toolchain (checked before any work)


@dataclass
class BuildResult:
    """``artifact``: the one zip; ``metrics``: see :func:`build_artifact`; ``files``: the
    names inside the zip."""

    artifact: Path
    metrics: dict[str, float | int | str]
    files: list[str] = field(default_factory=list)


def _lazy(module: str) -> Callable[[BuildContext], None]:
    def build(ctx: BuildContext) -> None:
        importlib.import_module(f"tinyforge.deploy.{module}").build(ctx)
    return build


def _kserve(ctx: BuildContext) -> None:
    from tinyforge.deploy.kserve_format import stage_kserve

    ctx.metrics.update(stage_kserve(ctx.bundle, ctx.stage, ctx.options, ctx.log))


FORMATS: dict[str, DeployFormat] = {f.name: f for f in (
    DeployFormat("c-library", "C99 library: SDK + compiled model + CMakeLists.txt + Makefile + "
                 "example main.c", tuple(TARGETS), _lazy("c_library")),
    DeployFormat("arduino", "Arduino library (library.properties, src/, examples/)",
                 ARM_TARGETS + RV_TARGETS, _lazy("arduino")),
    DeployFormat("cortex-m-firmware", "Ready ELF/BIN/HEX for a Cortex-M board that classifies "
                 "the embedded test windows (semihosting output)", ARM_TARGETS,
                 _lazy("cortex_m_firmware")),
    DeployFormat("esp-idf", "ESP-IDF component + example project (ESP32, ESP32-C3/C6)",
                 RV_TARGETS, _lazy("esp_idf")),
    DeployFormat("linux", "Native Linux executable: WAV/CSV in, JSON out", LINUX_TARGETS,
                 _lazy("linux")),
    DeployFormat("wasm", "WebAssembly module + JS wrapper + node example", ("wasm",),
                 _lazy("wasm")),
    DeployFormat("tflite", "float32 and int8 .tflite files with metadata", tuple(TARGETS),
                 _lazy("tflite_format"), compiles=False),
    DeployFormat("kserve", "KServe predictor (runs the impulse including DSP) + "
                 "InferenceService YAML", LINUX_TARGETS, _kserve, verified=False, compiles=False),
)}


def get_format(name: str) -> DeployFormat:
    """The format called ``name``; InvalidArgument listing the valid formats otherwise."""
    try:
        return FORMATS[name]
    except (KeyError, TypeError):
        raise InvalidArgument(f"unknown format {name!r}; valid formats: {', '.join(FORMATS)}",
                              field="format") from None


def build_artifact(fmt: str, target: str, bundle: DeployBundle, out_dir: Path, *,
                   options: dict[str, str], log: Callable[[str], None],
                   timeout_s: float) -> BuildResult:
    """Build deployment format ``fmt`` of ``bundle`` for ``target`` into ``out_dir``.

    The zip is ``out_dir/<name>-<format>-<target>.zip``. Firmware-style builds run the bundle's
    test windows on the target (emulated, native or node) and fail with FailedPrecondition
    naming the first window whose prediction differs from ``bundle.platform_int8_predictions``.
    Metrics (when they apply): ``ram_bytes`` (static + stack), ``static_ram_bytes``,
    ``stack_bytes``, ``flash_bytes``, ``arena_bytes``, ``dsp_instructions`` and
    ``nn_instructions`` per inference, ``compared`` windows, ``on_target_accuracy``,
    ``platform_accuracy``, ``verified_on``, ``build_seconds``.

    Errors: InvalidArgument (unknown format/target, target not supported by the format, bad
    bundle/options), ResourceExhausted (does not fit the target's RAM/flash, with numbers),
    FailedPrecondition (toolchain missing: names the Debian package; verification mismatch),
    DeadlineExceeded (``timeout_s`` passed).
    """
    f = get_format(fmt)
    t = get_target(target)
    if t.name not in f.targets:
        raise InvalidArgument(f"format {fmt!r} does not build for target {target!r}; valid "
                              f"targets for it: {', '.join(f.targets)}", field="target")
    if not isinstance(timeout_s, int | float) or not timeout_s > 0:
        raise InvalidArgument(f"timeout_s = {timeout_s!r} must be > 0", field="timeout_s")
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        raise InvalidArgument("options must be a mapping of names to strings", field="options")
    check_bundle(bundle)
    if f.compiles:
        require(t.toolchain)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    log(f"building {fmt} for {target} ({t.description})")
    with tempfile.TemporaryDirectory(prefix=f"tf-build-{fmt}-") as tmp:
        stage = Path(tmp) / "stage" / f"{bundle.name}-{fmt}"
        work = Path(tmp) / "work"
        stage.mkdir(parents=True)
        work.mkdir()
        ctx = BuildContext(fmt=fmt, bundle=bundle, target=t, options=dict(options),
                           stage=stage, work=work, log=log, timeout_s=float(timeout_s),
                           started=t0)
        f.build(ctx)
        ctx.check_deadline()
        dest = out_dir / f"{bundle.name}-{fmt}-{target}.zip"
        files = write_zip(stage, dest, ctx.zip_root)
    metrics = dict(ctx.metrics)
    metrics.setdefault("verified_on", "not verified (format has no on-target run)")
    metrics["build_seconds"] = round(time.monotonic() - t0, 3)
    log(f"built {dest.name}: {len(files)} files; " + ", ".join(
        f"{k}={v}" for k, v in sorted(metrics.items())))
    return BuildResult(artifact=dest, metrics=metrics, files=files)
