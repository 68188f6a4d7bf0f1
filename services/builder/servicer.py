"""BuilderService: the target/format catalog, build jobs, build records, artifact download."""

from __future__ import annotations

import json
import shutil

import grpc

from services.blocks.registry import block_to_pb
from services.builder.jobs import BUILD
from services.common import convert
from services.common.auth import audit_note, current_principal
from tinyforge.blocks.registry_store import list_registered_blocks
from tinyforge.context import PlatformContext
from tinyforge.deploy import builds, custom_block
from tinyforge.deploy.registry import FORMATS, TARGETS
from tinyforge.deploy.targets import DEBIAN_PACKAGES
from tinyforge.errors import FailedPrecondition, InvalidArgument
from tinyforge.store.models import Build
from tinyforge.v1 import builder_service_pb2 as pb
from tinyforge.v1 import builder_service_pb2_grpc as pb_grpc

CHUNK = 1 << 20
_PRECISION_FROM_PB = {pb.PRECISION_UNSPECIFIED: "int8", pb.PRECISION_INT8: "int8",
                      pb.PRECISION_FLOAT32: "float32"}
_PRECISION_TO_PB = {"int8": pb.PRECISION_INT8, "float32": pb.PRECISION_FLOAT32}
_STATE_TO_PB = {builds.PENDING: pb.BUILD_STATE_PENDING, builds.RUNNING: pb.BUILD_STATE_RUNNING,
                builds.READY: pb.BUILD_STATE_READY, builds.FAILED: pb.BUILD_STATE_FAILED}
_STATE_FROM_PB = {v: k for k, v in _STATE_TO_PB.items()}
_INT_METRICS = ("ram_bytes", "flash_bytes", "arena_bytes", "dsp_instructions", "nn_instructions")
_FLOAT_METRICS = ("on_target_accuracy", "platform_accuracy")


def target_to_pb(name: str) -> pb.Target:
    t = TARGETS[name]
    return pb.Target(
        name=t.name, description=t.description, arch=t.arch, clock_mhz=float(t.clock_mhz),
        ram_bytes=t.ram_bytes, flash_bytes=t.flash_bytes, toolchain=t.toolchain,
        toolchain_package=DEBIAN_PACKAGES.get(t.toolchain, t.toolchain),
        toolchain_installed=shutil.which(t.toolchain) is not None, runner=t.runner or "",
        microcontroller=t.is_mcu,
        formats=[f.name for f in FORMATS.values() if name in f.targets])


def build_to_pb(row: Build) -> pb.Build:
    m = row.metrics or {}
    options, block_version, parameters = custom_block.split_options(dict(row.options or {}))
    block_reference = ""
    if custom_block.is_custom_format(row.format) and block_version:
        name = row.format.split("@", 1)[0]
        block_reference = f"{name}@{block_version}"
    msg = pb.Build(
        id=row.id, project_id=row.project_id, model_id=row.model_id, impulse_id=row.impulse_id,
        impulse_version=row.impulse_version, format=row.format, target=row.target,
        precision=_PRECISION_TO_PB.get(row.precision, pb.PRECISION_INT8),
        options={str(k): str(v) for k, v in options.items()},
        timeout_s=row.timeout_s, state=_STATE_TO_PB.get(row.state, pb.BUILD_STATE_UNSPECIFIED),
        error=row.error or "", job_id=row.job_id or 0,
        metrics_json=json.dumps(m, sort_keys=True), files=list(row.files or []),
        artifact_size=row.artifact_size or 0, artifact_sha256=row.artifact_sha256 or "",
        model_prefix=row.model_prefix or "", compared_windows=int(m.get("compared", 0) or 0),
        verified_on=str(m.get("verified_on", "")), create_time=convert.ts(row.created_at),
        start_time=convert.ts(row.started_at), finish_time=convert.ts(row.finished_at),
        block_reference=block_reference, parameters=parameters)
    for k in _INT_METRICS:
        if isinstance(m.get(k), int | float):
            setattr(msg, k, int(m[k]))
    for k in _FLOAT_METRICS:
        if isinstance(m.get(k), int | float):
            setattr(msg, k, float(m[k]))
    return msg


