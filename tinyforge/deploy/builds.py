"""Deployment builds of trained models: request checks, the bundle, the build job body.

A build turns a stored model (:mod:`tinyforge.training.store`) into one deployment artifact:

1. :func:`plan_build` validates format, target, precision, options and time limit and finds
   the model (of *this* project) before anything is queued;
2. :func:`assemble_bundle` makes the :class:`~tinyforge.deploy.bundle.DeployBundle`: the
   model's impulse version, labels, int8/float32 TFLite bytes, and test windows cut from the
   project's ``testing`` samples with the same windowing as training, with the platform's int8
   predictions on them computed by the live-classification code
   (:meth:`tinyforge.training.classify.LoadedModel.classify_windows`);
3. :func:`run_build` runs :func:`tinyforge.deploy.registry.build_artifact` in a **child
   process** in a fresh temporary directory (``python -m tinyforge.deploy.builds WORKDIR``):
   its output (toolchain commands and their output) streams into the job log, the parent kills
   the whole process group when the time limit passes or the job is cancelled, and the child's
   environment is the build's own (``TINYFORGE_BUILD_PATH`` replaces ``PATH`` for the
   toolchain when set). The zip is stored as ``projects/P/builds/B/artifact.zip`` and the row
   becomes ``ready`` only after that (and, for ``kserve``, after the model directory is stored
   under ``projects/P/builds/B/model/`` for KServe's storage initializer). A failed build
   leaves no object behind and records its reason.

A format ``custom:NAME[@VERSION]`` names an organization's registered deploy block
(:mod:`tinyforge.deploy.custom_block`): the child builds ``c-library`` first, then the block runs
on it in the job (input: ``deployment-metadata.json``, the model files, the C library) and the
one file it writes is stored as ``projects/P/builds/B/artifact<.ext>``. In a pipeline the block
runs as a workflow step of its own: ``run_build(..., stage_block=True)`` stops once the block's
input is staged under ``projects/P/builds/B/block-in/`` (the build stays ``running``), the
block's step writes under ``block-out/``, and :func:`finish_block_build` checks and stores that
output exactly as the in-process path does; :func:`abandon_builds` fails what a pipeline left
unfinished and :func:`remove_block_staging` removes the staged keys.

Builder options (besides the format's own, passed through): ``test_windows`` (how many test
windows to verify on the target, default 100, spread evenly over the testing set),
``ram_limit_bytes`` / ``flash_limit_bytes`` (the part of an MCU target's RAM / flash the
impulse may use: the rest belongs to the application).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tinyforge import errors
from tinyforge.deploy import custom_block
from tinyforge.deploy.bundle import DeployBundle
from tinyforge.deploy.custom_block import PARAMS_OPTION, VERSION_OPTION, is_custom_format
from tinyforge.errors import (
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    TinyForgeError,
)
from tinyforge.store.db import Database
from tinyforge.store.models import Build, Project
from tinyforge.store.objects import ObjectStore

PENDING, RUNNING, READY, FAILED = "pending", "running", "ready", "failed"
STATES = (PENDING, RUNNING, READY, FAILED)
PRECISIONS = ("int8", "float32")
#: formats that can ship the float32 model (the C formats run the compiled int8 model)
FLOAT_FORMATS = ("tflite", "kserve")
DEFAULT_TIMEOUT_S = 600.0
MAX_TIMEOUT_S = 3600.0
DEFAULT_TEST_WINDOWS = 100
MAX_TEST_WINDOWS = 2000
#: options the builder itself reads (not passed to the format)
BUILDER_OPTIONS = ("test_windows", "ram_limit_bytes", "flash_limit_bytes")
#: options the builder sets for custom deploy blocks (``custom:NAME[@VERSION]`` formats)
BLOCK_OPTIONS = (VERSION_OPTION, PARAMS_OPTION)
#: options the builder sets itself (kserve's storage location, the custom deploy block)
RESERVED_OPTIONS = ("project_id", "build_id", "storage_uri", *BLOCK_OPTIONS)
#: seconds the child process gets beyond the build's own time limit (start-up, zipping)
KILL_GRACE_S = 15.0
ARTIFACT_FILE = "artifact.zip"
MAX_ARTIFACT_BYTES = 2 << 30
_OPTION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class Reporter(Protocol):
    """What a build reports to (a :class:`tinyforge.jobs.JobContext` in the service)."""

    def log(self, line: str) -> None: ...
    def progress(self, fraction: float, message: str = "") -> None: ...
    @property
    def cancelled(self) -> bool: ...


class _Quiet:
    cancelled = False

    def log(self, line: str) -> None:
        pass

    def progress(self, fraction: float, message: str = "") -> None:
        pass


def build_prefix(project_id: int, build_id: int) -> str:
    """Folder (ending in ``/``) of one build's objects."""
    return f"projects/{project_id}/builds/{build_id}/"


