"""Keyset pagination over integer primary keys with opaque page tokens."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from tinyforge.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def _encode(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode()


def _decode(token: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        last_id = data["after"]
        if not isinstance(last_id, int):
            raise TypeError(last_id)
        return last_id
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument(
            "page_token is not a token returned by a previous call", field="page_token"
        ) from exc


def paginate(
    session: Session,
    stmt: Select[Any],
    id_column: InstrumentedAttribute[int],
    page_size: int = 0,
    page_token: str = "",
    *,
    newest_first: bool = False,
) -> tuple[list[Any], str]:
    """Run ``stmt`` one page at a time; returns (rows, next_page_token or '').

    ``page_size`` 0 means DEFAULT_PAGE_SIZE; valid range 1..MAX_PAGE_SIZE.
    """
    if page_size < 0 or page_size > MAX_PAGE_SIZE:
        raise InvalidArgument(
            f"page_size must be between 0 and {MAX_PAGE_SIZE}, got {page_size}", field="page_size"
        )
    size = page_size or DEFAULT_PAGE_SIZE
    if page_token:
        last = _decode(page_token)
        stmt = stmt.where(id_column < last if newest_first else id_column > last)
    stmt = stmt.order_by(id_column.desc() if newest_first else id_column.asc()).limit(size + 1)
    rows = list(session.scalars(stmt))
    if len(rows) > size:
        rows = rows[:size]
        return rows, _encode(rows[-1].id)
    return rows, ""
