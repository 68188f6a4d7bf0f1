"""``tinyforge up`` as a real subprocess: first start, CLI use, clean Ctrl-C, restart."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

TINYFORGE = str(Path(sys.executable).parent / "tinyforge")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TINYFORGE_", "OTEL_"))}
    env["TINYFORGE_DATA_DIR"] = str(data_dir)
    return env


def _start(data_dir: Path, port: int,
           ingestion_port: int | None = None) -> tuple[subprocess.Popen[str], list[str]]:
    """Start ``tinyforge up``; return once it reported ready and health says SERVING.
    Both ports are free ones: a test must never take a running platform's default port
    (4810 for ingestion)."""
    ingestion_port = _free_port() if ingestion_port is None else ingestion_port
    proc = subprocess.Popen(
        [TINYFORGE, "up", "--data-dir", str(data_dir), "--port", str(port),
         "--ingestion-port", str(ingestion_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(data_dir.parent),  # --data-dir must win over the environment
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:  # ends early (EOF) only if the process dies
        lines.append(line.rstrip("\n"))
        if "Ctrl-C stops" in line:
            break
    assert proc.poll() is None, "\n".join(lines)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        resp = health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service="tinyforge.v1.ProjectService"),
            timeout=30,
            wait_for_ready=True,
        )
    assert resp.status == health_pb2.HealthCheckResponse.SERVING
    return proc, lines


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TINYFORGE, *args], env=_env(data_dir), capture_output=True, text=True, timeout=60
    )


def _stop(proc: subprocess.Popen[str], sig: int) -> str:
    proc.send_signal(sig)
    rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest
    return rest


def test_up_lists_default_project_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "tf-data"
    port = _free_port()
    proc, lines = _start(data_dir, port)
    try:
        config_path = data_dir / "client.json"
        config = json.loads(config_path.read_text())
        assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
        assert config["address"] == f"127.0.0.1:{port}"
        assert not config["ingestion_url"].endswith(":4810"), "tests use a free ingestion port"
        assert config["api_key"] in [ln.strip() for ln in lines]  # printed on its own line
        assert (data_dir / "tinyforge.db").is_file()

        listed = _cli(data_dir, "project", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        projects = json.loads(listed.stdout)
        assert [(p["id"], p["name"]) for p in projects] == [(config["project_id"], "default")]

        status = _cli(data_dir, "status", "--json")
        info = json.loads(status.stdout)
        assert info["running"] is True and info["data_dir"] == str(data_dir)
        assert info["services"]["tinyforge.v1.JobService"] == "SERVING"
    finally:
        if proc.poll() is None:
            out = _stop(proc, signal.SIGINT)
    assert "stopped" in out

    # second start: same data, no new key printed, the saved key still works
    proc, lines = _start(data_dir, port)
    try:
        assert json.loads((data_dir / "client.json").read_text())["api_key"] == config["api_key"]
        assert not any(line.strip().startswith("tf_") for line in lines)
        listed = _cli(data_dir, "project", "list", "--json")
        assert [p["name"] for p in json.loads(listed.stdout)] == ["default"]
    finally:
        if proc.poll() is None:
            _stop(proc, signal.SIGTERM)

    down = _cli(data_dir, "status")
    assert down.returncode == 1 and "NOT reachable" in down.stdout
