"""DspService: block schemas, RunBlock, the feature-generation job, explorer, autotune."""

from __future__ import annotations

import json
from typing import Any

import grpc
import numpy as np
from sqlalchemy import select

from services.common.auth import audit_note, current_principal
from services.common.convert import parse_params
from services.dsp.jobs import GENERATE_FEATURES
from tinyforge.blocks.custom_dsp import CustomDspBlock, project_resolver
from tinyforge.blocks.registry_store import list_registered_blocks
from tinyforge.context import PlatformContext
from tinyforge.data.samples import SampleStore
from tinyforge.dsp.base import select_axes
from tinyforge.dsp.registry import list_blocks
from tinyforge.errors import InvalidArgument, NotFound
from tinyforge.features.autotune import Candidate, autotune_block
from tinyforge.features.explorer import METHOD_NAMES, project, scatter_png
from tinyforge.features.generate import load_windows, sample_ref
from tinyforge.features.plots import MAX_WINDOW_VALUES, BlockRun, run_block
from tinyforge.features.store import load_features, read_manifest
from tinyforge.impulse import ImageInput
from tinyforge.impulse_store import get_impulse
from tinyforge.store.models import FeatureSet
from tinyforge.v1 import dsp_service_pb2 as pb
from tinyforge.v1 import dsp_service_pb2_grpc as pb_grpc


def _run_to_pb(run: BlockRun) -> pb.RunBlockResponse:
    plots = []
    for p in run.plots:
        msg = pb.Plot(name=p.name, type=p.type, title=p.title, x_label=p.x_label,
                      y_label=p.y_label, x=p.x, png=p.png,
                      series=[pb.Series(name=k, y=v) for k, v in p.series.items()])
        if p.matrix is not None:
            msg.matrix.extend(np.asarray(p.matrix, np.float32).ravel().tolist())
            msg.matrix_shape.extend(int(d) for d in p.matrix.shape)
        plots.append(msg)
    return pb.RunBlockResponse(features=run.features.ravel().tolist(),
                               shape=list(run.output.shape), output_type=run.output.kind,
                               params_json=json.dumps(run.params, sort_keys=True),
                               plots=plots, block_type=run.block)


def _candidate(c: Candidate | None) -> pb.AutotuneCandidate | None:
    if c is None:
        return None
    return pb.AutotuneCandidate(params_json=json.dumps(c.params, sort_keys=True), score=c.score,
                                features=c.features)


