"""Authentication (API keys → principals) and the authorization policy of every API method.

- :mod:`tinyforge.auth.keys`: secret generation, format check and sha256 hashing.
- :mod:`tinyforge.auth.principal`: who is calling (resolved from a secret).
- :mod:`tinyforge.auth.policy`: the table method → required role + scope, and the check.
"""

from tinyforge.auth import cache
from tinyforge.auth.keys import hash_secret, new_secret
from tinyforge.auth.policy import POLICY, Rule, Scope, Target, authorize, resolve_target
from tinyforge.auth.principal import Principal, authenticate, role_at_least

__all__ = [
    "POLICY",
    "Principal",
    "Rule",
    "Scope",
    "Target",
    "authenticate",
    "authorize",
    "cache",
    "hash_secret",
    "new_secret",
    "resolve_target",
    "role_at_least",
]
