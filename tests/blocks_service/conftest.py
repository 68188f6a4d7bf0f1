"""Fixtures for BlockService tests: the real in-process platform of tests/api/conftest.py, the
DSP-service helpers (synthetic dataset uploaded through the API, job watching) and the podman
fixtures of tests/blocks (base image, loopback OCI registry)."""

from __future__ import annotations

from tests.api.conftest import platform, tenant  # noqa: F401  (fixtures)
from tests.blocks.conftest import base_image, oci_registry, podman_ready  # noqa: F401
from tests.dsp_service.conftest import client  # noqa: F401  (fixture)
