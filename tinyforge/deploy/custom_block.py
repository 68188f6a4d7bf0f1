"""Registered custom deploy blocks as build formats: ``custom:NAME`` / ``custom:NAME@VERSION``.

A build whose format names an organization's registered ``deploy`` block (DESIGN.md §5) runs
like a built-in one, with one extra stage:

1. :func:`plan_block` (when the build is requested) resolves the block in the project's
   organization, pins its version (``custom:NAME`` = the latest version *now*), checks it is a
   deploy block and validates the build's parameters against its ``parameters.json``
   (InvalidArgument names ``parameters.<key>``). The pinned version and the parameters travel
   in the build's options under the reserved keys :data:`VERSION_OPTION` and
   :data:`PARAMS_OPTION` (see :func:`block_options` / :func:`split_options`).
2. The builder makes the ``c-library`` format of the model first (:data:`BASE_FORMAT`, verified
   on the target like any C build).
3. :func:`run_block_build` prepares the block's input directory — ``deployment-metadata.json``
   (:func:`deployment_metadata`, modelled on Edge Impulse's file of that name), the model files
   under ``model/`` and the C library under ``c-library/`` (the zip's contents without its top
   folder) — and runs the block with the deploy contract (``--metadata``, ``--in-directory``,
   ``--out-directory`` + its parameters) through :func:`tinyforge.blocks.run.run_block`: as a
   podman container when the version has an image and podman works here, else as its
   ``info.localCommand`` from the stored source (the policy every registered block follows,
   :mod:`tinyforge.blocks.registered`). The one file the block writes is the build artifact.

A block that exits non-zero, writes no file or several, or outlives the build's remaining time
fails the build with the block's last output lines in the error (the
:mod:`tinyforge.blocks.errors` classes), and no artifact is stored.

In a pipeline (engines ``local`` / ``argo``, ``hera_workflows/build.py``) the block runs as a
workflow step of its own instead, from its image: :func:`stage_block_input` writes the same
input directory and uploads it under the build's ``block-in`` key, with the step's image and pod
spec patch (the same contract argv, at ``/block/in`` and ``/block/out``); after the step,
:func:`block_output_file` fetches what it wrote under ``block-out`` and applies the same output
check as an in-process run.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
import shutil
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyforge.blocks.registered import (
    CUSTOM_PREFIX,
    choose_engine,
    parse_custom_ref,
    resolved_block,
)
from tinyforge.blocks.registry_store import RegisteredBlock
from tinyforge.deploy.bundle import DeployBundle
from tinyforge.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument, NotFound

#: the built-in format whose output (unzipped) the block receives
BASE_FORMAT = "c-library"
#: folders of the block's input directory
LIBRARY_DIR = "c-library"
MODEL_DIR = "model"
#: build options the builder sets for custom blocks (users may not)
VERSION_OPTION = "block_version"
PARAMS_OPTION = "block_parameters"
#: the builds table stores the format in 32 characters
MAX_FORMAT_CHARS = 32
METADATA_VERSION = 1
MAX_PARAMETERS = 64
MAX_PARAMETER_CHARS = 1024
_SUFFIX = re.compile(r"^\.[a-z0-9]{1,12}$")


def is_custom_format(fmt: str) -> bool:
    """Whether a build format names a registered deploy block (``custom:...``)."""
    return isinstance(fmt, str) and fmt.startswith(CUSTOM_PREFIX)


def parse_format(fmt: str) -> tuple[str, int]:
    """``custom:NAME[@VERSION]`` -> (NAME, VERSION or 0 = latest); InvalidArgument(format)."""
    name, version = parse_custom_ref(fmt, field="format")
    if len(fmt) > MAX_FORMAT_CHARS:
        raise InvalidArgument(f"format {fmt!r} is {len(fmt)} characters; a build format is at "
                              f"most {MAX_FORMAT_CHARS} (register the block under a shorter "
                              "name)", field="format")
    return name, version


@dataclass(frozen=True)
class DeployBlockPlan:
    """A resolved, validated custom deploy block request."""

    name: str
    version: int
    parameters: dict[str, str]

    @property
    def reference(self) -> str:
        """``custom:NAME@VERSION``: the exact version the build runs."""
        return f"{CUSTOM_PREFIX}{self.name}@{self.version}"


def check_parameters(reg: RegisteredBlock, parameters: dict[str, str] | None) -> dict[str, Any]:
    """Validate block parameters (strings, as the API carries them) against the block's schema.

    Returns every parameter's value, defaults filled in. InvalidArgument names
    ``parameters.<key>`` (unknown key, value out of range / not a choice) or ``parameters``.
    """
    params = parameters or {}
    if not isinstance(params, dict):
        raise InvalidArgument("parameters must map names to strings", field="parameters")
    if len(params) > MAX_PARAMETERS:
        raise InvalidArgument(f"{len(params)} parameters; at most {MAX_PARAMETERS}",
                              field="parameters")
    for key, value in params.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArgument("parameters must map names to strings", field="parameters")
        if len(value) > MAX_PARAMETER_CHARS:
            raise InvalidArgument(f"parameter {key} is {len(value)} characters; at most "
                                  f"{MAX_PARAMETER_CHARS}", field=f"parameters.{key}")
    return reg.manifest.validate_values(params)


def lookup_block(session: Any, project_id: int, name: str, version: int) -> RegisteredBlock:
    """Version ``version`` (0 = latest) of deploy block ``name`` of the project's organization.

    NotFound(format) when the organization has no such block or version (other organizations'
    blocks are invisible); InvalidArgument(format) when it is not a deploy block.
    """
    from tinyforge.accounts.projects import get_project
    from tinyforge.blocks.registry_store import get_registered_block

    org_id = get_project(session, project_id).org_id
    try:
        reg = get_registered_block(session, org_id, name, version)
    except NotFound as exc:
        raise NotFound(f"format custom:{name}{f'@{version}' if version else ''}: "
                       f"{exc.message}", field="format") from None
    if reg.type != "deploy":
        raise InvalidArgument(f"block {name!r} is a {reg.type} block; a build format must be a "
                              "deploy block", field="format")
    return reg


def plan_block(session: Any, project_id: int, fmt: str,
               parameters: dict[str, str] | None) -> DeployBlockPlan:
    """Resolve and pin the block of ``fmt`` and validate ``parameters`` (see module doc)."""
    name, version = parse_format(fmt)
    reg = lookup_block(session, project_id, name, version)
    check_parameters(reg, parameters)
    return DeployBlockPlan(reg.name, reg.version, dict(parameters or {}))


def block_options(plan: DeployBlockPlan) -> dict[str, str]:
    """The reserved build options recording the pinned version and the parameters."""
    return {VERSION_OPTION: str(plan.version),
            PARAMS_OPTION: json.dumps(plan.parameters, sort_keys=True)}


def split_options(options: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Stored build options -> (the format's and builder's options, block version (0 when
    absent), block parameters)."""
    rest = {k: v for k, v in options.items() if k not in (VERSION_OPTION, PARAMS_OPTION)}
    try:
        version = int(options.get(VERSION_OPTION, 0) or 0)
        params = json.loads(options.get(PARAMS_OPTION) or "{}")
    except (TypeError, ValueError):
        raise InvalidArgument("the build's stored block options are malformed",
                              field="options") from None
    return rest, version, {str(k): str(v) for k, v in dict(params).items()}