def artifact_key(project_id: int, build_id: int) -> str:
    """Object key of a build's zip."""
    return build_prefix(project_id, build_id) + ARTIFACT_FILE


def block_in_key(project_id: int, build_id: int) -> str:
    """Key (a folder, no trailing ``/``) of a custom build's staged deploy block input."""
    return build_prefix(project_id, build_id) + "block-in"


def block_out_key(project_id: int, build_id: int) -> str:
    """Key (a folder, no trailing ``/``) where a deploy block's workflow step writes."""
    return build_prefix(project_id, build_id) + "block-out"


def model_dir_prefix(project_id: int, build_id: int) -> str:
    """Folder of a kserve build's model directory (the InferenceService's storage URI)."""
    return build_prefix(project_id, build_id) + "model/"


# -- planning -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildPlan:
    """A validated build request (see :func:`plan_build`)."""

    model_id: int
    impulse_id: int
    impulse_version: int
    format: str
    target: str
    precision: str
    options: dict[str, str]
    timeout_s: float
    #: custom deploy block builds: the version that will run (``custom:NAME@VERSION``)
    block_reference: str = ""


def _int_option(options: dict[str, str], key: str, lo: int, hi: int) -> int | None:
    raw = options.get(key)
    if raw is None:
        return None
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise InvalidArgument(f"option {key} = {raw!r} must be an integer in {lo}..{hi}",
                              field=f"options.{key}") from None
    if not lo <= value <= hi:
        raise InvalidArgument(f"option {key} = {value} must be in {lo}..{hi}",
                              field=f"options.{key}")
    return value


def check_options(fmt: str, target: str, precision: str,
                  options: dict[str, str]) -> dict[str, str]:
    """Validate build options; returns them (plain ``str -> str``), InvalidArgument otherwise."""
    from tinyforge.deploy.registry import get_target

    if not isinstance(options, dict):
        raise InvalidArgument("options must map names to strings", field="options")
    out: dict[str, str] = {}
    for key, value in options.items():
        if not isinstance(key, str) or not _OPTION_NAME.match(key):
            raise InvalidArgument(f"option name {key!r} must be lower-case letters, digits and "
                                  "'_' (at most 64 characters)", field="options")
        if not isinstance(value, str) or len(value) > 1024:
            raise InvalidArgument(f"option {key} must be a string of at most 1024 characters",
                                  field=f"options.{key}")
        if key in RESERVED_OPTIONS:
            raise InvalidArgument(f"option {key} is set by the builder (the build's own "
                                  "storage location / deploy block); leave it out",
                                  field=f"options.{key}")
        if key == "model_type" and value != ("float32" if precision == "float32" else "int8"):
            raise InvalidArgument("model_type follows the build's precision: use precision "
                                  "float32 instead", field=f"options.{key}")
        out[key] = value
    t = get_target(target)
    _int_option(out, "test_windows", 1, MAX_TEST_WINDOWS)
    for key, cap in (("ram_limit_bytes", t.ram_bytes), ("flash_limit_bytes", t.flash_bytes)):
        if key in out:
            if not t.is_mcu:
                raise InvalidArgument(f"option {key} applies to microcontroller targets; "
                                      f"{target} has no fixed memory budget",
                                      field=f"options.{key}")
            _int_option(out, key, 1, cap)
    if precision not in PRECISIONS:
        raise InvalidArgument(f"precision {precision!r} must be one of {', '.join(PRECISIONS)}",
                              field="precision")
    if precision == "float32" and fmt not in FLOAT_FORMATS and not is_custom_format(fmt):
        raise InvalidArgument(f"format {fmt} runs the compiled int8 model; float32 builds are "
                              f"available for formats {', '.join(FLOAT_FORMATS)}",
                              field="precision")
    return out


