"""MemberService."""

from __future__ import annotations

import grpc

from services.common import convert
from services.common.auth import audit_note, current_target
from tinyforge.accounts import members
from tinyforge.context import PlatformContext
from tinyforge.store.models import User
from tinyforge.v1 import member_service_pb2 as pb
from tinyforge.v1 import member_service_pb2_grpc as pb_grpc


class MemberServicer(pb_grpc.MemberServiceServicer):
    def __init__(self, ctx: PlatformContext) -> None:
        self.ctx = ctx

    def AddMember(self, request, context):  # noqa: ANN001, ANN201, N802
        target = current_target()
        role = convert.role_from_pb(request.role)
        assert role is not None
        with self.ctx.db.session() as s:
            m = members.add_member(s, target.org_id, request.email, role, request.name)
            user = s.get(User, m.user_id)
            assert user is not None
            audit_note(f"added user {user.id} ({user.email}) as {role.value}")
            return pb.AddMemberResponse(member=convert.member(m, user))

    def RemoveMember(self, request, context):  # noqa: ANN001, ANN201, N802
        target = current_target()
        with self.ctx.db.session() as s:
            members.remove_member(s, target.org_id, request.user_id)
            audit_note(f"removed user {request.user_id}")
        return pb.RemoveMemberResponse()

    def ListMembers(self, request, context):  # noqa: ANN001, ANN201, N802
        target = current_target()
        with self.ctx.db.session() as s:
            rows, token = members.list_members(
                s, target.org_id, request.page_size, request.page_token
            )
            return pb.ListMembersResponse(
                members=[convert.member(m, u) for m, u in rows], next_page_token=token
            )


def register(server: grpc.Server, ctx: PlatformContext) -> list[str]:
    pb_grpc.add_MemberServiceServicer_to_server(MemberServicer(ctx), server)
    return [pb.DESCRIPTOR.services_by_name["MemberService"].full_name]
