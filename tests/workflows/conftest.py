"""Pipeline tests run against the real in-process platform of tests/api/conftest.py."""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.conftest import platform, start_platform, stop_platform, tenant  # noqa: F401  (fixtures)
from tests.dsp_service.conftest import client  # noqa: F401  (fixture)
from tests.workflows.argo_stub import FakeArgo

#: The namespace the Argo engine tests submit to.
ARGO_NS = "tinyforge-jobs"


@pytest.fixture(scope="module")
def argo_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, FakeArgo]]:
    """A platform on the argo engine, submitting to a loopback Argo stand-in (one per module)."""
    fake = FakeArgo(token="s3cret").start()
    p = start_platform(
        tmp_path_factory.mktemp("argo-platform"),
        workflow_engine="argo",
        argo_server=fake.url,
        argo_namespace=ARGO_NS,
        argo_token="s3cret",
        argo_poll_interval=0.02,
    )
    yield p, fake
    stop_platform(p)
    fake.stop()
