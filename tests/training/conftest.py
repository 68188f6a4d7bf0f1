"""Fixtures for the training tests: the real in-process platform (tests/api/conftest.py) and
the train-service helpers (synthetic dataset through the API, job watching)."""

from __future__ import annotations

from tests.api.conftest import platform, tenant  # noqa: F401  (fixtures)
from tests.train_service.conftest import client  # noqa: F401  (fixture)
