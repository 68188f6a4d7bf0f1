"""Fixtures of the serving tests: a HAR motion impulse (spectral analysis + the platform's
classifier block) trained here on the shared STM32 HAR recordings, its ``kserve`` artifact,
and ``tinyforge serve`` running it as a real subprocess on free loopback ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tinyforge.deploy.bundle import DeployBundle
from tinyforge.impulse import Impulse, LearningBlockDef, ProcessingBlockDef, TimeSeriesInput

REPO = Path(__file__).resolve().parents[2]
FS = 26.0  # the STM32 HAR recordings: x, y, z in mg at 26 Hz
AXES = ["accX", "accY", "accZ"]


def har_csvs(shared_datasets: Path) -> list[Path]:
    files = sorted((shared_datasets / "har_stm32_accel").glob("*/*.csv"))
    if not files:
        pytest.skip(f"no HAR CSV files under {shared_datasets / 'har_stm32_accel'}")
    return files


def har_impulse() -> Impulse:
    return Impulse(
        input=TimeSeriesInput(window_size_ms=2000, window_stride_ms=1000, frequency_hz=FS,
                              axes=list(AXES)),
        processing=[ProcessingBlockDef(name="spectral", block="spectral_analysis", params={})],
        learning=[LearningBlockDef(name="nn", type="classifier", inputs=["spectral"])],
    ).validate()


@dataclass(frozen=True)
class Trained:
    bundle: DeployBundle  # with held-out test windows (platform predictions left to compute)
    files: list[Path]  # held-out HAR CSVs (not used for training)


@pytest.fixture(scope="session")
def har_model(shared_datasets: Path) -> Trained:
    """A small int8 + float32 classifier on every other HAR recording (a few epochs)."""
    from tinyforge.data.windowing import window_sample
    from tinyforge.dsp.registry import get_block
    from tinyforge.learn.registry import get_block as learn_block
    from tinyforge.quantize.convert import quantize_trained

    files = har_csvs(shared_datasets)
    impulse = har_impulse()
    xs, ys = [], []
    for path in files[::2]:
        values = np.loadtxt(path, delimiter=",", dtype=np.float32)
        w = window_sample(values, 1000.0 / FS, impulse.input)
        xs.append(w.data)
        ys += [path.parent.name] * len(w)
    x = np.concatenate(xs)
    feats = get_block("spectral_analysis").features_batch(x, FS, {}).reshape(len(x), -1)
    trained = learn_block("classifier").train(feats, np.array(ys), epochs=6, seed=0)
    models = quantize_trained(trained, feats)
    held_out = files[1::2]
    test = [(window_sample(np.loadtxt(p, delimiter=",", dtype=np.float32), 1000.0 / FS,
                           impulse.input).data[:3], p.parent.name) for p in held_out[::4]]
    bundle = DeployBundle(impulse=impulse, labels=tuple(trained.labels), model_int8=models.int8,
                          model_float32=models.float32,
                          test_windows=np.concatenate([w for w, _ in test]),
                          test_labels=tuple(lab for w, lab in test for _ in range(len(w))),
                          platform_int8_predictions=None, name="har_motion")
    return Trained(bundle, held_out)


@pytest.fixture(scope="session")
def build(har_model: Trained, tmp_path_factory: pytest.TempPathFactory):
    """The kserve build through the deployment registry (``build_artifact``)."""
    from tinyforge.deploy.registry import build_artifact

    out = tmp_path_factory.mktemp("kserve")
    return build_artifact("kserve", "linux-x86_64", har_model.bundle, out,
                          options={"project_id": "3", "build_id": "17"}, log=lambda _m: None,
                          timeout_s=300)


@pytest.fixture(scope="session")
def artifact(build) -> Path:
    return build.artifact


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen
    http: int
    grpc: int
    name: str
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http}"

    def request(self, method: str, path: str, body: bytes | dict | None = None,
                content_type: str = "application/json") -> tuple[int, dict]:
        """(status, JSON body) of one HTTP request to the server."""
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": content_type} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def start_server(model: Path, log: Path, name: str = "impulse",
                 extra: tuple[str, ...] = ()) -> Server:
    """``tinyforge serve MODEL`` as a subprocess; returns once /v2/health/ready says 200."""
    http, grpc = free_port(), free_port()
    cmd = [sys.executable, "-m", "tinyforge.cli.main", "serve", str(model), "--http-port",
           str(http), "--grpc-port", str(grpc), "--name", name, *extra]
    fh = open(log, "wb")  # noqa: SIM115 - owned by the process for its lifetime
    proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    srv = Server(proc, http, grpc, name, log)
    deadline = time.monotonic() + 90  # kserve import is slow on a loaded 2-core machine
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"tinyforge serve exited with {proc.returncode}:\n{srv.logs()}")
        try:
            if srv.request("GET", "/v2/health/ready")[0] == 200:
                return srv
        except (urllib.error.URLError, ConnectionError, OSError):
            pass  # not listening yet
        time.sleep(0.1)
    stop_server(srv)
    raise AssertionError(f"tinyforge serve not ready in 90 s:\n{srv.logs()}")


def stop_server(srv: Server) -> int:
    """SIGTERM, wait for the exit (kill after 20 s); returns the exit code."""
    if srv.proc.poll() is None:
        srv.proc.send_signal(signal.SIGTERM)
        try:
            srv.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            srv.proc.kill()
            srv.proc.wait(timeout=10)
    return srv.proc.returncode


@pytest.fixture(scope="session")
def server(artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(artifact, tmp_path_factory.mktemp("serve") / "serve.log")
    yield srv
    stop_server(srv)
