"""Projects, API keys, members and organizations through the real gRPC API, incl. bad input."""

from __future__ import annotations

import hashlib

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from sqlalchemy import select

from tinyforge.auth import hash_secret
from tinyforge.client import ApiError, TinyForgeClient
from tinyforge.store.models import ApiKey, AuditLog, Job, Membership, Project, Role
from tinyforge.v1 import common_pb2, project_service_pb2, project_service_pb2_grpc


def api_error(fn, *args, **kwargs) -> ApiError:  # noqa: ANN001
    with pytest.raises(ApiError) as err:
        fn(*args, **kwargs)
    return err.value


# ------------------------------------------------------------------------------ projects
def test_project_lifecycle(platform, tenant) -> None:
    c = tenant.client()
    p = c.create_project("gestures", description="wrist IMU")
    assert p.org_id == tenant.org_id and p.name == "gestures" and p.description == "wrist IMU"
    assert p.labeling_method == common_pb2.LABELING_METHOD_SINGLE_LABEL
    assert p.allow_unsigned_data is True
    assert c.get_project(p.id) == p
    assert p.id in [x.id for x in c.list_projects()]

    u = c.update_project(p.id, labeling_method="object_detection", allow_unsigned_data=False)
    assert (u.name, u.description) == ("gestures", "wrist IMU")  # untouched fields kept
    assert u.labeling_method == common_pb2.LABELING_METHOD_OBJECT_DETECTION
    assert u.allow_unsigned_data is False
    assert c.get_project(p.id).allow_unsigned_data is False

    c.delete_project(p.id)
    assert api_error(c.get_project, p.id).code == "NOT_FOUND"
    assert p.id not in [x.id for x in c.list_projects()]


def test_project_name_rules(tenant) -> None:
    c = tenant.client()
    for name in ("", "   "):
        e = api_error(c.create_project, name)
        assert (e.code, e.field) == ("INVALID_ARGUMENT", "name") and "empty" in e.message
    e = api_error(c.create_project, "x" * 129)
    assert (e.code, e.field) == ("INVALID_ARGUMENT", "name") and "at most 128" in e.message
    assert c.create_project("x" * 128).name == "x" * 128
    e = api_error(c.create_project, "bad\x00name")
    assert e.field == "name"
    c.create_project("dup")
    e = api_error(c.create_project, "dup")
    assert (e.code, e.field) == ("ALREADY_EXISTS", "name") and "dup" in e.message
    # the same name in another organization is fine
    other = tenant.platform.new_tenant()
    assert other.client().create_project("dup").org_id == other.org_id


def test_failed_update_changes_nothing(tenant) -> None:
    c = tenant.client()
    a = c.create_project("a", description="first")
    c.create_project("b")
    e = api_error(c.update_project, a.id, name="b", description="changed")
    assert (e.code, e.field) == ("ALREADY_EXISTS", "name")
    assert c.get_project(a.id).description == "first"
    e = api_error(c.update_project, a.id, description="changed", labeling_method="nope")
    assert (e.code, e.field) == ("INVALID_ARGUMENT", "labeling_method")
    assert c.get_project(a.id).description == "first"


def test_bad_ids_and_pages(platform, tenant) -> None:
    c = tenant.client()
    e = api_error(c.get_project, 987654)
    assert (e.code, e.field) == ("NOT_FOUND", "project_id") and "987654" in e.message
    stub = project_service_pb2_grpc.ProjectServiceStub(c.channel)
    e = api_error(c.call, stub.GetProject, project_service_pb2.GetProjectRequest(project_id=-3))
    assert (e.code, e.field) == ("INVALID_ARGUMENT", "project_id")
    e = api_error(
        c.call, stub.ListProjects, project_service_pb2.ListProjectsRequest(page_token="garbage!")
    )
    assert (e.code, e.field) == ("INVALID_ARGUMENT", "page_token")
    e = api_error(
        c.call, stub.ListProjects, project_service_pb2.ListProjectsRequest(page_size=5000)
    )
    assert (e.code, e.field) == ("INVALID_ARGUMENT", "page_size") and "1000" in e.message