class DspServicer(pb_grpc.DspServiceServicer):
    def __init__(self, ctx: PlatformContext) -> None:
        self.ctx = ctx

    def ListBlocks(self, request, context):  # noqa: ANN001, ANN201, N802
        out = []
        # built-in blocks, then the DSP blocks registered in the caller's organization
        with self.ctx.db.session() as s:
            custom = [CustomDspBlock(r, self.ctx.objects) for r in
                      list_registered_blocks(s, current_principal().org_id, "dsp")]
        for b in [*list_blocks(), *custom]:
            sch = b.schema()
            out.append(pb.BlockSchema(
                name=b.name, title=b.title, description=b.description,
                implementation_version=b.implementation_version, output_type=b.output_kind,
                input=sch["info"]["input"], single_axis=b.single_axis,
                schema_json=json.dumps(sch, sort_keys=True)))
        return pb.ListBlocksResponse(blocks=out)

    # -- RunBlock -----------------------------------------------------------------------------
    def RunBlock(self, request, context):  # noqa: ANN001, ANN201, N802
        params = parse_params(request.params_json)
        source = request.WhichOneof("source")
        if source == "window":
            run = self._run_raw(request, params)
        elif source == "sample":
            run = self._run_sample(request, params)
        else:
            raise InvalidArgument("give a window or a sample window", field="source")
        return _run_to_pb(run)

    def _run_raw(self, request: Any, params: dict[str, Any] | None) -> BlockRun:
        w = request.window
        if not request.block:
            raise InvalidArgument("block (a block type such as 'mfcc') is required",
                                  field="block")
        block = self._resolver(request.project_id)(request.block)
        shape = tuple(int(d) for d in w.shape)
        want = 3 if block.image_input else 2
        if len(shape) != want or any(d < 1 for d in shape):
            form = "[height, width, channels]" if block.image_input else "[length, axes]"
            raise InvalidArgument(f"block {block.name!r} needs window.shape {form} of positive "
                                  f"sizes, got {list(shape)}", field="window.shape")
        n = int(np.prod(shape))
        if n > MAX_WINDOW_VALUES:
            raise InvalidArgument(f"window has {n} values, the limit is {MAX_WINDOW_VALUES}",
                                  field="window.values")
        if len(w.values) != n:
            raise InvalidArgument(f"window.values has {len(w.values)} values, window.shape "
                                  f"{list(shape)} needs {n}", field="window.values")
        x = np.asarray(w.values, dtype=np.float32).reshape(shape)
        if block.image_input:
            return run_block(block, params, x, 0.0)
        names = list(w.axis_names) or [f"axis{i}" for i in range(shape[1])]
        if len(names) != shape[1]:
            raise InvalidArgument(f"window.axis_names has {len(names)} names for {shape[1]} "
                                  "columns", field="window.axis_names")
        axes = list(request.axes) or names
        x = select_axes(x, names, axes, field="axes")
        return run_block(block, params, x, float(w.frequency_hz), axes)

    def _run_sample(self, request: Any, params: dict[str, Any] | None) -> BlockRun:
        sw = request.sample
        with self.ctx.db.session() as s:
            stored = get_impulse(s, request.project_id, sw.impulse_id, sw.version)
        impulse = stored.impulse
        names = [b.name for b in impulse.processing]
        if request.block and request.block not in names:
            raise NotFound(f"impulse {stored.impulse_id} v{stored.version} has no processing "
                           f"block {request.block!r} (blocks: {', '.join(names)})",
                           field="block")
        bdef = impulse.processing_block(request.block or names[0])
        row = SampleStore(self.ctx.db, self.ctx.objects).get(request.project_id, sw.sample_id)
        data, _starts = load_windows(self.ctx.objects, sample_ref(row), impulse)
        if not 0 <= sw.window_index < len(data):
            raise InvalidArgument(f"sample {row.id} has {len(data)} window(s) with this "
                                  f"impulse; window_index must be 0..{len(data) - 1}",
                                  field="sample.window_index")
        x = data[sw.window_index]
        block = self._resolver(request.project_id)(bdef.block)
        if isinstance(impulse.input, ImageInput):
            return run_block(block, params if params is not None else bdef.params, x, 0.0)
        axes = impulse.block_axes(bdef)
        x = x[..., [impulse.input.axes.index(a) for a in axes]]
        return run_block(block, params if params is not None else bdef.params, x,
                         float(impulse.input.frequency_hz), axes)

    def _resolver(self, project_id: int) -> Any:
        """Built-in blocks and the custom blocks of the project's organization."""
        return project_resolver(self.ctx.db, self.ctx.objects, project_id)

    # -- features -----------------------------------------------------------------------------
    def GenerateFeatures(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.ctx.db.session() as s:
            stored = get_impulse(s, request.project_id, request.impulse_id, request.version)
            job = self.ctx.jobs.create(
                s, request.project_id, GENERATE_FEATURES,
                {"impulse_id": stored.impulse_id, "version": stored.version},
                created_by_key_id=current_principal().key_id)
            job_id = job.id
        self.ctx.jobs.enqueue(job_id)
        audit_note(f"feature generation job {job_id} for impulse {stored.impulse_id} "
                   f"v{stored.version}")
        return pb.GenerateFeaturesResponse(job_id=job_id, version=stored.version)

    def GetFeatures(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.ctx.db.session() as s:
            stored = get_impulse(s, request.project_id, request.impulse_id, request.version)
            rows = list(s.scalars(select(FeatureSet).where(
                FeatureSet.impulse_id == stored.impulse_id,
                FeatureSet.version == stored.version).order_by(FeatureSet.id)))
        blocks = []
        for r in rows:
            m = read_manifest(self.ctx.objects, request.project_id, r.impulse_id, r.version,
                              r.block)
            blocks.append(pb.FeatureSetInfo(
                block=r.block, block_type=m["block_type"], output_type=m["output"]["type"],
                shape=m["output"]["shape"], windows=m["windows"], samples=m["samples"],
                classes=m["classes"], block_hash=m["block_hash"],
                dataset_hash=m["dataset_hash"], manifest_key=r.manifest_key,
                job_id=r.job_id or 0))
        return pb.GetFeaturesResponse(version=stored.version, blocks=blocks)

    def FeatureExplorer(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.ctx.db.session() as s:
            stored = get_impulse(s, request.project_id, request.impulse_id, request.version)
        block = request.block or stored.impulse.processing[0].name
        if block not in [b.name for b in stored.impulse.processing]:
            raise NotFound(f"impulse {stored.impulse_id} v{stored.version} has no processing "
                           f"block {block!r}", field="block")
        method = {pb.PROJECTION_METHOD_UNSPECIFIED: "pca", pb.PROJECTION_METHOD_PCA: "pca",
                  pb.PROJECTION_METHOD_TSNE: "tsne"}.get(request.method)
        if method is None:
            raise InvalidArgument(f"unknown projection method {request.method}", field="method")
        fm = load_features(self.ctx.objects, request.project_id, stored.impulse_id,
                           stored.version, block)
        proj = project(fm, method, max_points=request.max_points)
        png = b""
        if request.include_png:
            png = scatter_png(proj, f"{stored.name} v{stored.version} - {block} "
                                    f"({METHOD_NAMES[method]}, {len(proj.points)} windows)")
        points = [pb.ExplorerPoint(x=float(x), y=float(y), label=lab or "", sample_id=int(sid),
                                   window_index=int(wi))
                  for (x, y), lab, sid, wi in zip(proj.points.tolist(), proj.labels,
                                                  proj.sample_ids.tolist(),
                                                  proj.window_index.tolist(), strict=True)]
        return pb.FeatureExplorerResponse(points=points,
                                          explained_variance=proj.explained_variance,
                                          total_windows=proj.total_windows, png=png,
                                          block=block)

    def AutotuneBlock(self, request, context):  # noqa: ANN001, ANN201, N802
        if not request.block:
            raise InvalidArgument("block (a processing block name of the impulse) is required",
                                  field="block")
        try:
            res = autotune_block(self.ctx.db, self.ctx.objects, request.project_id,
                                 request.impulse_id, request.version, request.block,
                                 max_windows=request.max_windows or 300)
        except NotFound as exc:
            if exc.field == "processing":
                raise NotFound(exc.message, field="block") from None
            raise
        return pb.AutotuneBlockResponse(
            best=_candidate(res.best), current=_candidate(res.current),
            candidates=[_candidate(c) for c in res.candidates], metric=res.metric,
            windows=res.windows, classes=res.classes)


def register(server: grpc.Server, ctx: PlatformContext) -> list[str]:
    pb_grpc.add_DspServiceServicer_to_server(DspServicer(ctx), server)
    return [pb.DESCRIPTOR.services_by_name["DspService"].full_name]


__all__ = ["DspServicer", "register"]