def plan_build(session: Any, project_id: int, *, model_id: int, fmt: str, target: str,
               precision: str = "int8", options: dict[str, str] | None = None,
               timeout_s: float = 0.0, parameters: dict[str, str] | None = None) -> BuildPlan:
    """Check a build request against the format/target catalog and the project's models.

    ``model_id`` 0 = the newest model of the project; ``timeout_s`` 0 = the default
    (600 s). ``fmt`` ``custom:NAME[@VERSION]`` names a registered deploy block of the
    project's organization (:mod:`tinyforge.deploy.custom_block`: its version is pinned here,
    ``parameters`` validated against its schema; it builds for the targets of ``c-library``);
    built-in formats take no ``parameters``. InvalidArgument (unknown format/target naming the
    valid ones, target not built by the format, bad options/parameters/precision/time limit),
    NotFound (no such model in this project, no such block), FailedPrecondition (the model
    has no int8 network form to deploy).
    """
    from tinyforge.deploy.registry import get_format, get_target
    from tinyforge.training.store import get_model_row, latest_model_row

    block = None
    if is_custom_format(fmt):
        block = custom_block.plan_block(session, project_id, fmt, parameters)
        f = get_format(custom_block.BASE_FORMAT)
    else:
        f = get_format(fmt)
        if parameters:
            raise InvalidArgument(f"format {fmt!r} takes no parameters (only custom deploy "
                                  "blocks do; use options for a built-in format's settings)",
                                  field="parameters")
    t = get_target(target)
    if t.name not in f.targets:
        raise InvalidArgument(f"format {fmt!r} does not build for target {target!r}; valid "
                              f"targets for it: {', '.join(f.targets)}", field="target")
    opts = check_options(fmt, target, precision, dict(options or {}))
    if timeout_s == 0:
        timeout_s = DEFAULT_TIMEOUT_S
    if not (isinstance(timeout_s, int | float) and 0 < timeout_s <= MAX_TIMEOUT_S):
        raise InvalidArgument(f"timeout_s = {timeout_s!r} must be in (0, {MAX_TIMEOUT_S:g}] "
                              "seconds (0 = the default, 600)", field="timeout_s")
    if model_id < 0:
        raise InvalidArgument(f"model_id must be >= 0 (0 = the newest model), got {model_id}",
                              field="model_id")
    row = (get_model_row(session, project_id, model_id) if model_id
           else latest_model_row(session, project_id))
    if (row.task == "classification" and "model_int8.tflite" not in (row.files or {})
            and "model_float32.tflite" in (row.files or {})):
        raise FailedPrecondition(
            f"model {row.id} ({row.block_type}) has only a float32 network and builds need its "
            "int8 form: have the learn block write saved_model/ (the platform quantizes it) or "
            "an int8 model.tflite", field="model_id")
    if row.task != "classification" or "model_int8.tflite" not in (row.files or {}):
        raise FailedPrecondition(
            f"model {row.id} is a {row.task} model of block type {row.block_type} without an "
            "int8 network: deployment builds need a classifier trained with a neural network",
            field="model_id")
    _check_builtin_dsp(session, project_id, row)
    if block is not None:
        opts.update(custom_block.block_options(block))
    return BuildPlan(model_id=row.id, impulse_id=row.impulse_id,
                     impulse_version=row.impulse_version, format=fmt, target=target,
                     precision=precision, options=opts, timeout_s=float(timeout_s),
                     block_reference=block.reference if block is not None else "")


def _check_builtin_dsp(session: Any, project_id: int, row: Any) -> None:
    """FailedPrecondition when a custom DSP block feeds the model: every build runs the
    impulse's DSP (C twins on the device, the predictor's Python blocks, verification
    windows), and a custom block has no implementation there."""
    from tinyforge.blocks.registered import is_custom
    from tinyforge.impulse_store import get_impulse

    impulse = get_impulse(session, project_id, row.impulse_id, row.impulse_version).impulse
    learn = next((lb for lb in impulse.learning if lb.name == row.learn_block), None)
    names = learn.inputs if learn is not None else [b.name for b in impulse.processing]
    custom = [impulse.processing_block(n).block for n in names
              if is_custom(impulse.processing_block(n).block)]
    if custom:
        raise FailedPrecondition(
            f"model {row.id} is fed by custom DSP block(s) {', '.join(custom)}: deployment "
            "builds run the impulse's DSP on the target (C SDK) or in the predictor, which "
            "have no implementation of a custom block; use built-in processing blocks for "
            "a deployable impulse", field="model_id")


def create_build(session: Any, project_id: int, plan: BuildPlan, *, job_id: int | None = None,
                 created_by_key_id: int | None = None) -> Build:
    """Insert the ``pending`` build row of ``plan`` in the caller's transaction."""
    row = Build(project_id=project_id, model_id=plan.model_id, impulse_id=plan.impulse_id,
                impulse_version=plan.impulse_version, format=plan.format, target=plan.target,
                precision=plan.precision, options=dict(plan.options),
                timeout_s=plan.timeout_s, state=PENDING, job_id=job_id,
                created_by_key_id=created_by_key_id)
    session.add(row)
    session.flush()
    return row


def reconcile(session: Any, row: Build) -> Build:
    """A pending/running build whose job ended without finishing it (cancelled while queued,
    its process died) is marked ``failed`` with the job's reason."""
    from tinyforge.store.models import Job, JobStatus

    if row.state in (PENDING, RUNNING) and row.job_id:
        job = session.get(Job, row.job_id)
        if job is not None and job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            row.state, row.finished_at = FAILED, job.finished_at or _now()
            row.error = row.error or (job.error or f"job {job.id} {job.status.value}")[:4000]
    return row


