"""Short-lived in-process caches for the per-request lookups of hot paths (uploads).

Every upload authenticates its API key and reads a few facts of its project (organization,
HMAC key, whether unsigned data is allowed). Those rows almost never change, so they are
cached for :data:`TTL_S` seconds:

* ``principals``: sha256 of a secret → the :class:`~tinyforge.auth.principal.Principal` it
  authenticated as (successes only: unknown, revoked or malformed keys are never cached);
* ``projects``: project id → :class:`ProjectFacts` (existing projects only).

Freshness: any change made through the ORM in this process to an API key, a membership, a
user or a project (revoking a key, removing a member, rotating settings) empties both caches
when it is flushed and again when it is committed, so it applies to the very next request.
Every cache fill carries the generation it started in and is dropped if an invalidation
happened meanwhile, so a lookup that raced a revocation cannot put the old row back. Changes
made by *another* process (cluster mode: the API service revokes, an ingest replica serves)
are seen within ``TTL_S`` seconds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, event, select
from sqlalchemy.orm import Session, object_session

from tinyforge.store.models import ApiKey, Membership, Project, User

TTL_S = 2.0
_MAX_ENTRIES = 10_000  # a flood of distinct keys or projects cannot grow memory unbounded
_SESSION_FLAG = "tinyforge_auth_cache_dirty"


@dataclass(frozen=True)
class ProjectFacts:
    """What hot paths need of a project row."""

    project_id: int
    org_id: int
    hmac_key: str
    allow_unsigned_data: bool


class _TtlCache:
    """A dict of (expiry, value) with a generation counter for race-free invalidation."""

    def __init__(self) -> None:
        self._data: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self.generation = 0

    def get(self, key: Any) -> Any | None:
        hit = self._data.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: Any, value: Any, generation: int) -> None:
        with self._lock:
            if generation != self.generation:
                return  # invalidated while the value was being read: it may be stale
            if len(self._data) >= _MAX_ENTRIES:
                self._data.clear()
            self._data[key] = (time.monotonic() + TTL_S, value)

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._data.clear()


principals = _TtlCache()
projects = _TtlCache()


def invalidate() -> None:
    """Forget every cached principal and project (in this process)."""
    principals.clear()
    projects.clear()


_PROJECT_FACTS = select(Project.org_id, Project.hmac_key, Project.allow_unsigned_data).where(
    Project.id == bindparam("pid"))


def project_facts(conn: Any, project_id: int) -> ProjectFacts | None:
    """The facts of project ``project_id`` (cached), read through ``conn`` (a Core connection
    or a Session) on a miss; None if the project does not exist."""
    hit = projects.get(project_id)
    if hit is not None:
        return hit
    generation = projects.generation
    row = conn.execute(_PROJECT_FACTS, {"pid": project_id}).first()
    if row is None:
        return None
    facts = ProjectFacts(project_id, int(row[0]), row[1] or "", bool(row[2]))
    projects.put(project_id, facts, generation)
    return facts


# --------------------------------------------------------------------------- invalidation

def _changed(_mapper: Any, _connection: Any, target: Any) -> None:
    invalidate()
    session = object_session(target)
    if session is not None:  # once more at commit: readers may have refilled meanwhile
        session.info[_SESSION_FLAG] = True


def _after_commit(session: Session) -> None:
    if session.info.pop(_SESSION_FLAG, False):
        invalidate()


for _model in (ApiKey, Membership, Project, User):
    for _name in ("after_insert", "after_update", "after_delete"):
        event.listen(_model, _name, _changed)
event.listen(Session, "after_commit", _after_commit)
event.listen(Session, "after_soft_rollback",
             lambda session, _tx: session.info.pop(_SESSION_FLAG, None))