# -- engine -------------------------------------------------------------------------------------
def block_engine(reg: RegisteredBlock, allow_local: bool | None = None) -> str:
    """How ``reg`` runs here now (:func:`tinyforge.blocks.registered.choose_engine`: ``podman``
    when it has an image and podman works, else ``local`` from its stored source when local
    commands are allowed); FailedPrecondition(format) naming why neither is possible."""
    try:
        return choose_engine(reg, allow_local)
    except FailedPrecondition as exc:
        raise FailedPrecondition(f"deploy {exc.message}", field="format") from None


# -- the block's input --------------------------------------------------------------------------
def tflite_details(model: bytes) -> dict[str, Any]:
    """Input/output tensors of a ``.tflite`` model: name, shape, dtype and, when quantized,
    ``scale`` / ``zeroPoint`` (per-tensor; real = scale * (q - zeroPoint))."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model)

    def desc(d: dict[str, Any]) -> dict[str, Any]:
        scale, zero_point = d["quantization"]
        out: dict[str, Any] = {"name": str(d["name"]), "shape": [int(v) for v in d["shape"]],
                               "dtype": np.dtype(d["dtype"]).name}
        if scale:
            out.update(scale=float(scale), zeroPoint=int(zero_point))
        return out

    return {"inputs": [desc(d) for d in it.get_input_details()],
            "outputs": [desc(d) for d in it.get_output_details()]}


def _sensor(bundle: DeployBundle) -> str | None:
    """Edge Impulse's sensor guess from the input block."""
    from tinyforge.impulse import ImageInput

    inp = bundle.impulse.input
    if isinstance(inp, ImageInput):
        return "camera"
    if len(inp.axes) == 1 and inp.frequency_hz >= 4000:
        return "microphone"
    if len(inp.axes) in (3, 6, 9):
        return "accelerometer"
    return None


