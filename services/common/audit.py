"""Audit trail: one AuditLog row per mutating call (who, what, when, how it ended)."""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import Any

from sqlalchemy import insert

from tinyforge.store.db import Database
from tinyforge.store.models import AuditLog

log = logging.getLogger(__name__)
_INSERT = insert(AuditLog)  # built once: compiled once, then cached by SQLAlchemy


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
    wait: bool = True,
) -> None:
    """Write one audit row and return once it is committed (group-committed with other
    writes: ``Database.write``); failures are logged, never raised. With ``wait=False``
    the row is only queued (committed with the writer's next batch, within milliseconds;
    the queue is drained on shutdown): for callers that already answered their client."""
    row = {
        "method": method[:256],
        "status": status,
        "api_key_id": api_key_id,
        "user_id": user_id,
        "org_id": org_id,
        "project_id": project_id,
        "detail": detail[:4000],
    }
    try:
        if wait:
            db.writer.insert(_INSERT, row)
        else:
            db.writer.insert_nowait(_INSERT, row).add_done_callback(_log_failure(method))
    except Exception:
        log.exception("could not write the audit row of %s", method)


def _log_failure(method: str) -> Any:
    def done(fut: Future[Any]) -> None:
        if fut.exception() is not None:
            log.error("could not write the audit row of %s: %s", method, fut.exception())
    return done
