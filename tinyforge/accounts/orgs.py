"""Organizations."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinyforge.accounts.paging import paginate
from tinyforge.accounts.validation import check_id, check_name
from tinyforge.errors import AlreadyExists, NotFound
from tinyforge.store.models import Organization


def create_org(session: Session, name: str) -> Organization:
    """Create an organization; names are unique platform-wide."""
    name = check_name(name)
    if session.scalar(select(Organization.id).where(Organization.name == name)) is not None:
        raise AlreadyExists(f"organization {name!r} already exists", field="name")
    org = Organization(name=name)
    session.add(org)
    session.flush()
    return org


def get_org(session: Session, org_id: int, field: str = "org_id") -> Organization:
    """The organization ``org_id`` or NotFound."""
    check_id(org_id, field)
    org = session.get(Organization, org_id)
    if org is None:
        raise NotFound(f"organization {org_id} does not exist", field=field)
    return org


def list_orgs(
    session: Session, org_ids: list[int], page_size: int = 0, page_token: str = ""
) -> tuple[list[Organization], str]:
    """The organizations among ``org_ids``, one page."""
    stmt = select(Organization).where(Organization.id.in_(org_ids))
    return paginate(session, stmt, Organization.id, page_size, page_token)
