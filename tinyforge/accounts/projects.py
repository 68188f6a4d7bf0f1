"""Projects and their settings (labeling method, signed-data policy, HMAC key)."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinyforge.accounts.orgs import get_org
from tinyforge.accounts.paging import paginate
from tinyforge.accounts.validation import check_description, check_id, check_name
from tinyforge.errors import AlreadyExists, InvalidArgument, NotFound
from tinyforge.store.models import Project

LABELING_METHODS = ("single_label", "object_detection", "structured_labels")
HMAC_KEY_BYTES = 32


def new_hmac_key() -> str:
    """A fresh random HMAC-SHA256 key, hex encoded (64 characters)."""
    return secrets.token_hex(HMAC_KEY_BYTES)


def check_labeling_method(value: str) -> str:
    """Return ``value`` if it is a known labeling method, else raise InvalidArgument."""
    if value not in LABELING_METHODS:
        raise InvalidArgument(
            f"labeling_method {value!r} is not one of {', '.join(LABELING_METHODS)}",
            field="labeling_method",
        )
    return value


def _check_unique(session: Session, org_id: int, name: str, exclude_id: int | None = None) -> None:
    stmt = select(Project.id).where(Project.org_id == org_id, Project.name == name)
    if exclude_id is not None:
        stmt = stmt.where(Project.id != exclude_id)
    if session.scalar(stmt) is not None:
        raise AlreadyExists(
            f"a project named {name!r} already exists in organization {org_id}", field="name"
        )


def create_project(
    session: Session,
    org_id: int,
    name: str,
    *,
    description: str = "",
    labeling_method: str = "single_label",
    allow_unsigned_data: bool = True,
) -> Project:
    """Create a project in ``org_id`` with a fresh HMAC key; names are unique per organization."""
    get_org(session, org_id)
    name = check_name(name)
    description = check_description(description)
    check_labeling_method(labeling_method)
    _check_unique(session, org_id, name)
    project = Project(
        org_id=org_id,
        name=name,
        description=description,
        labeling_method=labeling_method,
        allow_unsigned_data=allow_unsigned_data,
        hmac_key=new_hmac_key(),
    )
    session.add(project)
    session.flush()
    return project


def get_project(session: Session, project_id: int, field: str = "project_id") -> Project:
    """The project ``project_id`` or NotFound."""
    check_id(project_id, field)
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"project {project_id} does not exist", field=field)
    return project


def list_projects(
    session: Session,
    org_id: int,
    *,
    only_project_id: int | None = None,
    page_size: int = 0,
    page_token: str = "",
) -> tuple[list[Project], str]:
    """Projects of ``org_id`` (just ``only_project_id`` when given), one page, oldest first."""
    stmt = select(Project).where(Project.org_id == org_id)
    if only_project_id is not None:
        stmt = stmt.where(Project.id == only_project_id)
    return paginate(session, stmt, Project.id, page_size, page_token)


def update_project(
    session: Session,
    project_id: int,
    *,
    name: str | None = None,
    description: str | None = None,
    labeling_method: str | None = None,
    allow_unsigned_data: bool | None = None,
) -> Project:
    """Change the given settings (None = keep); validates everything before changing anything."""
    project = get_project(session, project_id)
    if name is not None:
        name = check_name(name)
        _check_unique(session, project.org_id, name, exclude_id=project.id)
    if description is not None:
        description = check_description(description)
    if labeling_method is not None:
        check_labeling_method(labeling_method)
    if name is not None:
        project.name = name
    if description is not None:
        project.description = description
    if labeling_method is not None:
        project.labeling_method = labeling_method
    if allow_unsigned_data is not None:
        project.allow_unsigned_data = allow_unsigned_data
    session.flush()
    return project


def delete_project(session: Session, project_id: int) -> None:
    """Delete a project; its jobs, logs and project-scoped keys go with it (FK cascade)."""
    project = get_project(session, project_id)
    session.delete(project)
    session.flush()


def rotate_hmac_key(session: Session, project_id: int) -> str:
    """Replace the project's HMAC key with a fresh one and return it."""
    project = get_project(session, project_id)
    project.hmac_key = new_hmac_key()
    session.flush()
    return project.hmac_key
