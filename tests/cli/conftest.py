"""CLI tests run against the real in-process server of tests/api/conftest.py."""

from tests.api.conftest import platform, tenant  # noqa: F401  (fixtures)
