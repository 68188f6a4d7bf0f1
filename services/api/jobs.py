"""JobService: the one place clients follow long-running work of every service."""

from __future__ import annotations

import grpc
from sqlalchemy import func, select

from services.common import convert
from services.common.auth import audit_note
from tinyforge.accounts.paging import paginate
from tinyforge.context import PlatformContext
from tinyforge.store.models import Job, JobLog
from tinyforge.v1 import common_pb2
from tinyforge.v1 import job_service_pb2 as pb
from tinyforge.v1 import job_service_pb2_grpc as pb_grpc


class JobServicer(pb_grpc.JobServiceServicer):
    def __init__(self, ctx: PlatformContext) -> None:
        self.ctx = ctx

    def GetJob(self, request, context):  # noqa: ANN001, ANN201, N802
        job = self.ctx.jobs.get(request.job_id)
        return pb.GetJobResponse(job=convert.job(job, self.ctx.jobs.log_line_count(job.id)))

    def ListJobs(self, request, context):  # noqa: ANN001, ANN201, N802
        status = convert.status_from_pb(request.status)
        with self.ctx.db.session() as s:
            stmt = select(Job).where(Job.project_id == request.project_id)
            if status is not None:
                stmt = stmt.where(Job.status == status)
            rows, token = paginate(
                s, stmt, Job.id, request.page_size, request.page_token, newest_first=True
            )
            counts = dict(
                s.execute(
                    select(JobLog.job_id, func.count())
                    .where(JobLog.job_id.in_([j.id for j in rows]))
                    .group_by(JobLog.job_id)
                ).all()
            )
            return pb.ListJobsResponse(
                jobs=[convert.job(j, counts.get(j.id, 0)) for j in rows], next_page_token=token
            )

    def CancelJob(self, request, context):  # noqa: ANN001, ANN201, N802
        job = self.ctx.jobs.cancel(request.job_id)
        audit_note(f"cancel of job {job.id} requested ({job.status.value})")
        return pb.CancelJobResponse(job=convert.job(job, self.ctx.jobs.log_line_count(job.id)))

    def WatchJob(self, request, context):  # noqa: ANN001, ANN201, N802
        for event in self.ctx.jobs.watch(
            request.job_id, request.log_offset, should_stop=lambda: not context.is_active()
        ):
            if event.job is not None:
                yield pb.WatchJobResponse(job=convert.job(event.job, event.log_line_count))
            else:
                yield pb.WatchJobResponse(
                    log=common_pb2.JobLogLine(
                        offset=event.log_offset,
                        time=convert.ts(event.log_time),
                        line=event.log_line,
                    )
                )


def register(server: grpc.Server, ctx: PlatformContext) -> list[str]:
    pb_grpc.add_JobServiceServicer_to_server(JobServicer(ctx), server)
    return [pb.DESCRIPTOR.services_by_name["JobService"].full_name]
