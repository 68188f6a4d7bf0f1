"""Pipeline tests run against the real in-process platform of tests/api/conftest.py."""

from tests.api.conftest import platform, tenant  # noqa: F401  (fixtures)
from tests.dsp_service.conftest import client  # noqa: F401  (fixture)