def _dsp_blocks(bundle: DeployBundle) -> list[dict[str, Any]]:
    from tinyforge.dsp.registry import get_block
    from tinyforge.impulse import ImageInput

    imp = bundle.impulse
    fs = 0.0 if isinstance(imp.input, ImageInput) else float(imp.input.frequency_hz)
    out = []
    for b in imp.processing:
        axes = imp.block_axes(b)
        item: dict[str, Any] = {"name": b.name, "type": b.block, "params": dict(b.params),
                                "axes": axes}
        try:
            params, spec = get_block(b.block).check(b.params, fs, imp.input.window_shape(axes))
        except (InvalidArgument, NotFound):  # not a built-in block: its shape is not known here
            pass
        else:
            item.update(params=params, outputShape=[int(d) for d in spec.shape],
                        outputFeatures=int(np.prod(spec.shape)))
        out.append(item)
    return out


def deployment_metadata(bundle: DeployBundle, *, project: dict[str, Any], build: dict[str, Any],
                        model: dict[str, Any], deploy_counter: int,
                        model_files: dict[str, str], library: dict[str, Any],
                        folders: dict[str, str], arena_bytes: int | None) -> dict[str, Any]:
    """``deployment-metadata.json``: what the block needs to know about the deployment.

    Modelled on Edge Impulse's file (``version``, ``deployCounter``, ``classes``,
    ``samplesPerInference``, ``axesCount``, ``frequency``, ``tfliteModels``, ``project``,
    ``impulse``, ``sensor``, ``folders``) plus TinyForge's ``build``, ``model`` and ``library``.
    ``model_files``: precision (``int8`` / ``float32``) -> path relative to the input
    directory; ``library``: the C library's folder (relative), file lists and include dirs.
    """
    from tinyforge.impulse import ImageInput

    imp = bundle.impulse
    inp = imp.input
    if isinstance(inp, ImageInput):
        samples, axes_count, freq = inp.width * inp.height, inp.channels, 0.0
    else:
        samples, axes_count, freq = inp.window_samples, len(inp.axes), float(inp.frequency_hz)
    data = {"int8": bundle.model_int8, "float32": bundle.model_float32}
    models = []
    for precision, rel in model_files.items():
        blob = data[precision]
        assert blob is not None
        details = tflite_details(blob)
        first_in, first_out = details["inputs"][0], details["outputs"][0]
        models.append({
            "modelPath": rel, "dataType": precision, "details": details,
            "inputTensor": first_in["name"], "outputTensor": first_out["name"],
            "inputFrameSize": int(np.prod(first_in["shape"])),
            "outputSize": int(np.prod(first_out["shape"])),
            # the compiled C model's static tensor arena (int8 only; no interpreter here)
            "arenaSize": int(arena_bytes) if precision == "int8" and arena_bytes else None,
            "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest(),
        })
    input_block = dict(imp.to_dict()["input"])
    return {
        "version": METADATA_VERSION,
        "deployCounter": int(deploy_counter),
        "classes": list(bundle.labels),
        "samplesPerInference": int(samples),
        "axesCount": int(axes_count),
        "frequency": freq,
        "tfliteModels": models,
        "project": project,
        "impulse": {
            "id": model.get("impulseId"), "version": model.get("impulseVersion"),
            "inputBlocks": [input_block],
            "dspBlocks": _dsp_blocks(bundle),
            "learnBlocks": [{"name": b.name, "type": b.type, "params": dict(b.params),
                             "inputs": list(b.inputs)} for b in imp.learning],
        },
        "sensor": _sensor(bundle),
        "model": model,
        "build": build,
        "library": library,
        "folders": folders,
    }


