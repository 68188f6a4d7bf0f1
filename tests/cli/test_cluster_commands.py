"""Cluster-mode entry points as real processes: ``bootstrap`` then ``service run api``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tinyforge.client import ApiError, TinyForgeClient

TINYFORGE = str(Path(sys.executable).parent / "tinyforge")


def _env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TINYFORGE_", "OTEL_"))}
    env["TINYFORGE_DATA_DIR"] = str(data_dir)
    env["TINYFORGE_GRPC_PORT"] = str(port)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bootstrap_once_then_serve_one_service(tmp_path: Path) -> None:
    port = _free_port()
    env = _env(tmp_path / "data", port)
    first = subprocess.run(
        [TINYFORGE, "bootstrap", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0, first.stderr
    boot = json.loads(first.stdout)
    assert boot["created"] is True and boot["api_key"]
    again = subprocess.run(
        [TINYFORGE, "bootstrap", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0 and json.loads(again.stdout) == {
        **boot,
        "api_key": None,
        "created": False,
    }

    proc = subprocess.Popen(
        [TINYFORGE, "service", "run", "api"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            health = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service="tinyforge.v1.ProjectService"),
                timeout=60,
                wait_for_ready=True,
            )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        client = TinyForgeClient(f"127.0.0.1:{port}", boot["api_key"])
        try:
            names = [p.name for p in client.list_projects()]
        finally:
            client.close()
        assert names == ["default"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out


def test_unknown_service_is_refused(tmp_path: Path) -> None:
    res = subprocess.run(
        [TINYFORGE, "service", "run", "nope"],
        env=_env(tmp_path, _free_port()),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2 and "invalid choice: 'nope'" in res.stderr


def test_ingest_service_serves_grpc_and_its_http_side(tmp_path: Path) -> None:
    """The ingest Deployment's process answers gRPC health and the EI-compatible HTTP API."""
    import urllib.error
    import urllib.request

    port, http_port = _free_port(), _free_port()
    env = {**_env(tmp_path / "data", port), "TINYFORGE_INGESTION_PORT": str(http_port)}
    proc = subprocess.Popen(
        [TINYFORGE, "service", "run", "ingest"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            health = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service="tinyforge.v1.IngestService"),
                timeout=60,
                wait_for_ready=True,
            )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        req = urllib.request.Request(
            f"http://127.0.0.1:{http_port}/api/training/data",
            data=b"{}",
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            urllib.request.urlopen(req, timeout=30)
            raise AssertionError("an upload without an API key was accepted")
        except urllib.error.HTTPError as err:
            assert err.code == 401
            body = json.loads(err.read())
            assert body["success"] is False and "key" in body["error"].lower()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out


def test_client_routes_each_service_to_its_own_deployment(tmp_path: Path) -> None:
    """Cluster layout: api and ingest are separate processes; TINYFORGE_INGEST_ADDRESS sends
    ingest calls to the ingest process while the rest goes to the api one."""
    api_port, ingest_port = _free_port(), _free_port()
    data = tmp_path / "data"
    boot = json.loads(
        subprocess.run(
            [TINYFORGE, "bootstrap", "--json"],
            env=_env(data, api_port),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    )
    procs = [
        subprocess.Popen(
            [TINYFORGE, "service", "run", name],
            env={**_env(data, port), "TINYFORGE_INGESTION_PORT": str(_free_port())},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, port in (("api", api_port), ("ingest", ingest_port))
    ]
    try:
        for port, service in ((api_port, "ProjectService"), (ingest_port, "IngestService")):
            with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
                health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(service=f"tinyforge.v1.{service}"),
                    timeout=60,
                    wait_for_ready=True,
                )
        client = TinyForgeClient(
            f"127.0.0.1:{api_port}",
            boot["api_key"],
            default_project_id=boot["project_id"],
            service_addresses={"ingest": f"127.0.0.1:{ingest_port}"},
        )
        try:
            doc = {
                "protected": {"ver": "v1", "alg": "none"},
                "signature": "0" * 64,
                "payload": {
                    "device_type": "T",
                    "interval_ms": 10,
                    "sensors": [{"name": "x", "units": "g"}],
                    "values": [[0.0], [1.0], [0.5]],
                },
            }
            sample = client.upload_sample(json.dumps(doc).encode(), "a.json", label="up")
            assert [s.id for s in client.list_samples()] == [sample.id]
            assert [p.name for p in client.list_projects()] == ["default"]
        finally:
            client.close()
        # without the routing, the api process does not serve ingest
        direct = TinyForgeClient(
            f"127.0.0.1:{api_port}", boot["api_key"], default_project_id=boot["project_id"]
        )
        try:
            with pytest.raises(ApiError) as err:
                direct.list_samples()
            assert err.value.code == "UNIMPLEMENTED"
        finally:
            direct.close()
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            assert p.wait(timeout=60) == 0
