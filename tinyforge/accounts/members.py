"""Users and their role in an organization."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tinyforge.accounts.orgs import get_org
from tinyforge.accounts.paging import paginate
from tinyforge.accounts.validation import MAX_NAME_LENGTH, check_email, check_id
from tinyforge.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from tinyforge.store.models import Membership, Role, User


def get_or_create_user(session: Session, email: str, name: str = "") -> User:
    """The user with ``email`` (case-insensitive), created if new."""
    email = check_email(email)
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(
            f"name is {len(name)} characters long; at most {MAX_NAME_LENGTH} allowed", field="name"
        )
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, name=name.strip())
        session.add(user)
        session.flush()
    return user


def get_membership(session: Session, org_id: int, user_id: int) -> Membership | None:
    """The membership of ``user_id`` in ``org_id``, or None."""
    return session.scalar(
        select(Membership).where(Membership.org_id == org_id, Membership.user_id == user_id)
    )


def add_member(session: Session, org_id: int, email: str, role: Role, name: str = "") -> Membership:
    """Add the user ``email`` (created on first use) to ``org_id`` with ``role``."""
    get_org(session, org_id)
    user = get_or_create_user(session, email, name)
    if get_membership(session, org_id, user.id) is not None:
        raise AlreadyExists(
            f"user {user.email} is already a member of organization {org_id}", field="email"
        )
    membership = Membership(org_id=org_id, user_id=user.id, role=role)
    session.add(membership)
    session.flush()
    return membership


def remove_member(session: Session, org_id: int, user_id: int) -> None:
    """Remove ``user_id`` from ``org_id``; refuses to remove the last admin."""
    get_org(session, org_id)
    check_id(user_id, "user_id")
    membership = get_membership(session, org_id, user_id)
    if membership is None:
        raise NotFound(f"user {user_id} is not a member of organization {org_id}", field="user_id")
    if membership.role == Role.ADMIN:
        admins = session.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.org_id == org_id, Membership.role == Role.ADMIN)
        )
        if admins == 1:
            raise FailedPrecondition(
                f"user {user_id} is the last admin of organization {org_id}; add another admin "
                "first",
                field="user_id",
            )
    session.delete(membership)
    session.flush()


def list_members(
    session: Session, org_id: int, page_size: int = 0, page_token: str = ""
) -> tuple[list[tuple[Membership, User]], str]:
    """(membership, user) pairs of ``org_id``, one page."""
    get_org(session, org_id)
    stmt = select(Membership).where(Membership.org_id == org_id)
    rows, token = paginate(session, stmt, Membership.id, page_size, page_token)
    return [(m, session.get(User, m.user_id)) for m in rows], token  # type: ignore[misc]
