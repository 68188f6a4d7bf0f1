"""kind end to end (tests/e2e_cluster/run.sh): needs Docker, kind and internet; skipped here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parent / "run.sh"


def _cluster_ready() -> bool:
    """True when a Docker daemon answers and kind is installed."""
    if shutil.which("kind") is None or shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


def test_run_script_is_valid_bash() -> None:
    proc = subprocess.run(["bash", "-n", str(RUN)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.cluster
@pytest.mark.slow
def test_kind_end_to_end() -> None:
    if not _cluster_ready():
        pytest.skip("no container engine/cluster")
    proc = subprocess.run(["bash", str(RUN)], text=True, timeout=3600)
    assert proc.returncode == 0
