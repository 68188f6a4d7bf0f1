"""Audit trail: one AuditLog row per mutating call (who, what, when, how it ended)."""

from __future__ import annotations

import logging

from sqlalchemy import insert

from tinyforge.store.db import Database
from tinyforge.store.models import AuditLog

log = logging.getLogger(__name__)


def record(
    db: Database,
    *,
    method: str,
    status: str,
    api_key_id: int | None,
    user_id: int | None,
    org_id: int | None,
    project_id: int | None,
    detail: str = "",
) -> None:
    """Write one audit row in its own transaction; failures are logged, never raised."""
    try:
        # A Core INSERT: one short write transaction without the ORM unit of work.
        with db.session() as s:
            s.execute(
                insert(AuditLog).values(
                    method=method[:256],
                    status=status,
                    api_key_id=api_key_id,
                    user_id=user_id,
                    org_id=org_id,
                    project_id=project_id,
                    detail=detail[:4000],
                )
            )
    except Exception:
        log.exception("could not write the audit row of %s", method)
