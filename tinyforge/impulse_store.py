"""Stored, versioned impulses: create, read, list, update (= a new version), diff.

An impulse row (:class:`tinyforge.store.models.Impulse`) has a project-unique name and a
``latest_version``; each :class:`~tinyforge.store.models.ImpulseVersion` holds the canonical JSON
of one validated :class:`tinyforge.impulse.Impulse`. Versions are numbered 1, 2, ... and never
change once written, so a model can always say which impulse version it was trained from.
An update whose definition equals the latest one creates no version (nothing changed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tinyforge.accounts.projects import get_project
from tinyforge.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from tinyforge.impulse import BlockResolver, Change, Impulse, diff
from tinyforge.store.models import Impulse as ImpulseRow
from tinyforge.store.models import ImpulseVersion

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,127}$")


@dataclass(frozen=True)
class StoredImpulse:
    """One version of a stored impulse, detached from the DB session."""

    impulse_id: int
    project_id: int
    name: str
    version: int
    latest_version: int
    impulse: Impulse
    created_at: datetime

    @property
    def definition_json(self) -> str:
        return self.impulse.to_json()


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not _NAME_RE.match(name):
        raise InvalidArgument(
            f"impulse name {name!r} must be 1-128 letters, digits, spaces, '_', '.' or '-', "
            "starting with a letter or digit",
            field="name",
        )
    return name


def parse_definition(definition: str | dict, resolver: BlockResolver | None = None) -> Impulse:
    """JSON text (or a dict) → a validated :class:`Impulse` (InvalidArgument with field paths).

    ``resolver``: how block names are resolved (default built-in blocks only).
    """
    imp = Impulse.from_dict(definition) if isinstance(definition, dict) \
        else Impulse.from_json(definition)
    return imp.validate(resolver)


def _resolver(s: Session, project_id: int) -> BlockResolver:
    """Built-in blocks plus the custom blocks registered in the project's organization."""
    from tinyforge.blocks.custom_dsp import session_resolver

    return session_resolver(s, get_project(s, project_id).org_id)


def _stored(row: ImpulseRow, ver: ImpulseVersion) -> StoredImpulse:
    return StoredImpulse(row.id, row.project_id, row.name, ver.version, row.latest_version,
                         Impulse.from_json(ver.definition), ver.created_at)


def _row(s: Session, project_id: int, impulse_id: int) -> ImpulseRow:
    row = s.get(ImpulseRow, impulse_id) if impulse_id > 0 else None
    if row is None or row.project_id != project_id:
        raise NotFound(f"impulse {impulse_id} does not exist in project {project_id}",
                       field="impulse_id")
    return row


def _version(s: Session, row: ImpulseRow, version: int) -> ImpulseVersion:
    if version < 0:
        raise InvalidArgument(f"version must be >= 0 (0 = latest), got {version}",
                              field="version")
    v = version or row.latest_version
    ver = s.scalar(select(ImpulseVersion).where(ImpulseVersion.impulse_id == row.id,
                                                ImpulseVersion.version == v))
    if ver is None:
        raise NotFound(f"impulse {row.id} has no version {v} (versions 1..{row.latest_version})",
                       field="version")
    return ver


def create_impulse(s: Session, project_id: int, name: str, definition: str | dict | Impulse,
                   *, created_by_key_id: int | None = None) -> StoredImpulse:
    """Create impulse ``name`` in a project with version 1. AlreadyExists for a taken name."""
    get_project(s, project_id)
    name = _check_name(name)
    resolver = _resolver(s, project_id)
    imp = definition.validate(resolver) if isinstance(definition, Impulse) \
        else parse_definition(definition, resolver)
    if s.scalar(select(ImpulseRow.id).where(ImpulseRow.project_id == project_id,
                                            ImpulseRow.name == name)) is not None:
        raise AlreadyExists(f"project {project_id} already has an impulse named {name!r}",
                            field="name")
    row = ImpulseRow(project_id=project_id, name=name, latest_version=1)
    s.add(row)
    try:
        s.flush()
    except IntegrityError:  # a concurrent create of the same name won the race
        raise AlreadyExists(f"project {project_id} already has an impulse named {name!r}",
                            field="name") from None
    ver = ImpulseVersion(impulse_id=row.id, version=1, definition=imp.to_json(),
                         created_by_key_id=created_by_key_id)
    s.add(ver)
    s.flush()
    return _stored(row, ver)


def get_impulse(s: Session, project_id: int, impulse_id: int, version: int = 0) -> StoredImpulse:
    """One version (0 = the latest) of an impulse of the project; NotFound otherwise."""
    row = _row(s, project_id, impulse_id)
    return _stored(row, _version(s, row, version))


def list_impulses(s: Session, project_id: int) -> list[StoredImpulse]:
    """Latest version of every impulse of a project, oldest impulse first."""
    get_project(s, project_id)
    rows = s.scalars(select(ImpulseRow).where(ImpulseRow.project_id == project_id)
                     .order_by(ImpulseRow.id))
    return [_stored(r, _version(s, r, 0)) for r in rows]


def list_versions(s: Session, project_id: int, impulse_id: int) -> list[StoredImpulse]:
    """Every version of an impulse, version 1 first."""
    row = _row(s, project_id, impulse_id)
    vers = s.scalars(select(ImpulseVersion).where(ImpulseVersion.impulse_id == row.id)
                     .order_by(ImpulseVersion.version))
    return [_stored(row, v) for v in vers]


def update_impulse(s: Session, project_id: int, impulse_id: int,
                   definition: str | dict | Impulse | None = None, *, name: str | None = None,
                   expected_version: int = 0,
                   created_by_key_id: int | None = None) -> tuple[StoredImpulse, bool]:
    """Store a new version of the impulse (and/or rename it); returns (latest, created).

    ``expected_version`` (optional optimistic lock): the version the caller edited; when it is
    not the latest, the update is refused with FailedPrecondition naming both.
    A definition equal to the latest one creates no version (``created`` False).
    """
    row = _row(s, project_id, impulse_id)
    if expected_version and expected_version != row.latest_version:
        raise FailedPrecondition(
            f"impulse {impulse_id} is at version {row.latest_version}, the update was made "
            f"against version {expected_version}: reload and apply the change again",
            field="expected_version")
    if name is not None and name.strip() != row.name:
        new_name = _check_name(name)
        if s.scalar(select(ImpulseRow.id).where(ImpulseRow.project_id == project_id,
                                                ImpulseRow.name == new_name)) is not None:
            raise AlreadyExists(f"project {project_id} already has an impulse named "
                                f"{new_name!r}", field="name")
        row.name = new_name
    latest = _version(s, row, 0)
    if definition is None:
        s.flush()
        return _stored(row, latest), False
    resolver = _resolver(s, project_id)
    imp = definition.validate(resolver) if isinstance(definition, Impulse) \
        else parse_definition(definition, resolver)
    text = imp.to_json()
    if text == latest.definition:
        s.flush()
        return _stored(row, latest), False
    row.latest_version += 1
    ver = ImpulseVersion(impulse_id=row.id, version=row.latest_version, definition=text,
                         created_by_key_id=created_by_key_id)
    s.add(ver)
    s.flush()
    return _stored(row, ver), True


def diff_versions(s: Session, project_id: int, impulse_id: int, version_a: int,
                  version_b: int) -> list[Change]:
    """Changed fields from version ``a`` to version ``b`` (0 = latest) of one impulse."""
    a = get_impulse(s, project_id, impulse_id, version_a)
    b = get_impulse(s, project_id, impulse_id, version_b)
    return diff(a.impulse, b.impulse)
