"""OrganizationService."""

from __future__ import annotations

import grpc

from services.common import convert
from services.common.auth import audit_note, current_principal
from tinyforge.accounts import apikeys, members, orgs
from tinyforge.context import PlatformContext
from tinyforge.store.models import Role, User
from tinyforge.v1 import organization_service_pb2 as pb
from tinyforge.v1 import organization_service_pb2_grpc as pb_grpc


class OrganizationServicer(pb_grpc.OrganizationServiceServicer):
    def __init__(self, ctx: PlatformContext) -> None:
        self.ctx = ctx

    def CreateOrganization(self, request, context):  # noqa: ANN001, ANN201, N802
        p = current_principal()
        with self.ctx.db.session() as s:
            org = orgs.create_org(s, request.name)
            user_id = None
            if p.user_id is not None:
                # The creator becomes the admin of the new organization.
                user = s.get(User, p.user_id)
                assert user is not None
                members.add_member(s, org.id, user.email, Role.ADMIN, user.name)
                user_id = user.id
            key, secret = apikeys.create_api_key(
                s, org_id=org.id, role=Role.ADMIN, user_id=user_id, name="organization admin"
            )
            audit_note(f"created organization {org.id}")
            return pb.CreateOrganizationResponse(
                organization=convert.organization(org),
                admin_key=convert.api_key(key),
                admin_key_secret=secret,
            )

    def GetOrganization(self, request, context):  # noqa: ANN001, ANN201, N802
        p = current_principal()
        with self.ctx.db.session() as s:
            org = orgs.get_org(s, request.org_id or p.org_id)
            return pb.GetOrganizationResponse(organization=convert.organization(org))

    def ListOrganizations(self, request, context):  # noqa: ANN001, ANN201, N802
        p = current_principal()
        with self.ctx.db.session() as s:
            rows, token = orgs.list_orgs(s, [p.org_id], request.page_size, request.page_token)
            return pb.ListOrganizationsResponse(
                organizations=[convert.organization(o) for o in rows], next_page_token=token
            )


def register(server: grpc.Server, ctx: PlatformContext) -> list[str]:
    pb_grpc.add_OrganizationServiceServicer_to_server(OrganizationServicer(ctx), server)
    return [pb.DESCRIPTOR.services_by_name["OrganizationService"].full_name]
