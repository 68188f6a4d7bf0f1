"""Registry of job kinds: name → function(job_ctx, params) -> result dict."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tinyforge.errors import AlreadyExists, InvalidArgument

if TYPE_CHECKING:
    from tinyforge.jobs.manager import JobContext

JobFn = Callable[["JobContext", dict[str, Any]], dict[str, Any] | None]

_KIND_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
_kinds: dict[str, JobFn] = {}
_lock = threading.Lock()


def register_job_kind(name: str, fn: JobFn, *, replace: bool = False) -> None:
    """Make ``fn`` runnable as jobs of kind ``name`` (lower-case, at most 64 characters).

    ``fn(job_ctx, params)`` returns a JSON-serialisable dict (or None); raising
    :class:`tinyforge.errors.Cancelled` ends the job CANCELLED, any other exception FAILED.
    """
    if not _KIND_NAME.match(name):
        raise InvalidArgument(
            f"job kind {name!r} must be lower-case letters, digits, '_', '.', '-' (max 64)",
            field="kind",
        )
    with _lock:
        if name in _kinds and _kinds[name] is not fn and not replace:
            raise AlreadyExists(f"job kind {name!r} is already registered", field="kind")
        _kinds[name] = fn


def get_job_kind(name: str) -> JobFn:
    """The function of job kind ``name``; InvalidArgument if unknown."""
    fn = _kinds.get(name)
    if fn is None:
        known = ", ".join(sorted(_kinds)) or "none"
        raise InvalidArgument(f"unknown job kind {name!r} (registered: {known})", field="kind")
    return fn


def job_kinds() -> list[str]:
    """Names of every registered job kind."""
    return sorted(_kinds)
