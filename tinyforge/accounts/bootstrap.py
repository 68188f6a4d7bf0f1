"""First start of a platform: default organization, project, admin user and admin API key."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinyforge.accounts.apikeys import create_api_key
from tinyforge.accounts.members import add_member
from tinyforge.accounts.orgs import create_org
from tinyforge.accounts.projects import create_project
from tinyforge.store.models import Membership, Organization, Project, Role

DEFAULT_ORG = "default"
DEFAULT_PROJECT = "default"
DEFAULT_ADMIN_EMAIL = "admin@localhost.localdomain"


@dataclass(frozen=True)
class Bootstrap:
    """Result of :func:`ensure_defaults`; ``admin_secret`` is set only on the first start."""

    org_id: int
    project_id: int
    admin_user_id: int
    admin_secret: str | None


def ensure_defaults(session: Session) -> Bootstrap:
    """Create the default org/project/admin and an org-admin key unless they already exist."""
    org = session.scalar(select(Organization).where(Organization.name == DEFAULT_ORG))
    if org is not None:
        project = session.scalar(
            select(Project).where(Project.org_id == org.id).order_by(Project.id)
        )
        admin = session.scalar(
            select(Membership)
            .where(Membership.org_id == org.id, Membership.role == Role.ADMIN)
            .order_by(Membership.id)
        )
        return Bootstrap(
            org_id=org.id,
            project_id=project.id if project else 0,
            admin_user_id=admin.user_id if admin else 0,
            admin_secret=None,
        )
    org = create_org(session, DEFAULT_ORG)
    project = create_project(session, org.id, DEFAULT_PROJECT, description="Created on first start")
    membership = add_member(session, org.id, DEFAULT_ADMIN_EMAIL, Role.ADMIN, name="admin")
    _key, secret = create_api_key(
        session, org_id=org.id, role=Role.ADMIN, user_id=membership.user_id, name="bootstrap admin"
    )
    return Bootstrap(org.id, project.id, membership.user_id, secret)