def unpack_library(zip_path: Path, dest: Path) -> dict[str, Any]:
    """Unzip a ``c-library`` artifact into ``dest`` without its top folder.

    Returns ``{"directory", "name", "sources", "headers", "includeDirs"}`` (paths relative to
    ``dest``; ``includeDirs`` = every folder holding a header, what a compiler needs as ``-I``).
    """
    dest.mkdir(parents=True)
    root = dest.resolve()
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            parts = Path(info.filename).parts
            if info.is_dir() or len(parts) < 2:
                continue
            target = (root / Path(*parts[1:])).resolve()
            if root not in target.parents:  # our own zip, but never write outside dest
                raise FailedPrecondition(f"C library entry {info.filename!r} leaves its folder",
                                         field="library")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
            if (info.external_attr >> 16) & 0o111:
                target.chmod(0o755)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    headers = [f for f in files if f.endswith((".h", ".hpp"))]
    return {
        "sources": [f for f in files if f.endswith((".c", ".cc", ".cpp"))],
        "headers": headers,
        "includeDirs": sorted({str(Path(h).parent.as_posix()) for h in headers}),
        "files": files,
    }


def deploy_counter(session: Any, project_id: int, build_id: int) -> int:
    """How many builds the project has had up to and including ``build_id``."""
    from sqlalchemy import func, select

    from tinyforge.store.models import Build

    return int(session.scalar(select(func.count()).select_from(Build).where(
        Build.project_id == project_id, Build.id <= build_id)) or 0)


# -- the run ------------------------------------------------------------------------------------
@dataclass
class BlockBuild:
    """The outcome of :func:`run_block_build`: the artifact file and what to record."""

    artifact: Path
    content_type: str
    metrics: dict[str, Any]
    files: list[str]
    metadata: dict[str, Any]


def artifact_content_type(name: str) -> str:
    """Content type of an artifact file by its name (``application/octet-stream`` if unknown)."""
    if name.endswith(".zip"):
        return "application/zip"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def artifact_suffix(name: str) -> str:
    """The artifact's file extension to keep in its object key (``""`` when unusual)."""
    suffix = Path(name).suffix.lower()
    return suffix if _SUFFIX.match(suffix) else ""


@dataclass(frozen=True)
class ReadyBlock:
    """A build's deploy block, looked up and checked before the C library is built."""

    reg: RegisteredBlock
    values: dict[str, Any]  # every parameter, validated, defaults filled in
    engine: str  # "podman" | "local" | STEP_ENGINE
    project: dict[str, Any]  # {"id", "name"}
    deploy_counter: int
    image: str = ""  # STEP_ENGINE: the image the block's workflow step runs


#: :attr:`ReadyBlock.engine` of a block that runs as a workflow step of its own
STEP_ENGINE = "workflow-step"


def resolve_for_build(db: Any, *, project_id: int, build_id: int, fmt: str, version: int,
                      parameters: dict[str, str], allow_local: bool | None = None,
                      as_step: bool = False) -> ReadyBlock:
    """Look up the pinned ``version`` of the block of ``fmt``, re-validate the parameters and
    choose the engine, so a build whose block is gone or cannot run here fails before any
    toolchain work. ``as_step``: the block will run as a workflow step (its image, or the
    local-block marker where local commands are allowed: :func:`tinyforge.blocks.step.
    block_step_image`), not in this process. NotFound / InvalidArgument / FailedPrecondition
    (all ``field=format`` or ``parameters.<key>``)."""
    from tinyforge.accounts.projects import get_project

    name, _latest = parse_format(fmt)
    with db.session() as s:
        reg = lookup_block(s, project_id, name, version)
        values = check_parameters(reg, parameters)
        project = {"id": project_id, "name": get_project(s, project_id).name}
        counter = deploy_counter(s, project_id, build_id)
    if as_step:
        from tinyforge.blocks.step import block_step_image

        try:
            image = block_step_image(reg, field="format")
        except FailedPrecondition as exc:
            raise FailedPrecondition(f"deploy {exc.message}", field="format") from None
        return ReadyBlock(reg, values, STEP_ENGINE, project, counter, image)
    return ReadyBlock(reg, values, block_engine(reg, allow_local), project, counter)