def get_build(session: Any, project_id: int, build_id: int) -> Build:
    """Build ``build_id`` of a project; NotFound otherwise (also for other projects' builds)."""
    row = session.get(Build, build_id) if build_id > 0 else None
    if row is None or row.project_id != project_id:
        raise NotFound(f"build {build_id} does not exist in project {project_id}",
                       field="build_id")
    return reconcile(session, row)


def list_builds(session: Any, project_id: int, *, model_id: int = 0, state: str = "",
                limit: int = 100) -> list[Build]:
    """Builds of a project, newest first (of one model / in one state when given)."""
    from sqlalchemy import select

    if state and state not in STATES:
        raise InvalidArgument(f"state {state!r} must be one of {', '.join(STATES)}",
                              field="state")
    if not 1 <= limit <= 1000:
        raise InvalidArgument(f"limit must be in 1..1000, got {limit}", field="limit")
    q = select(Build).where(Build.project_id == project_id)
    if model_id:
        q = q.where(Build.model_id == model_id)
    if state:
        q = q.where(Build.state == state)
    return [reconcile(session, r) for r in session.scalars(q.order_by(Build.id.desc())
                                                            .limit(limit))]


# -- the bundle ---------------------------------------------------------------------------------
def c_name(name: str) -> str:
    """``name`` as a C identifier for the generated code (``impulse`` when nothing is left)."""
    s = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")[:40]
    if not s:
        return "impulse"
    return s if not s[0].isdigit() else f"p_{s}"[:40]


