"""API keys: create (secret returned once), list, revoke."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinyforge.accounts.members import get_membership
from tinyforge.accounts.orgs import get_org
from tinyforge.accounts.paging import paginate
from tinyforge.accounts.projects import get_project
from tinyforge.accounts.validation import MAX_NAME_LENGTH, check_id
from tinyforge.auth.keys import hash_secret, new_secret, shown_prefix
from tinyforge.auth.principal import role_at_least
from tinyforge.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from tinyforge.store.models import ApiKey, Role, User


def create_api_key(
    session: Session,
    *,
    org_id: int,
    role: Role,
    project_id: int | None = None,
    user_id: int | None = None,
    name: str = "",
) -> tuple[ApiKey, str]:
    """Create a key scoped to ``project_id`` (or the whole ``org_id``); returns (row, secret).

    The key acts for ``user_id`` (who must be a member with at least ``role``); the secret is
    not stored, only its sha256.
    """
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(
            f"name is {len(name)} characters long; at most {MAX_NAME_LENGTH} allowed", field="name"
        )
    get_org(session, org_id)
    if project_id is not None:
        project = get_project(session, project_id)
        if project.org_id != org_id:
            raise InvalidArgument(
                f"project {project_id} is not in organization {org_id}", field="project_id"
            )
    if user_id is not None:
        if session.get(User, user_id) is None:
            raise NotFound(f"user {user_id} does not exist", field="user_id")
        membership = get_membership(session, org_id, user_id)
        if membership is None:
            raise FailedPrecondition(
                f"user {user_id} is not a member of organization {org_id}", field="user_id"
            )
        if not role_at_least(membership.role, role):
            raise PermissionDenied(
                f"user {user_id} has role {membership.role.value} in organization {org_id}; "
                f"cannot hold a key with role {role.value}"
            )
    secret = new_secret()
    key = ApiKey(
        name=name.strip(),
        prefix=shown_prefix(secret),
        key_hash=hash_secret(secret),
        org_id=org_id,
        project_id=project_id,
        user_id=user_id,
        role=role,
    )
    session.add(key)
    session.flush()
    return key, secret


def get_api_key(session: Session, key_id: int, field: str = "api_key_id") -> ApiKey:
    """The key row ``key_id`` or NotFound."""
    check_id(key_id, field)
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"API key {key_id} does not exist", field=field)
    return key


def list_api_keys(
    session: Session,
    *,
    org_id: int,
    project_id: int | None = None,
    include_revoked: bool = False,
    page_size: int = 0,
    page_token: str = "",
) -> tuple[list[ApiKey], str]:
    """Keys of one project, or every key of an organization (``project_id`` None), one page."""
    stmt = select(ApiKey).where(ApiKey.org_id == org_id)
    if project_id is not None:
        stmt = stmt.where(ApiKey.project_id == project_id)
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    return paginate(session, stmt, ApiKey.id, page_size, page_token)


def revoke_api_key(session: Session, key_id: int) -> ApiKey:
    """Revoke a key (idempotent: revoking twice keeps the first revocation time)."""
    key = get_api_key(session, key_id)
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        session.flush()
    return key
