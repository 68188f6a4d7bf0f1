"""Input checks shared by the account operations; each error names the offending field."""

from __future__ import annotations

import re

from tinyforge.errors import InvalidArgument

MAX_NAME_LENGTH = 128
MAX_DESCRIPTION_LENGTH = 4096
MAX_EMAIL_LENGTH = 254
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_name(value: str, field: str = "name", max_length: int = MAX_NAME_LENGTH) -> str:
    """``value`` stripped; InvalidArgument if empty, too long or with control characters."""
    stripped = value.strip()
    if not stripped:
        raise InvalidArgument(f"{field} must not be empty", field=field)
    if len(stripped) > max_length:
        raise InvalidArgument(
            f"{field} is {len(stripped)} characters long; at most {max_length} allowed", field=field
        )
    if _CONTROL.search(stripped):
        raise InvalidArgument(f"{field} must not contain control characters", field=field)
    return stripped


def check_description(value: str, field: str = "description") -> str:
    """Free text up to MAX_DESCRIPTION_LENGTH characters."""
    if len(value) > MAX_DESCRIPTION_LENGTH:
        raise InvalidArgument(
            f"{field} is {len(value)} characters long; at most {MAX_DESCRIPTION_LENGTH} allowed",
            field=field,
        )
    return value


def check_email(value: str, field: str = "email") -> str:
    """Return the lower-cased e-mail address, or raise InvalidArgument."""
    email = value.strip().lower()
    if not email:
        raise InvalidArgument(f"{field} must not be empty", field=field)
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        raise InvalidArgument(
            f"{field} {value!r} is not an e-mail address (name@domain, at most "
            f"{MAX_EMAIL_LENGTH} characters)",
            field=field,
        )
    return email


def check_id(value: int, field: str) -> int:
    """Ids are positive integers; 0 means 'not given' in proto3 and is rejected here."""
    if value <= 0:
        raise InvalidArgument(f"{field} must be a positive id, got {value}", field=field)
    return value
