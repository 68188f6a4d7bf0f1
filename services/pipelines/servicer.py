"""PipelineService: list the pipelines and run one as a job."""

from __future__ import annotations

import grpc

from services.common import convert
from services.common.auth import audit_note, current_principal
from services.pipelines import catalog
from services.pipelines.jobs import RUN_PIPELINE
from tinyforge.context import PlatformContext
from tinyforge.store.models import Job
from tinyforge.v1 import pipeline_service_pb2 as pb
from tinyforge.v1 import pipeline_service_pb2_grpc as pb_grpc


def pipeline_to_pb(info: catalog.PipelineInfo) -> pb.Pipeline:
    return pb.Pipeline(
        name=info.name,
        description=info.description,
        parameters=[
            pb.PipelineParameter(
                name=p.name,
                default_value=p.default or "",
                required=p.required,
                description=p.description,
                reserved=p.reserved,
            )
            for p in info.parameters
        ],
        steps=list(info.steps),
    )


class PipelineServicer(pb_grpc.PipelineServiceServicer):
    def __init__(self, ctx: PlatformContext) -> None:
        self.ctx = ctx

    def ListPipelines(self, request, context):  # noqa: ANN001, ANN201, N802
        return pb.ListPipelinesResponse(
            pipelines=[pipeline_to_pb(p) for p in catalog.pipelines().values()]
        )

    def RunPipeline(self, request, context):  # noqa: ANN001, ANN201, N802
        key_id = current_principal().key_id
        parameters = catalog.check_run(request.name, dict(request.parameters), key_id=key_id)
        with self.ctx.db.session() as s:
            job_id = self.ctx.jobs.create(
                s,
                request.project_id,
                RUN_PIPELINE,
                {"pipeline": request.name, "parameters": parameters},
                created_by_key_id=key_id,
            ).id
        self.ctx.jobs.enqueue(job_id)
        audit_note(f"pipeline {request.name} job {job_id}")
        with self.ctx.db.session() as s:
            job = convert.job(s.get(Job, job_id))
        return pb.RunPipelineResponse(job=job)


def register(server: grpc.Server, ctx: PlatformContext) -> list[str]:
    pb_grpc.add_PipelineServiceServicer_to_server(PipelineServicer(ctx), server)
    return [pb.DESCRIPTOR.services_by_name["PipelineService"].full_name]