def _spread(n: int, k: int) -> np.ndarray:
    """``min(n, k)`` indices spread evenly over ``range(n)`` (all of them when n <= k)."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(int))


def assemble_bundle(db: Database, objects: ObjectStore, project_id: int, model_id: int, *,
                    max_windows: int = DEFAULT_TEST_WINDOWS, name: str = "impulse",
                    log: Callable[[str], None] = lambda _m: None) -> DeployBundle:
    """The DeployBundle of a stored model, with test windows from the testing category.

    Windows are cut from every enabled testing sample exactly as for training (the model's
    impulse version's input block; window labels from the sample / structured labels); at most
    ``max_windows`` of them, spread evenly. ``platform_int8_predictions`` come from the
    platform's classification path (Python DSP blocks + LiteRT int8 kernels). No testing data:
    the bundle has no test windows (builds are then not verified on the target).
    """
    from tinyforge.data.windowing import window_label
    from tinyforge.features.generate import dataset_samples, load_windows
    from tinyforge.impulse import TimeSeriesInput
    from tinyforge.training.classify import LoadedModel
    from tinyforge.training.store import load_model_files

    mf = load_model_files(objects, project_id, model_id)
    lm = LoadedModel(mf)
    labels = tuple(mf.labels)
    if mf.int8 is None:
        raise FailedPrecondition(f"model {model_id} has no int8 TFLite model to deploy",
                                 field="model_id")
    imp = lm.impulse
    win_ms = (imp.input.window_samples * 1000.0 / imp.input.frequency_hz
              if isinstance(imp.input, TimeSeriesInput) else 0.0)
    windows: list[np.ndarray] = []
    truth: list[str] = []
    skipped: dict[str, int] = {}
    refs = [r for r in dataset_samples(db, objects, project_id) if r.category == "testing"]
    for ref in refs:
        data, starts = load_windows(objects, ref, imp)
        for w, t in zip(data, starts.tolist(), strict=True):
            lab = window_label(t, t + win_ms, ref.label, ref.structured)
            if lab is None or lab not in labels:
                skipped[str(lab)] = skipped.get(str(lab), 0) + 1
                continue
            windows.append(w)
            truth.append(lab)
    if skipped:
        log("test windows skipped (label not known to the model): " + ", ".join(
            f"{k} x{v}" for k, v in sorted(skipped.items())))
    if not windows:
        log(f"the project has no labelled testing windows for model {model_id}'s labels: the "
            "build is not verified on the target")
        return DeployBundle(impulse=imp, labels=labels, model_int8=mf.int8,
                            model_float32=mf.float32, test_windows=None, test_labels=None,
                            platform_int8_predictions=None, name=c_name(name))
    pick = _spread(len(windows), max_windows)
    x = np.stack([windows[i] for i in pick]).astype(np.float32)
    y = tuple(truth[i] for i in pick)
    res = lm.classify_windows(x, np.zeros(len(x)), use_float=False)
    if res.form != "int8":
        raise FailedPrecondition(f"model {model_id} has no int8 form", field="model_id")
    preds = tuple(int(np.argmax(w.scores)) for w in res.windows)
    acc = float(np.mean([labels[p] == t for p, t in zip(preds, y, strict=True)]))
    log(f"test set: {len(x)} of {len(windows)} testing windows from {len(refs)} samples; "
        f"platform int8 accuracy on them {acc:.4f}")
    return DeployBundle(impulse=imp, labels=labels, model_int8=mf.int8, model_float32=mf.float32,
                        test_windows=x, test_labels=y, platform_int8_predictions=preds,
                        name=c_name(name))


# -- the child process --------------------------------------------------------------------------
def write_request(work: Path, bundle: DeployBundle, fmt: str, target: str,
                  options: dict[str, str], timeout_s: float) -> None:
    """Write what the child build process reads (``request.json`` + model / window files)."""
    (work / "model_int8.tflite").write_bytes(bundle.model_int8)
    if bundle.model_float32 is not None:
        (work / "model_float32.tflite").write_bytes(bundle.model_float32)
    if bundle.test_windows is not None:
        np.save(work / "test_windows.npy", np.asarray(bundle.test_windows, np.float32))
    req = {
        "format": fmt, "target": target, "options": options, "timeout_s": timeout_s,
        "impulse": bundle.impulse.to_dict(), "labels": list(bundle.labels), "name": bundle.name,
        "test_labels": list(bundle.test_labels) if bundle.test_labels is not None else None,
        "platform_int8_predictions": (list(bundle.platform_int8_predictions)
                                      if bundle.platform_int8_predictions is not None else None),
    }
    (work / "request.json").write_text(json.dumps(req))


def _child_main(work: Path) -> int:
    """Body of ``python -m tinyforge.deploy.builds WORKDIR``: build, write ``result.json``."""
    from tinyforge.deploy import targets as targets_mod
    from tinyforge.deploy.registry import build_artifact
    from tinyforge.impulse import Impulse

    def log(line: str) -> None:
        print(line, flush=True)

    result: dict[str, Any]
    try:
        req = json.loads((work / "request.json").read_text())
        opts = dict(req["options"])
        # the application's share of the MCU: this process's catalog only
        t = targets_mod.get_target(req["target"])
        ram, flash = opts.pop("ram_limit_bytes", None), opts.pop("flash_limit_bytes", None)
        if ram is not None or flash is not None:
            t = dataclasses.replace(t, ram_bytes=int(ram or t.ram_bytes),
                                    flash_bytes=int(flash or t.flash_bytes))
            targets_mod.TARGETS[t.name] = t
            log(f"memory budget for the impulse on {t.name}: RAM {t.ram_bytes} B, flash "
                f"{t.flash_bytes} B")
        opts.pop("test_windows", None)
        f32 = work / "model_float32.tflite"
        xw = work / "test_windows.npy"
        preds = req["platform_int8_predictions"]
        bundle = DeployBundle(
            impulse=Impulse.from_dict(req["impulse"]), labels=tuple(req["labels"]),
            model_int8=(work / "model_int8.tflite").read_bytes(),
            model_float32=f32.read_bytes() if f32.exists() else None,
            test_windows=np.load(xw) if xw.exists() else None,
            test_labels=tuple(req["test_labels"]) if req["test_labels"] is not None else None,
            platform_int8_predictions=tuple(preds) if preds is not None else None,
            name=req["name"])
        res = build_artifact(req["format"], req["target"], bundle, work / "out", options=opts,
                             log=log, timeout_s=float(req["timeout_s"]))
        result = {"ok": True, "artifact": str(res.artifact), "metrics": res.metrics,
                  "files": res.files}
    except TinyForgeError as exc:
        result = {"ok": False, "error": type(exc).__name__, "message": exc.message,
                  "field": exc.field}
    except Exception as exc:  # reported, not re-raised: the parent turns it into the job error
        import traceback

        log(traceback.format_exc(limit=6))
        result = {"ok": False, "error": "TinyForgeError",
                  "message": f"build failed: {type(exc).__name__}: {exc}", "field": None}
    tmp = work / "result.json.part"
    tmp.write_text(json.dumps(result, default=str))
    tmp.replace(work / "result.json")
    return 0 if result["ok"] else 1


def build_environment() -> dict[str, str]:
    """The child build's environment: this process's, with ``TINYFORGE_BUILD_PATH`` (when
    set) as the toolchain ``PATH``."""
    env = dict(os.environ)
    path = os.environ.get("TINYFORGE_BUILD_PATH")
    if path is not None:
        env["PATH"] = path
    # the repository root, so the child imports this very tinyforge package
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _raise_child_error(result: dict[str, Any]) -> None:
    cls = getattr(errors, str(result.get("error")), None)
    if not (isinstance(cls, type) and issubclass(cls, TinyForgeError)):
        cls = TinyForgeError
    raise cls(str(result.get("message", "build failed")), field=result.get("field"))


def run_child_build(work: Path, timeout_s: float, rep: Reporter) -> dict[str, Any]:
    """Run the child build in ``work`` (see :func:`write_request`); stream its output into
    ``rep.log``; kill it past ``timeout_s`` + grace (DeadlineExceeded) or on cancellation
    (Cancelled). Returns the child's result on success, raises its error otherwise."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinyforge.deploy.builds", str(work)], cwd=work,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=build_environment(), start_new_session=True)
    lines: list[str] = []
    lock = threading.Lock()

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            with lock:
                lines.append(raw.decode(errors="replace").rstrip("\n"))

    reader = threading.Thread(target=pump, name="tinyforge-build-log", daemon=True)
    reader.start()

    def flush() -> None:
        with lock:
            batch = lines[:]
            lines.clear()
        if batch:
            rep.log("\n".join(batch))

    deadline = time.monotonic() + timeout_s + KILL_GRACE_S
    why: TinyForgeError | None = None
    try:
        while proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.25)
            flush()
            if rep.cancelled:
                why = Cancelled("build cancelled by request")
            elif time.monotonic() > deadline:
                why = DeadlineExceeded(f"build exceeded its time limit of {timeout_s:g} s",
                                       field="timeout_s")
            if why is not None:
                break
    finally:
        if proc.poll() is None:  # not reaped yet: the group id is still this child's
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the toolchain / emulator children too
            proc.wait()
        reader.join(timeout=5)
        flush()
    if why is not None:
        raise why
    try:
        result = json.loads((work / "result.json").read_text())
    except (OSError, ValueError):
        raise TinyForgeError(f"the build process ended (exit code {proc.returncode}) without "
                             "a result; see the job log") from None
    if not result.get("ok"):
        _raise_child_error(result)
    return result


