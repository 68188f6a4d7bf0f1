"""ApiKeyService."""

from __future__ import annotations

import grpc

from services.common import convert
from services.common.auth import audit_note, current_principal, current_target
from tinyforge.accounts import apikeys
from tinyforge.auth import role_at_least
from tinyforge.context import PlatformContext
from tinyforge.errors import PermissionDenied
from tinyforge.store.models import Role
from tinyforge.v1 import api_key_service_pb2 as pb
from tinyforge.v1 import api_key_service_pb2_grpc as pb_grpc


class ApiKeyServicer(pb_grpc.ApiKeyServiceServicer):
    def __init__(self, ctx: PlatformContext) -> None:
        self.ctx = ctx

    def CreateApiKey(self, request, context):  # noqa: ANN001, ANN201, N802
        principal, target = current_principal(), current_target()
        role = convert.role_from_pb(request.role, required=False) or principal.role
        if not role_at_least(principal.role, role):
            raise PermissionDenied(
                f"cannot create a key with role {role.value}: the calling key has role "
                f"{principal.role.value}"
            )
        user_id = request.user_id or principal.user_id
        if user_id != principal.user_id and principal.role != Role.ADMIN:
            raise PermissionDenied("only admins may create API keys for another user")
        with self.ctx.db.session() as s:
            key, secret = apikeys.create_api_key(
                s,
                org_id=target.org_id,
                project_id=target.project_id,
                role=role,
                user_id=user_id,
                name=request.name,
            )
            audit_note(f"created API key {key.id} ({key.prefix}…)")
            return pb.CreateApiKeyResponse(api_key=convert.api_key(key), secret=secret)

    def ListApiKeys(self, request, context):  # noqa: ANN001, ANN201, N802
        target = current_target()
        with self.ctx.db.session() as s:
            rows, token = apikeys.list_api_keys(
                s,
                org_id=target.org_id,
                project_id=target.project_id,
                include_revoked=request.include_revoked,
                page_size=request.page_size,
                page_token=request.page_token,
            )
            return pb.ListApiKeysResponse(
                api_keys=[convert.api_key(k) for k in rows], next_page_token=token
            )

    def RevokeApiKey(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.ctx.db.session() as s:
            key = apikeys.revoke_api_key(s, request.api_key_id)
            audit_note(f"revoked API key {key.id} ({key.prefix}…)")
            return pb.RevokeApiKeyResponse(api_key=convert.api_key(key))


def register(server: grpc.Server, ctx: PlatformContext) -> list[str]:
    pb_grpc.add_ApiKeyServiceServicer_to_server(ApiKeyServicer(ctx), server)
    return [pb.DESCRIPTOR.services_by_name["ApiKeyService"].full_name]
