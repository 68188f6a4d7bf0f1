"""Fixtures of the chart tests: every test here needs the real helm binary."""

from __future__ import annotations

import pytest

from tests.chart.chartlib import SCHEMAS, helm_path


@pytest.fixture(autouse=True)
def _needs_helm() -> None:
    if helm_path() is None:
        pytest.skip(
            "helm not installed: run `make install` (scripts/install-helm.sh puts it in .venv/bin)"
        )


@pytest.fixture
def crd_schemas() -> None:
    """Skips when the official CRD schemas (../shared/schemas) are not beside the repo."""
    if not (SCHEMAS / "argo-workflows").is_dir():
        pytest.skip(f"CRD schemas not found at {SCHEMAS.resolve()} (../shared/schemas absent)")