# -- the job body -------------------------------------------------------------------------------
def _now() -> datetime:
    return datetime.now(UTC)


def run_build(db: Database, objects: ObjectStore, project_id: int, build_id: int,
              reporter: Reporter | None = None, *, stage_block: bool = False) -> dict[str, Any]:
    """Run build ``build_id`` (the job body): bundle -> child build -> stored artifact.

    Returns ``{"build_id", "artifact_key", "size", "sha256", "metrics"}``. On any failure the
    build's objects are deleted, the row is ``failed`` with the reason, and the error is
    raised again (the job fails with it).

    ``stage_block`` (pipelines): a custom deploy block build stops before the block runs: its
    input is staged under :func:`block_in_key` and the build stays ``running``; returns
    ``{"build_id", "custom": True, "block", "image", "pod_spec_patch", "in_key", "out_key"}``
    for the block's workflow step, to be followed by :func:`finish_block_build`.
    """
    from tinyforge.deploy.kserve_format import model_files

    rep: Reporter = reporter or _Quiet()
    with db.session() as s:
        row = get_build(s, project_id, build_id)
        if row.state != PENDING:
            raise FailedPrecondition(f"build {build_id} is {row.state}, not pending",
                                     field="build_id")
        row.state, row.started_at = RUNNING, _now()
        fmt, target, precision = row.format, row.target, row.precision
        options, timeout_s, model_id = dict(row.options or {}), float(row.timeout_s), row.model_id
        impulse_id, impulse_version = row.impulse_id, row.impulse_version
        project = s.get(Project, project_id)
        pname = project.name if project is not None else "impulse"
    custom = is_custom_format(fmt)
    block_version, block_params = 0, {}
    if custom:
        options, block_version, block_params = custom_block.split_options(options)
    deadline = time.monotonic() + timeout_s
    try:
        rep.progress(0.02, "preparing the model and test windows")
        rep.log(f"build {build_id}: model {model_id} as {fmt} for {target} ({precision})")
        max_windows = int(options.get("test_windows", DEFAULT_TEST_WINDOWS))
        bundle = assemble_bundle(db, objects, project_id, model_id, max_windows=max_windows,
                                 name=pname, log=rep.log)
        fmt_options = {k: v for k, v in options.items() if k != "test_windows"}
        if fmt == "kserve":
            fmt_options.update(project_id=str(project_id), build_id=str(build_id))
            if precision == "float32":
                fmt_options["model_type"] = "float32"
        if rep.cancelled:
            raise Cancelled("build cancelled by request")
        ready = None
        if custom:  # the block is looked up (and can run here) before the C library is made
            ready = custom_block.resolve_for_build(
                db, project_id=project_id, build_id=build_id, fmt=fmt, version=block_version,
                parameters=block_params, as_step=stage_block)
        rep.progress(0.1, f"building {fmt} for {target}")
        key, content_type = artifact_key(project_id, build_id), "application/zip"
        model = {"id": model_id, "impulseId": impulse_id, "impulseVersion": impulse_version,
                 "labels": list(bundle.labels)}
        with tempfile.TemporaryDirectory(prefix=f"tinyforge-build-{build_id}-") as tmp:
            work = Path(tmp)
            if custom:  # the C library first; the deploy block wraps it
                rep.log(f"building {custom_block.BASE_FORMAT} for {target}: the deploy block's "
                        "input")
            write_request(work, bundle, custom_block.BASE_FORMAT if custom else fmt, target,
                          fmt_options, timeout_s)
            result = run_child_build(work, timeout_s, rep)
            if ready is not None and stage_block:
                rep.progress(0.6, f"staging the input of deploy block {ready.reg.reference}")
                return _stage_block(db, objects, project_id, build_id, ready, fmt=fmt,
                                    bundle=bundle, library=result, work=work / "custom",
                                    target=target, precision=precision, model=model,
                                    deadline=deadline, log=rep.log)
            if ready is not None:
                rep.progress(0.6, f"running deploy block {ready.reg.reference}")
                made = custom_block.run_block_build(
                    objects, ready, build_id=build_id, fmt=fmt, bundle=bundle,
                    library=result, work=work / "custom", target=target, precision=precision,
                    model=model, deadline=deadline, log=rep.log,
                    cancelled=lambda: rep.cancelled)
                result = {"artifact": str(made.artifact), "metrics": made.metrics,
                          "files": made.files}
                key = (build_prefix(project_id, build_id) + "artifact"
                       + custom_block.artifact_suffix(made.artifact.name))
                content_type = made.content_type
            rep.progress(0.9, "storing the artifact")
            model_prefix = ""
            if fmt == "kserve":
                # KServe's storage initializer copies this folder to /mnt/models
                model_prefix = model_dir_prefix(project_id, build_id)
                for fname, data in sorted(model_files(bundle).items()):
                    objects.put_bytes(model_prefix + fname, data)
                rep.log(f"model directory stored under {model_prefix}")
            summary = _complete(db, objects, project_id, build_id, Path(result["artifact"]),
                                key=key, content_type=content_type,
                                metrics=dict(result["metrics"]), files=list(result["files"]),
                                model_prefix=model_prefix)
    except BaseException as exc:
        fail_build(db, objects, project_id, build_id, _reason(exc))
        raise
    _log_ready(rep, summary)
    return summary


