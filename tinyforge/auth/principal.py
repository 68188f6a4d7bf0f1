"""The caller of an API method, resolved from its API key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from tinyforge.auth import cache
from tinyforge.auth.keys import hash_secret, is_well_formed, shown_prefix
from tinyforge.errors import PermissionDenied, Unauthenticated
from tinyforge.store.models import ApiKey, Membership, Role

_RANK = {Role.GUEST: 1, Role.MEMBER: 2, Role.ADMIN: 3}
# last_used_at is refreshed at most this often, so reads don't turn into writes.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


_KEY_QUERY = (
    select(
        ApiKey.id, ApiKey.prefix, ApiKey.org_id, ApiKey.project_id, ApiKey.user_id,
        ApiKey.role, ApiKey.revoked_at, ApiKey.last_used_at, Membership.role,
    )
    .outerjoin(
        Membership,
        (Membership.org_id == ApiKey.org_id) & (Membership.user_id == ApiKey.user_id),
    )
    .where(ApiKey.key_hash == bindparam("h"))
)


def role_at_least(role: Role, required: Role) -> bool:
    """True if ``role`` is ``required`` or more privileged (admin > member > guest)."""
    return _RANK[role] >= _RANK[required]


def weaker_role(a: Role, b: Role) -> Role:
    """The less privileged of two roles."""
    return a if _RANK[a] <= _RANK[b] else b


@dataclass(frozen=True)
class Principal:
    """Who calls: an API key, the user it acts for, its scope and effective role."""

    key_id: int
    user_id: int | None
    org_id: int
    project_id: int | None  # None = organization-scoped key
    role: Role

    @property
    def is_project_key(self) -> bool:
        return self.project_id is not None


def _aware(ts: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were written as UTC.
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def authenticate(session: Session, secret: str) -> Principal:
    """Resolve a secret into a Principal.

    Raises Unauthenticated for malformed, unknown or revoked keys, PermissionDenied when the
    key's user is no longer a member of the key's organization. The effective role is the
    weaker of the key's role and the user's current membership role.
    """
    if not is_well_formed(secret):
        raise Unauthenticated(
            "malformed API key: expected 'tf_' followed by 40 characters", field="x-api-key"
        )
    # Successful authentications are cached for a few seconds (tinyforge.auth.cache): a
    # revocation or membership change made in this process empties the cache at once, one
    # made by another process applies within cache.TTL_S. The session is not touched on a
    # hit (no connection checkout, no query).
    key_hash = hash_secret(secret)
    hit = cache.principals.get(key_hash)
    if hit is not None:
        return hit
    generation = cache.principals.generation
    # One prebuilt column query (key + the user's membership) run on the Core connection:
    # no ORM layer and no statement construction on this hot path.
    row = session.connection().execute(_KEY_QUERY, {"h": key_hash}).first()
    if row is None:
        raise Unauthenticated(f"unknown API key {shown_prefix(secret)}…", field="x-api-key")
    key_id, prefix, org_id, project_id, user_id, role, revoked_at, last_used_at, member_role = row
    if revoked_at is not None:
        raise Unauthenticated(
            f"API key {prefix}… (id {key_id}) was revoked at "
            f"{_aware(revoked_at).isoformat(timespec='seconds')}",
            field="x-api-key",
        )
    if user_id is not None:
        if member_role is None:
            raise PermissionDenied(
                f"API key {prefix}… belongs to user {user_id}, who is no longer a member "
                f"of organization {org_id}"
            )
        role = weaker_role(role, member_role)
    now = datetime.now(UTC)
    if last_used_at is None or now - _aware(last_used_at) > _LAST_USED_RESOLUTION:
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
    principal = Principal(
        key_id=key_id, user_id=user_id, org_id=org_id, project_id=project_id, role=role
    )
    cache.principals.put(key_hash, principal, generation)
    return principal
