"""API key secrets: ``tf_`` + 40 url-safe characters (240 random bits), stored as sha256.

A plain sha256 is enough (no slow KDF) because the secret is random with 240 bits of entropy,
not a user-chosen password.
"""

from __future__ import annotations

import hashlib
import re
import secrets

SECRET_PREFIX = "tf_"
SHOWN_PREFIX_LENGTH = 10  # "tf_" + 7 characters, shown in listings
_FORMAT = re.compile(r"^tf_[A-Za-z0-9_-]{40}$")


def new_secret() -> str:
    """A fresh random API key secret."""
    return SECRET_PREFIX + secrets.token_urlsafe(30)


def is_well_formed(secret: str) -> bool:
    """True if ``secret`` has the shape of a TinyForge API key."""
    return bool(_FORMAT.match(secret))


def hash_secret(secret: str) -> str:
    """Hex sha256 of the secret: the only form stored in the database."""
    return hashlib.sha256(secret.encode()).hexdigest()


def shown_prefix(secret: str) -> str:
    """The first characters of a secret, enough to recognise it in a listing."""
    return secret[:SHOWN_PREFIX_LENGTH]
