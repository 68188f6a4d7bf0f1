"""PipelineService / ``tinyforge pipeline`` tests against the real in-process platform of
tests/api/conftest.py (every embedded service; pipelines run with the local runner)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.api.conftest import platform, tenant  # noqa: F401  (fixtures)
from tinyforge.cli.main import app
from tinyforge.client import TinyForgeClient

runner = CliRunner()


@pytest.fixture
def client(tenant: Any) -> TinyForgeClient:  # noqa: F811
    return tenant.client(default_project_id=tenant.project_id)


@pytest.fixture
def cli(platform: Any, tenant: Any, tmp_path: Path) -> Any:  # noqa: F811
    """``cli(*args)`` runs the ``tinyforge`` CLI against the platform as the tenant's admin."""

    def run(*args: str) -> Any:
        env = {
            "TINYFORGE_ADDRESS": platform.address,
            "TINYFORGE_API_KEY": tenant.admin_key,
            "TINYFORGE_PROJECT_ID": str(tenant.project_id),
            "TINYFORGE_DATA_DIR": str(tmp_path),  # no client.json there
            "COLUMNS": "200",  # rich output unwrapped
        }
        return runner.invoke(app, list(args), env=env)

    return run