class BuilderServicer(pb_grpc.BuilderServiceServicer):
    def __init__(self, ctx: PlatformContext) -> None:
        self.ctx = ctx

    def ListTargets(self, request, context):  # noqa: ANN001, ANN201, N802
        return pb.ListTargetsResponse(targets=[target_to_pb(n) for n in TARGETS])

    def ListFormats(self, request, context):  # noqa: ANN001, ANN201, N802
        formats = [
            pb.Format(name=f.name, description=f.description, targets=list(f.targets),
                      verified=f.verified, compiles=f.compiles,
                      supports_float=f.name in builds.FLOAT_FORMATS)
            for f in FORMATS.values()]
        # the caller's organization's deploy blocks: they wrap the c-library build
        base = FORMATS[custom_block.BASE_FORMAT]
        with self.ctx.db.session() as s:
            blocks = list_registered_blocks(s, current_principal().org_id, "deploy")
        for b in blocks:
            formats.append(pb.Format(
                name=f"{custom_block.CUSTOM_PREFIX}{b.name}",
                description=b.manifest.description or b.manifest.name,
                targets=list(base.targets), verified=base.verified, compiles=True,
                supports_float=True, custom_block=block_to_pb(b)))
        return pb.ListFormatsResponse(formats=formats)

    def StartBuild(self, request, context):  # noqa: ANN001, ANN201, N802
        precision = _PRECISION_FROM_PB.get(request.precision)
        if precision is None:
            raise InvalidArgument(f"precision {request.precision} is not a Precision value",
                                  field="precision")
        key_id = current_principal().key_id
        with self.ctx.db.session() as s:
            plan = builds.plan_build(s, request.project_id, model_id=request.model_id,
                                     fmt=request.format, target=request.target,
                                     precision=precision, options=dict(request.options),
                                     timeout_s=request.timeout_s,
                                     parameters=dict(request.parameters))
            row = builds.create_build(s, request.project_id, plan, created_by_key_id=key_id)
            job = self.ctx.jobs.create(s, request.project_id, BUILD, {"build_id": row.id},
                                       created_by_key_id=key_id)
            row.job_id = job.id
            build_id, job_id = row.id, job.id
        self.ctx.jobs.enqueue(job_id)
        audit_note(f"build {build_id} (job {job_id}): model {plan.model_id} as "
                   f"{plan.block_reference or plan.format} for {plan.target}")
        return pb.StartBuildResponse(build_id=build_id, job_id=job_id, model_id=plan.model_id)

    def GetBuild(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.ctx.db.session() as s:
            row = builds.get_build(s, request.project_id, request.build_id)
        return pb.GetBuildResponse(build=build_to_pb(row))

    def ListBuilds(self, request, context):  # noqa: ANN001, ANN201, N802
        if request.model_id < 0:
            raise InvalidArgument("model_id must be >= 0 (0 = every model)", field="model_id")
        state = ""
        if request.state != pb.BUILD_STATE_UNSPECIFIED:
            if request.state not in _STATE_FROM_PB:
                raise InvalidArgument(f"state {request.state} is not a BuildState value",
                                      field="state")
            state = _STATE_FROM_PB[request.state]
        with self.ctx.db.session() as s:
            rows = builds.list_builds(s, request.project_id, model_id=request.model_id,
                                      state=state, limit=request.limit or 100)
        return pb.ListBuildsResponse(builds=[build_to_pb(r) for r in rows])

    def DownloadArtifact(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.ctx.db.session() as s:
            row = builds.get_build(s, request.project_id, request.build_id)
            state, key, error = row.state, row.artifact_key, row.error
            if custom_block.is_custom_format(row.format) and row.files:
                filename = f"build-{row.id}-{row.files[0]}"  # the file the block wrote
            else:
                filename = f"build-{row.id}-{row.format}-{row.target}.zip"
        if state != builds.READY:
            why = f": {error}" if error else " (watch its job, then download)"
            raise FailedPrecondition(f"build {request.build_id} is {state}, it has no artifact"
                                     f"{why}", field="build_id")
        info = self.ctx.objects.stat(key)
        first = True
        for chunk in self.ctx.objects.iter_chunks(key, CHUNK):
            if first:
                yield pb.DownloadArtifactResponse(chunk=chunk, size=info.size,
                                                  sha256=info.sha256,
                                                  content_type=info.content_type,
                                                  filename=filename)
                first = False
            else:
                yield pb.DownloadArtifactResponse(chunk=chunk)


def register(server: grpc.Server, ctx: PlatformContext) -> list[str]:
    pb_grpc.add_BuilderServiceServicer_to_server(BuilderServicer(ctx), server)
    return [pb.DESCRIPTOR.services_by_name["BuilderService"].full_name]
