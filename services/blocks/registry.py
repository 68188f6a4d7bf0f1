"""BlockService: register, get, list, list versions and delete an organization's blocks."""

from __future__ import annotations

import json

import grpc

from services.common import convert
from services.common.auth import audit_note, current_principal, current_target
from tinyforge.blocks import registry_store as store
from tinyforge.context import PlatformContext
from tinyforge.v1 import block_service_pb2 as pb
from tinyforge.v1 import block_service_pb2_grpc as pb_grpc


def block_to_pb(b: store.RegisteredBlock) -> pb.CustomBlock:
    """A registered block version as its API message (schema included)."""
    params = []
    for spec in b.manifest.parameters:
        msg = pb.BlockParameter(param=spec.param, name=spec.name, type=spec.type,
                                default_json=json.dumps(spec.default), help=spec.help,
                                valid_json=[json.dumps(v) for v in spec.valid],
                                range=spec.range_text())
        if spec.minimum is not None:
            msg.minimum = float(spec.minimum)
        if spec.maximum is not None:
            msg.maximum = float(spec.maximum)
        params.append(msg)
    return pb.CustomBlock(
        org_id=b.org_id, name=b.name, type=b.type, version=b.version,
        latest_version=b.latest_version, version_count=b.versions, image=b.image,
        image_digest=b.image_digest, parameters_json=b.manifest_json(), title=b.manifest.name,
        description=b.manifest.description, has_local_command=b.manifest.local_command is not None,
        source_sha256=b.source_sha256, reference=b.reference, parameters=params,
        create_time=convert.ts(b.created_at))


class BlockServicer(pb_grpc.BlockServiceServicer):
    def __init__(self, ctx: PlatformContext) -> None:
        self.ctx = ctx

    @staticmethod
    def _org() -> int:
        # the policy resolved org_id (0 = the key's organization) and checked access to it
        return current_target().org_id

    def RegisterBlock(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.ctx.db.session() as s:
            b = store.register_block(
                s, self.ctx.objects, self._org(), manifest=request.parameters_json,
                name=request.name, image=request.image, image_digest=request.image_digest,
                source_archive=request.source_archive,
                created_by_key_id=current_principal().key_id)
        audit_note(f"registered block {b.name!r} version {b.version} ({b.type}"
                   + (f", image {b.image}" if b.image else "") + ")")
        return pb.RegisterBlockResponse(block=block_to_pb(b))

    def GetBlock(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.ctx.db.session() as s:
            b = store.get_registered_block(s, self._org(), request.name, request.version)
        return pb.GetBlockResponse(block=block_to_pb(b))

    def ListRegisteredBlocks(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.ctx.db.session() as s:
            rows = store.list_registered_blocks(s, self._org(), request.type)
        return pb.ListRegisteredBlocksResponse(blocks=[block_to_pb(b) for b in rows])

    def ListBlockVersions(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.ctx.db.session() as s:
            rows = store.list_block_versions(s, self._org(), request.name)
        return pb.ListBlockVersionsResponse(versions=[block_to_pb(b) for b in rows])

    def DeleteBlock(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.ctx.db.session() as s:
            n, keys = store.delete_registered_block(s, self._org(), request.name,
                                                    request.version)
        for key in keys:  # after the commit: a failed delete leaves the rows and their sources
            self.ctx.objects.delete(key)
        audit_note(f"deleted {n} version(s) of block {request.name!r}")
        return pb.DeleteBlockResponse(deleted_versions=n)


def register(server: grpc.Server, ctx: PlatformContext) -> list[str]:
    pb_grpc.add_BlockServiceServicer_to_server(BlockServicer(ctx), server)
    return [pb.DESCRIPTOR.services_by_name["BlockService"].full_name]