def _reason(exc: BaseException) -> str:
    return (f"{type(exc).__name__}: {exc.message}" if isinstance(exc, TinyForgeError)
            else f"{type(exc).__name__}: {exc}")


def _log_ready(rep: Reporter, summary: dict[str, Any]) -> None:
    rep.log(f"build {summary['build_id']} ready: {summary['artifact_key']} ({summary['size']} "
            "bytes); " + ", ".join(f"{k}={v}" for k, v in sorted(summary["metrics"].items())))


def fail_build(db: Database, objects: ObjectStore, project_id: int, build_id: int,
               reason: str) -> None:
    """Delete every object of the build and record it ``failed`` with ``reason``."""
    objects.delete_prefix(build_prefix(project_id, build_id))
    with db.session() as s:
        row = s.get(Build, build_id)
        if row is not None:
            row.state, row.finished_at, row.error = FAILED, _now(), reason[:4000]


def build_summary(row: Build) -> dict[str, Any]:
    """The job result of a ready build (what :func:`run_build` returns)."""
    return {"build_id": row.id, "artifact_key": row.artifact_key, "size": row.artifact_size,
            "sha256": row.artifact_sha256, "metrics": dict(row.metrics or {})}


def _complete(db: Database, objects: ObjectStore, project_id: int, build_id: int,
              artifact: Path, *, key: str, content_type: str, metrics: dict[str, Any],
              files: list[str], model_prefix: str = "") -> dict[str, Any]:
    """Store ``artifact`` as the build's object ``key`` and mark the build ``ready``."""
    with open(artifact, "rb") as fh:
        info = objects.put_stream(key, fh, content_type=content_type,
                                  metadata={"build-id": str(build_id)},
                                  max_bytes=MAX_ARTIFACT_BYTES)
    with db.session() as s:
        row = s.get(Build, build_id)
        if row is None:  # the project was deleted while building
            raise NotFound(f"build {build_id} no longer exists", field="build_id")
        row.metrics = metrics
        row.files = files
        row.artifact_key, row.artifact_size, row.artifact_sha256 = (
            info.key, info.size, info.sha256)
        row.model_prefix = model_prefix
        row.state, row.finished_at, row.error = READY, _now(), ""
        return build_summary(row)