def test_pagination_walks_every_project_once(tenant) -> None:
    c = tenant.client()
    made = {c.create_project(f"p{i}").id for i in range(7)}
    stub = project_service_pb2_grpc.ProjectServiceStub(c.channel)
    seen, token, pages = [], "", 0
    while True:
        resp = c.call(
            stub.ListProjects,
            project_service_pb2.ListProjectsRequest(page_size=3, page_token=token),
        )
        seen += [p.id for p in resp.projects]
        pages += 1
        token = resp.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) and made <= set(seen) and pages == 3  # 8 projects


def test_rich_error_details_name_the_field(tenant) -> None:
    stub = project_service_pb2_grpc.ProjectServiceStub(tenant.client().channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.CreateProject(
            project_service_pb2.CreateProjectRequest(name=""),
            metadata=(("x-api-key", tenant.admin_key),),
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    raw = dict(err.value.trailing_metadata())["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(raw)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details)
    assert bad.field_violations[0].field == "name"


def test_hmac_key_admin_only_and_rotatable(tenant) -> None:
    c = tenant.client()
    key = c.get_hmac_key(tenant.project_id)
    assert len(key) == 64 and int(key, 16) >= 0
    rotated = c.rotate_hmac_key(tenant.project_id)
    assert rotated != key and c.get_hmac_key(tenant.project_id) == rotated
    member = tenant.client(tenant.key("member"))
    assert api_error(member.get_hmac_key, tenant.project_id).code == "PERMISSION_DENIED"
    assert "hmac" not in str(member.get_project(tenant.project_id)).lower()


def test_deleting_a_project_removes_its_jobs_and_keys(platform, tenant) -> None:
    c = tenant.client()
    p = c.create_project("doomed")
    scoped = tenant.key("member", project_id=p.id)
    assert tenant.client(scoped).get_project(p.id).id == p.id
    with platform.ctx.db.session() as s:
        job = Job(project_id=p.id, kind="anything")
        s.add(job)
        s.flush()
        job_id = job.id
    platform.ctx.objects.put_bytes(f"projects/{p.id}/raw/1", b"sample")
    keep = tenant.project_id  # another project's objects must survive
    platform.ctx.objects.put_bytes(f"projects/{keep}/raw/{p.id}", b"other", overwrite=True)
    c.delete_project(p.id)
    assert not platform.ctx.objects.exists(f"projects/{p.id}/raw/1")
    assert platform.ctx.objects.exists(f"projects/{keep}/raw/{p.id}")
    with platform.ctx.db.session() as s:
        assert s.get(Project, p.id) is None
        assert s.scalars(select(ApiKey).where(ApiKey.project_id == p.id)).all() == []
        assert s.get(Job, job_id) is None
    assert api_error(tenant.client(scoped).get_project, p.id).code == "UNAUTHENTICATED"


# ------------------------------------------------------------------------------ API keys
def test_api_key_secret_shown_once_and_stored_hashed(platform, tenant) -> None:
    c = tenant.client()
    resp = c.create_api_key(project_id=tenant.project_id, role="guest", name="ci")
    secret = resp.secret
    assert secret.startswith("tf_") and resp.api_key.prefix == secret[:10]
    with platform.ctx.db.session() as s:
        row = s.get(ApiKey, resp.api_key.id)
        assert row.key_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert all(secret not in str(getattr(row, col.name)) for col in ApiKey.__table__.columns)
    listed = {k.id: k for k in c.list_api_keys(project_id=tenant.project_id)}
    assert secret not in str(listed[resp.api_key.id])
    assert listed[resp.api_key.id].prefix == secret[:10]

    guest = tenant.client(secret)
    assert guest.get_project(tenant.project_id).id == tenant.project_id
    assert api_error(guest.update_project, tenant.project_id, description="x").code == (
        "PERMISSION_DENIED"
    )
    revoked = c.revoke_api_key(resp.api_key.id)
    assert revoked.revoke_time.seconds > 0
    e = api_error(guest.get_project, tenant.project_id)
    assert e.code == "UNAUTHENTICATED" and "revoked" in e.message
    assert resp.api_key.id not in [k.id for k in c.list_api_keys(project_id=tenant.project_id)]
    assert resp.api_key.id in [
        k.id for k in c.list_api_keys(project_id=tenant.project_id, include_revoked=True)
    ]


def test_keys_cannot_escalate(tenant) -> None:
    member = tenant.client(tenant.key("member"))
    e = api_error(member.create_api_key, project_id=tenant.project_id, role="admin")
    assert e.code == "PERMISSION_DENIED" and "role admin" in e.message
    e = api_error(member.create_api_key, project_id=tenant.project_id, user_id=tenant.admin_user_id)
    assert e.code == "PERMISSION_DENIED" and "another user" in e.message
    # a member's key with no role asked gets the member role
    made = member.create_api_key(project_id=tenant.project_id)
    assert made.api_key.role == common_pb2.ROLE_MEMBER
    # a key's role is capped by its user's current role in the organization
    secret = tenant.key("admin")
    capped = tenant.client(secret)
    assert len(capped.get_hmac_key(tenant.project_id)) == 64
    with tenant.platform.ctx.db.session() as s:  # the user is demoted after the key was made
        key = s.scalar(select(ApiKey).where(ApiKey.key_hash == hash_secret(secret)))
        s.scalar(
            select(Membership).where(
                Membership.user_id == key.user_id, Membership.org_id == tenant.org_id
            )
        ).role = Role.MEMBER
    assert api_error(capped.get_hmac_key, tenant.project_id).code == "PERMISSION_DENIED"


def test_admin_creates_keys_for_members(tenant) -> None:
    c = tenant.client()
    guest = c.add_member("someone@example.com", "guest")
    made = c.create_api_key(project_id=tenant.project_id, role="guest", user_id=guest.user_id)
    assert made.api_key.user_id == guest.user_id
    e = api_error(c.create_api_key, role="member", user_id=guest.user_id)
    assert e.code == "PERMISSION_DENIED" and "guest" in e.message
    outsider = tenant.platform.new_tenant()
    e = api_error(c.create_api_key, role="guest", user_id=outsider.admin_user_id)
    assert (e.code, e.field) == ("FAILED_PRECONDITION", "user_id")


@pytest.mark.parametrize(
    ("metadata", "expected_in_message"),
    [
        ((), "missing API key"),
        ((("x-api-key", "garbage"),), "malformed"),
        ((("x-api-key", "tf_" + "A" * 40),), "unknown API key"),
        ((("authorization", "Basic Zm9vOmJhcg=="),), "Bearer"),
        ((("authorization", "Bearer"),), "Bearer"),
    ],
)
def test_bad_credentials(tenant, metadata, expected_in_message) -> None:
    stub = project_service_pb2_grpc.ProjectServiceStub(tenant.client().channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.ListProjects(project_service_pb2.ListProjectsRequest(), metadata=metadata)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert expected_in_message in err.value.details()


def test_bearer_token_and_two_keys(tenant) -> None:
    stub = project_service_pb2_grpc.ProjectServiceStub(tenant.client().channel)
    req = project_service_pb2.ListProjectsRequest()
    resp = stub.ListProjects(req, metadata=(("authorization", f"Bearer {tenant.admin_key}"),))
    assert [p.id for p in resp.projects] == [tenant.project_id]
    with pytest.raises(grpc.RpcError) as err:
        two = (("x-api-key", tenant.admin_key), ("authorization", f"Bearer {tenant.admin_key}"))
        stub.ListProjects(req, metadata=two)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "exactly one" in err.value.details()


# ------------------------------------------------------------------------------ members, orgs
def test_members(tenant) -> None:
    c = tenant.client()
    m = c.add_member("Ann@Example.com", "member", name="Ann")
    assert (m.email, m.name, m.role) == ("ann@example.com", "Ann", common_pb2.ROLE_MEMBER)
    assert m.user_id in [x.user_id for x in c.list_members()]
    e = api_error(c.add_member, "ann@example.com", "guest")
    assert (e.code, e.field) == ("ALREADY_EXISTS", "email")
    e = api_error(c.add_member, "not-an-email", "guest")
    assert (e.code, e.field) == ("INVALID_ARGUMENT", "email")
    e = api_error(c.add_member, "bob@example.com", "owner")  # unknown role value
    assert (e.code, e.field) == ("INVALID_ARGUMENT", "role")
    e = api_error(c.remove_member, tenant.admin_user_id)
    assert e.code == "FAILED_PRECONDITION" and "last admin" in e.message
    e = api_error(c.remove_member, 99999999)
    assert (e.code, e.field) == ("NOT_FOUND", "user_id")


def test_removed_member_keys_stop_working(tenant) -> None:
    c = tenant.client()
    m = c.add_member("leaver@example.com", "member")
    secret = c.create_api_key(role="member", user_id=m.user_id).secret
    leaver = tenant.client(secret)
    assert leaver.get_project(tenant.project_id).id == tenant.project_id
    c.remove_member(m.user_id)
    e = api_error(leaver.get_project, tenant.project_id)
    assert e.code == "PERMISSION_DENIED" and "no longer a member" in e.message


def test_create_organization(platform, tenant) -> None:
    c = tenant.client()
    resp = c.create_organization("acme-" + tenant.admin_key[-6:])
    assert resp.admin_key.org_id == resp.organization.id and resp.admin_key_secret
    new = platform.client(resp.admin_key_secret)
    assert [o.id for o in new.list_organizations()] == [resp.organization.id]
    assert new.list_projects() == []
    creator_email = next(m.email for m in c.list_members() if m.user_id == tenant.admin_user_id)
    assert [(m.email, m.role) for m in new.list_members()] == [
        (creator_email, common_pb2.ROLE_ADMIN)
    ]
    e = api_error(c.create_organization, resp.organization.name)
    assert (e.code, e.field) == ("ALREADY_EXISTS", "name")
    e = api_error(c.create_organization, "")
    assert (e.code, e.field) == ("INVALID_ARGUMENT", "name")


# ------------------------------------------------------------------------------ audit, health
def test_mutating_calls_are_audited(platform, tenant) -> None:
    c = tenant.client()
    p = c.create_project("audited")
    c.get_project(p.id)  # reads are not audited
    guest_key = tenant.key("guest")
    api_error(tenant.client(guest_key).update_project, p.id, description="no")
    with platform.ctx.db.session() as s:
        rows = s.scalars(
            select(AuditLog).where(AuditLog.org_id == tenant.org_id).order_by(AuditLog.id)
        ).all()
    created = [r for r in rows if r.method.endswith("/CreateProject") and r.status == "OK"]
    assert len(created) == 1 and f"created project {p.id}" in created[0].detail
    assert created[0].api_key_id is not None and created[0].user_id == tenant.admin_user_id
    denied = [r for r in rows if r.method.endswith("/UpdateProject")]
    assert len(denied) == 1 and denied[0].status == "PERMISSION_DENIED"
    assert denied[0].project_id == p.id and "requires role member" in denied[0].detail
    assert not [r for r in rows if r.method.endswith("/GetProject")]


def test_health_and_reflection(platform) -> None:
    with grpc.insecure_channel(platform.address) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for name in [*platform.server.service_names, ""]:
            resp = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING
        refl = reflection_pb2_grpc.ServerReflectionStub(ch)
        ask = reflection_pb2.ServerReflectionRequest(list_services="")
        answers = list(refl.ServerReflectionInfo(iter([ask]), timeout=5))
        listed = {s.name for a in answers for s in a.list_services_response.service}
    assert set(platform.server.service_names) <= listed
    assert "grpc.health.v1.Health" in listed


def test_sdk_against_unreachable_server_is_an_api_error() -> None:
    with TinyForgeClient("127.0.0.1:1", "tf_" + "a" * 40, timeout=2) as c:
        assert api_error(c.list_projects).code in ("UNAVAILABLE", "DEADLINE_EXCEEDED")
