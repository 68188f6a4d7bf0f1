"""Fixtures for block tests: the repo's example blocks, podman readiness, base images, registry.

Podman fixtures skip (with podman's own reason) only when podman genuinely cannot run a
container here; once podman works, a failure to build a base image or start the registry FAILS
the test with the underlying error.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_BLOCKS = REPO / "blocks"


@pytest.fixture(scope="session")
def podman_ready() -> None:
    """Skip unless rootful podman with runc can run containers on this machine."""
    from tinyforge.workflows.podman import podman_unavailable_reason

    reason = podman_unavailable_reason()
    if reason:
        pytest.skip(f"podman cannot run containers here: {reason}")


@pytest.fixture(scope="session")
def busybox_image(podman_ready: None) -> str:
    """The busybox-static base image (imported in well under a second)."""
    from tinyforge.blocks.containers import ensure_busybox_image

    return ensure_busybox_image()


@pytest.fixture(scope="session")
def base_image(podman_ready: None) -> str:
    """The Debian + python3 + numpy base (a few minutes on first use, then cached)."""
    from tinyforge.blocks.containers import ensure_base_image

    return ensure_base_image()


@pytest.fixture
def oci_registry(tmp_path: Path) -> Iterator[object]:
    """A real docker-registry on 127.0.0.1:<ephemeral port> with temp storage."""
    import shutil

    from tinyforge.blocks.oci_registry import LocalOciRegistry

    if shutil.which("docker-registry") is None:
        pytest.skip("docker-registry is not installed (scripts/install-system-deps.sh)")
    with LocalOciRegistry(tmp_path / "registry-storage") as reg:
        yield reg


def make_block(
    root: Path,
    script: str,
    *,
    btype: str = "transform",
    params: list[dict] | None = None,
    resources: dict | None = None,
    name: str = "Test block",
    dockerfile: str | None = None,
) -> Path:
    """A block directory in ``root`` whose local command is ``python3 main.py`` = ``script``."""
    root.mkdir(parents=True, exist_ok=True)
    info: dict = {"name": name, "localCommand": ["python3", "main.py"]}
    if resources:
        info["resources"] = resources
    doc = {"version": 1, "type": btype, "info": info, "parameters": params or []}
    (root / "parameters.json").write_text(json.dumps(doc))
    (root / "main.py").write_text(textwrap.dedent(script))
    if dockerfile is not None:
        (root / "Dockerfile").write_text(textwrap.dedent(dockerfile))
    return root