def write_block_input(
    ready: ReadyBlock, in_dir: Path, *, build_id: int, fmt: str, bundle: DeployBundle,
    library: dict[str, Any], target: str, precision: str, model: dict[str, Any],
    folders: dict[str, str],
) -> dict[str, Any]:
    """Write the deploy block's input directory ``in_dir`` (new): the C library (unpacked from
    ``library["artifact"]``) under :data:`LIBRARY_DIR`, the model files under
    :data:`MODEL_DIR` and ``deployment-metadata.json``, which it returns. ``folders``: the
    input (and output) folder as the block sees them."""
    reg = ready.reg
    in_dir.mkdir(parents=True)
    lib = unpack_library(Path(library["artifact"]), in_dir / LIBRARY_DIR)
    (in_dir / MODEL_DIR).mkdir()
    model_files = {"int8": f"{MODEL_DIR}/model_int8.tflite"}
    (in_dir / model_files["int8"]).write_bytes(bundle.model_int8)
    if bundle.model_float32 is not None:
        model_files["float32"] = f"{MODEL_DIR}/model_float32.tflite"
        (in_dir / model_files["float32"]).write_bytes(bundle.model_float32)
    lib_metrics = dict(library.get("metrics") or {})
    meta = deployment_metadata(
        bundle, project=dict(ready.project),
        build={"id": build_id, "format": fmt, "block": reg.reference, "target": target,
               "precision": precision, "parameters": ready.values},
        model=model, deploy_counter=ready.deploy_counter, model_files=model_files,
        library={"directory": LIBRARY_DIR, "name": bundle.name, "format": BASE_FORMAT,
                 **{k: lib[k] for k in ("sources", "headers", "includeDirs")},
                 "metrics": lib_metrics},
        folders=folders, arena_bytes=lib_metrics.get("arena_bytes"))
    (in_dir / "deployment-metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    return meta


def block_metrics(library_metrics: dict[str, Any], reference: str, engine: str,
                  seconds: float | None = None) -> dict[str, Any]:
    """A custom build's metrics: the C library's, the block that ran and how (and how long,
    in seconds, when known)."""
    metrics = dict(library_metrics)
    metrics.update(block=reference, block_engine=engine)
    if seconds is not None:
        metrics["block_seconds"] = seconds
    if "verified_on" in metrics and "(the C library" not in str(metrics["verified_on"]):
        metrics["verified_on"] = f"{metrics['verified_on']} (the C library given to the block)"
    return metrics


def _block_time_limit(reg: RegisteredBlock, deadline: float) -> float:
    """Seconds the block may run: its own limit, within the build's remaining time."""
    from tinyforge.blocks.limits import limits_from_info

    left = deadline - time.monotonic()
    if left < 1:
        raise DeadlineExceeded("the build's time limit passed before the deploy block could run",
                               field="timeout_s")
    own = limits_from_info(reg.manifest.info).resolved().timeout_s or left
    return min(float(own), left)


def run_block_build(
    objects: Any, ready: ReadyBlock, *, build_id: int, fmt: str, bundle: DeployBundle,
    library: dict[str, Any], work: Path, target: str, precision: str, model: dict[str, Any],
    deadline: float, log: Callable[[str], None], cancelled: Callable[[], bool],
) -> BlockBuild:
    """Run the deploy block ``ready`` (see :func:`resolve_for_build`) on a built C library.

    ``library``: the child build's result for :data:`BASE_FORMAT` (``artifact`` = its zip,
    ``metrics``); ``work``: a scratch directory; ``deadline``: ``time.monotonic()`` by which
    the build must end; ``model``: id / impulse id / version for the metadata. Returns the
    artifact (inside ``work``), raising DeadlineExceeded, or the :mod:`tinyforge.blocks.errors`
    classes with the block's log tail (non-zero exit, no file or several, time limit, ...).
    """
    from tinyforge.blocks.contract import IN_MOUNT, OUT_MOUNT
    from tinyforge.blocks.limits import BlockLimits
    from tinyforge.blocks.run import run_block

    reg, engine, values = ready.reg, ready.engine, ready.values
    log(f"deploy block {reg.reference} ({reg.manifest.name}) runs with {engine}")
    in_dir = work / "block-in"
    # paths as the block sees them; a local command's output folder is a fresh temporary one
    # known only to --out-directory
    folders = ({"input": IN_MOUNT, "output": OUT_MOUNT} if engine == "podman"
               else {"input": str(in_dir.resolve())})
    meta = write_block_input(ready, in_dir, build_id=build_id, fmt=fmt, bundle=bundle,
                             library=library, target=target, precision=precision, model=model,
                             folders=folders)
    limits = BlockLimits(timeout_s=_block_time_limit(reg, deadline))
    resolved = resolved_block(reg, objects, engine)
    t0 = time.monotonic()
    res = run_block(resolved, in_dir, work / "block-out", params=values, limits=limits,
                    engine=engine, log=log, cancelled=cancelled)
    artifact = res.out_dir / res.files[0]
    seconds = round(time.monotonic() - t0, 3)
    log(f"deploy block {reg.reference} wrote {artifact.name} ({artifact.stat().st_size} bytes) "
        f"in {seconds} s")
    metrics = block_metrics(dict(library.get("metrics") or {}), reg.reference, engine, seconds)
    shutil.rmtree(in_dir, ignore_errors=True)
    return BlockBuild(artifact=artifact, content_type=artifact_content_type(artifact.name),
                      metrics=metrics, files=[artifact.name], metadata=meta)


# -- the block as a workflow step -----------------------------------------------------------------
@dataclass(frozen=True)
class BlockStage:
    """A deploy block's input staged for its workflow step (what the step template takes)."""

    image: str
    pod_spec_patch: str  # JSON: the contract argv and the block's resources / deadline
    args: list[str]
    in_key: str
    out_key: str
    metadata: dict[str, Any]


def stage_block_input(
    objects: Any, ready: ReadyBlock, *, in_key: str, out_key: str, build_id: int, fmt: str,
    bundle: DeployBundle, library: dict[str, Any], work: Path, target: str, precision: str,
    model: dict[str, Any], deadline: float, log: Callable[[str], None],
) -> BlockStage:
    """Write the block's input (as :func:`run_block_build` does, the block seeing it at
    ``/block/in``), upload it under ``in_key`` and describe the step that runs the block on
    it (``ready`` from :func:`resolve_for_build` with ``as_step``); the block's output is to be
    uploaded under ``out_key``. The pod's deadline is the block's own time limit within the
    build's remaining time (``deadline``, ``time.monotonic()``)."""
    from tinyforge.blocks.contract import IN_MOUNT, OUT_MOUNT, block_args
    from tinyforge.blocks.step import pod_spec_patch

    reg = ready.reg
    in_dir = work / "block-in"
    meta = write_block_input(ready, in_dir, build_id=build_id, fmt=fmt, bundle=bundle,
                             library=library, target=target, precision=precision, model=model,
                             folders={"input": IN_MOUNT, "output": OUT_MOUNT})
    args = block_args(reg.manifest, in_path=IN_MOUNT, in_is_file=False, out_dir=OUT_MOUNT,
                      params=ready.values)
    patch = json.loads(pod_spec_patch(args, reg))
    patch["activeDeadlineSeconds"] = max(1, int(_block_time_limit(reg, deadline)))
    objects.delete_prefix(in_key.rstrip("/") + "/")  # a retried build step starts clean
    objects.delete_prefix(out_key.rstrip("/") + "/")
    n = 0
    for path in sorted(p for p in in_dir.rglob("*") if p.is_file()):
        with path.open("rb") as fh:
            objects.put_stream(f"{in_key.rstrip('/')}/{path.relative_to(in_dir).as_posix()}", fh,
                               overwrite=True)
        n += 1
    shutil.rmtree(in_dir, ignore_errors=True)
    log(f"deploy block {reg.reference} ({reg.manifest.name}) runs as a workflow step of its own "
        f"from {ready.image}: {n} input file(s) staged under {in_key}")
    log("deploy block arguments: " + " ".join(args))
    return BlockStage(image=ready.image, pod_spec_patch=json.dumps(patch, sort_keys=True),
                      args=args, in_key=in_key, out_key=out_key, metadata=meta)


def block_output_file(objects: Any, out_key: str, dest: Path, *, block: str) -> Path:
    """Fetch what a deploy block's step uploaded under ``out_key`` into the new directory
    ``dest`` and check it as an in-process run is checked (exactly one file, see
    :func:`tinyforge.blocks.contract.check_output`); returns that file. BlockFailed naming
    ``block`` (``custom:NAME@VERSION``) and the problem otherwise."""
    from tinyforge.blocks.contract import InputInfo, check_output
    from tinyforge.blocks.errors import BlockFailed

    prefix = out_key.rstrip("/") + "/"
    dest.mkdir(parents=True)
    root = dest.resolve()
    for info in objects.list(prefix):
        target = (root / info.key[len(prefix):]).resolve()
        if root not in target.parents:
            raise BlockFailed(f"deploy block {block}: output {info.key!r} leaves its folder")
        objects.download_to(info.key, target)
    problem = check_output("deploy", root, InputInfo(root, False))
    if problem:
        raise BlockFailed(f"deploy block {block}: {problem}")
    return next(p for p in root.iterdir())
