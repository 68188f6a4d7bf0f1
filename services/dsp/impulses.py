"""ImpulseService: create, read, list, update (new version) and diff stored impulses."""

from __future__ import annotations

import json

import grpc

from services.common import convert
from services.common.auth import audit_note, current_principal
from tinyforge import impulse_store
from tinyforge.context import PlatformContext
from tinyforge.v1 import impulse_service_pb2 as pb
from tinyforge.v1 import impulse_service_pb2_grpc as pb_grpc


def to_pb(si: impulse_store.StoredImpulse) -> pb.ImpulseVersion:
    return pb.ImpulseVersion(impulse_id=si.impulse_id, project_id=si.project_id, name=si.name,
                             version=si.version, latest_version=si.latest_version,
                             definition_json=si.definition_json,
                             create_time=convert.ts(si.created_at))


class ImpulseServicer(pb_grpc.ImpulseServiceServicer):
    def __init__(self, ctx: PlatformContext) -> None:
        self.ctx = ctx

    def CreateImpulse(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.ctx.db.session() as s:
            si = impulse_store.create_impulse(
                s, request.project_id, request.name, request.definition_json,
                created_by_key_id=current_principal().key_id)
        audit_note(f"created impulse {si.impulse_id} ({si.name!r}) version 1")
        return pb.CreateImpulseResponse(impulse=to_pb(si))

    def GetImpulse(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.ctx.db.session() as s:
            si = impulse_store.get_impulse(s, request.project_id, request.impulse_id,
                                           request.version)
        return pb.GetImpulseResponse(impulse=to_pb(si))

    def ListImpulses(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.ctx.db.session() as s:
            rows = impulse_store.list_impulses(s, request.project_id)
        return pb.ListImpulsesResponse(impulses=[to_pb(r) for r in rows])

    def ListImpulseVersions(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.ctx.db.session() as s:
            rows = impulse_store.list_versions(s, request.project_id, request.impulse_id)
        return pb.ListImpulseVersionsResponse(versions=[to_pb(r) for r in rows])

    def UpdateImpulse(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.ctx.db.session() as s:
            si, created = impulse_store.update_impulse(
                s, request.project_id, request.impulse_id, request.definition_json or None,
                name=request.name if request.HasField("name") else None,
                expected_version=request.expected_version,
                created_by_key_id=current_principal().key_id)
        audit_note(f"impulse {si.impulse_id}: " +
                   (f"version {si.version} created" if created else "no new version"))
        return pb.UpdateImpulseResponse(impulse=to_pb(si), created=created)

    def DiffImpulseVersions(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.ctx.db.session() as s:
            changes = impulse_store.diff_versions(s, request.project_id, request.impulse_id,
                                                  request.version_a, request.version_b)
        return pb.DiffImpulseVersionsResponse(changes=[
            pb.ImpulseChange(path=c.path, old_json=json.dumps(c.old, sort_keys=True),
                             new_json=json.dumps(c.new, sort_keys=True)) for c in changes])


def register(server: grpc.Server, ctx: PlatformContext) -> list[str]:
    pb_grpc.add_ImpulseServiceServicer_to_server(ImpulseServicer(ctx), server)
    return [pb.DESCRIPTOR.services_by_name["ImpulseService"].full_name]
