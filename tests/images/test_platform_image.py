"""The platform image builds with podman and its gRPC health endpoint answers SERVING.

Slow (builds a ~2 GB image from a locally bootstrapped Debian base; a few minutes) and needs
rootful podman with runc (scripts/install-container-tools.sh). Run: `pytest -m podman tests/images`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
IMAGE = "localhost/tinyforge/platform:test"
pytestmark = [pytest.mark.podman, pytest.mark.slow]


def _podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONTAINERS_CONF": str(REPO / "images" / "containers.conf")}
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, env=env, check=check, timeout=timeout
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("podman") is None or shutil.which("debootstrap") is None:
        pytest.skip("podman/debootstrap not installed: run scripts/install-container-tools.sh")
    if _podman("info", check=False).returncode != 0:
        pytest.skip("podman is installed but `podman info` fails (needs rootful podman + runc)")
    env = {**os.environ, "IMAGES": "platform", "TAG": "test"}
    proc = subprocess.run(
        ["bash", str(REPO / "images" / "build.sh")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=3000,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return IMAGE


def _health(port: int) -> int | None:
    """Health status from the host side, None while nothing answers."""
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            reply = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=2.0
            )
        return reply.status
    except grpc.RpcError:
        return None


def test_image_serves_grpc_health_as_non_root_read_only(image: str) -> None:
    # The image's default command is the chart's: `tinyforge service run api --port 4800`;
    # the port is moved by TINYFORGE_GRPC_PORT only when no --port is given, so pass the CLI.
    port = _free_port()
    command = ["tinyforge", "service", "run", "api", "--port", str(port)]
    name = f"tinyforge-health-{uuid.uuid4().hex[:8]}"
    _podman(
        "run",
        "-d",
        "--name",
        name,
        "--read-only",
        "--network=host",
        # podman's --read-only mounts a writable /tmp; U: owned by the image's user.
        "--tmpfs",
        "/var/lib/tinyforge:rw,U",
        "-e",
        f"TINYFORGE_GRPC_PORT={port}",
        image,
        *command,
    )
    try:
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline:
            status = _health(port)
            if status == health_pb2.HealthCheckResponse.SERVING:
                break
            state = _podman("inspect", "-f", "{{.State.Running}}", name).stdout.strip()
            assert state == "true", _podman("logs", name, check=False).stderr[-3000:]
            time.sleep(0.5)
        assert status == health_pb2.HealthCheckResponse.SERVING, _podman("logs", name).stderr
        # The image's own HEALTHCHECK command agrees.
        check = _podman("healthcheck", "run", name, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        assert _podman("exec", name, "id", "-u").stdout.strip() == "10001"
        ro = _podman("exec", name, "touch", "/opt/tinyforge/x", check=False)
        assert ro.returncode != 0
    finally:
        _podman("rm", "-f", name, check=False)


def test_healthcheck_fails_when_nothing_listens(image: str) -> None:
    proc = _podman(
        "run",
        "--rm",
        "--read-only",
        "--network=none",
        image,
        "python",
        "/usr/local/lib/tinyforge/healthcheck.py",
        "4999",
        check=False,
    )
    assert proc.returncode == 1
    assert "UNAVAILABLE" in proc.stderr