def _stage_block(db: Database, objects: ObjectStore, project_id: int, build_id: int,
                 ready: custom_block.ReadyBlock, **kw: Any) -> dict[str, Any]:
    """Stage the block's input (see :func:`run_build`); the C library's metrics are kept on
    the running build for :func:`finish_block_build`."""
    stage = custom_block.stage_block_input(
        objects, ready, in_key=block_in_key(project_id, build_id),
        out_key=block_out_key(project_id, build_id), build_id=build_id, **kw)
    with db.session() as s:
        row = s.get(Build, build_id)
        if row is None:
            raise NotFound(f"build {build_id} no longer exists", field="build_id")
        row.metrics = dict(kw["library"].get("metrics") or {})
    return {"build_id": build_id, "custom": True, "block": ready.reg.reference,
            "image": stage.image, "pod_spec_patch": stage.pod_spec_patch,
            "in_key": stage.in_key, "out_key": stage.out_key}


def finish_block_build(db: Database, objects: ObjectStore, project_id: int, build_id: int,
                       reporter: Reporter | None = None) -> dict[str, Any]:
    """Complete a custom build whose deploy block ran as a workflow step (see
    :func:`run_build` with ``stage_block``): check the one file the block wrote under
    :func:`block_out_key`, store it as the build's artifact (``artifact<.ext>``) and mark the
    build ``ready`` exactly as the in-process path does; the staged keys are removed. Returns
    the job result; on failure the build is ``failed`` (BlockFailed naming the block and the
    problem) with no object left, and the error raised."""
    rep: Reporter = reporter or _Quiet()
    with db.session() as s:
        row = get_build(s, project_id, build_id)
        if row.state != RUNNING or not is_custom_format(row.format):
            raise FailedPrecondition(f"build {build_id} is a {row.state} {row.format} build, not "
                                     "a running custom deploy block build", field="build_id")
        reference = block_reference(row)
        library_metrics = dict(row.metrics or {})
    try:
        with tempfile.TemporaryDirectory(prefix=f"tinyforge-build-{build_id}-") as tmp:
            artifact = custom_block.block_output_file(
                objects, block_out_key(project_id, build_id), Path(tmp) / "out",
                block=reference)
            rep.log(f"deploy block {reference} wrote {artifact.name} "
                    f"({artifact.stat().st_size} bytes)")
            rep.progress(0.9, "storing the artifact")
            key = (build_prefix(project_id, build_id) + "artifact"
                   + custom_block.artifact_suffix(artifact.name))
            summary = _complete(
                db, objects, project_id, build_id, artifact, key=key,
                content_type=custom_block.artifact_content_type(artifact.name),
                metrics=custom_block.block_metrics(library_metrics, reference,
                                                   custom_block.STEP_ENGINE),
                files=[artifact.name])
        remove_block_staging(objects, project_id, build_id)
    except BaseException as exc:
        fail_build(db, objects, project_id, build_id, _reason(exc))
        raise
    _log_ready(rep, summary)
    return summary


def block_reference(row: Build) -> str:
    """``custom:NAME@VERSION`` of a custom build's pinned deploy block."""
    _rest, version, _params = custom_block.split_options(dict(row.options or {}))
    name, _v = custom_block.parse_format(row.format)
    return f"{custom_block.CUSTOM_PREFIX}{name}@{version}"


def remove_block_staging(objects: ObjectStore, project_id: int, build_id: int) -> int:
    """Remove a build's staged deploy block input and output; returns the objects removed."""
    return sum(objects.delete_prefix(k + "/") for k in (block_in_key(project_id, build_id),
                                                        block_out_key(project_id, build_id)))


def job_builds(db: Database, project_id: int, job_id: int, build_id: int = 0) -> list[int]:
    """Ids of the project's builds made by job ``job_id`` (and ``build_id`` when > 0)."""
    from sqlalchemy import or_, select

    conds = [Build.job_id == job_id] if job_id > 0 else []
    if build_id > 0:
        conds.append(Build.id == build_id)
    if not conds:
        return []
    with db.session() as s:
        return sorted(s.scalars(select(Build.id).where(Build.project_id == project_id,
                                                       or_(*conds))))


def abandon_builds(db: Database, objects: ObjectStore, project_id: int, build_ids: list[int],
                   reason: Callable[[Build], str]) -> list[int]:
    """Fail each of ``build_ids`` still pending or running (a pipeline ended without
    finishing it) with ``reason(row)``, deleting its objects; returns the ids failed."""
    failed = []
    for build_id in build_ids:
        with db.session() as s:
            row = s.get(Build, build_id)
            if row is None or row.project_id != project_id or row.state not in (PENDING,
                                                                                RUNNING):
                continue
            why = reason(row)
        fail_build(db, objects, project_id, build_id, why)
        failed.append(build_id)
    return failed


if __name__ == "__main__":
    sys.exit(_child_main(Path(sys.argv[1])))
