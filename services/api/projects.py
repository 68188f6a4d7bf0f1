"""ProjectService."""

from __future__ import annotations

import contextlib
import logging

import grpc
from sqlalchemy import select

from services.common import convert
from services.common.auth import audit_note, current_principal, current_target
from tinyforge.accounts import projects
from tinyforge.context import PlatformContext
from tinyforge.errors import FailedPrecondition, InvalidArgument
from tinyforge.store.models import Job, JobStatus
from tinyforge.v1 import project_service_pb2 as pb
from tinyforge.v1 import project_service_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


class ProjectServicer(pb_grpc.ProjectServiceServicer):
    def __init__(self, ctx: PlatformContext) -> None:
        self.ctx = ctx

    def CreateProject(self, request, context):  # noqa: ANN001, ANN201, N802
        target = current_target()
        with self.ctx.db.session() as s:
            p = projects.create_project(
                s,
                target.org_id,
                request.name,
                description=request.description,
                labeling_method=convert.labeling_from_pb(request.labeling_method) or "single_label",
                allow_unsigned_data=(
                    request.allow_unsigned_data if request.HasField("allow_unsigned_data") else True
                ),
            )
            audit_note(f"created project {p.id}")
            return pb.CreateProjectResponse(project=convert.project(p))

    def GetProject(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.ctx.db.session() as s:
            return pb.GetProjectResponse(
                project=convert.project(projects.get_project(s, request.project_id))
            )

    def ListProjects(self, request, context):  # noqa: ANN001, ANN201, N802
        principal, target = current_principal(), current_target()
        with self.ctx.db.session() as s:
            rows, token = projects.list_projects(
                s,
                target.org_id,
                only_project_id=principal.project_id,  # a project key sees its project only
                page_size=request.page_size,
                page_token=request.page_token,
            )
            return pb.ListProjectsResponse(
                projects=[convert.project(p) for p in rows], next_page_token=token
            )

    def UpdateProject(self, request, context):  # noqa: ANN001, ANN201, N802
        def opt(name: str):  # noqa: ANN202
            return getattr(request, name) if request.HasField(name) else None

        labeling = None
        if request.HasField("labeling_method"):
            labeling = convert.labeling_from_pb(request.labeling_method, default=None)
            if labeling is None:
                raise InvalidArgument(
                    "labeling_method must not be UNSPECIFIED when set", field="labeling_method"
                )
        with self.ctx.db.session() as s:
            p = projects.update_project(
                s,
                request.project_id,
                name=opt("name"),
                description=opt("description"),
                labeling_method=labeling,
                allow_unsigned_data=opt("allow_unsigned_data"),
            )
            return pb.UpdateProjectResponse(project=convert.project(p))

    def DeleteProject(self, request, context):  # noqa: ANN001, ANN201, N802
        project_id = request.project_id
        with self.ctx.db.session() as s:
            active = s.scalars(
                select(Job.id).where(
                    Job.project_id == project_id,
                    Job.status.in_([JobStatus.PENDING, JobStatus.RUNNING]),
                )
            ).all()
        for job_id in active:  # stop the project's work before its rows go away
            with contextlib.suppress(FailedPrecondition):  # finished meanwhile
                self.ctx.jobs.cancel(job_id)
        with self.ctx.db.session() as s:
            projects.delete_project(s, project_id)
        try:
            removed = self.ctx.objects.delete_prefix(f"projects/{project_id}/")
            audit_note(f"deleted project {project_id} and {removed} objects")
        except Exception:  # metadata is gone; stray objects are unreachable, not fatal
            log.exception("could not delete the objects of project %s", project_id)
            audit_note(f"deleted project {project_id}; object cleanup failed")
        return pb.DeleteProjectResponse()

    def GetProjectHmacKey(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.ctx.db.session() as s:
            return pb.GetProjectHmacKeyResponse(
                hmac_key=projects.get_project(s, request.project_id).hmac_key
            )

    def RotateProjectHmacKey(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.ctx.db.session() as s:
            key = projects.rotate_hmac_key(s, request.project_id)
            return pb.RotateProjectHmacKeyResponse(hmac_key=key)


def register(server: grpc.Server, ctx: PlatformContext) -> list[str]:
    pb_grpc.add_ProjectServiceServicer_to_server(ProjectServicer(ctx), server)
    return [pb.DESCRIPTOR.services_by_name["ProjectService"].full_name]
