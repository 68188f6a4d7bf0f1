"""Ingest benchmark: small JSON samples/s (HTTP and gRPC) and UploadStream MB/s, each printed
next to the raw speed of writing the same bytes to the same disk in the same run.

Runs ``python -m services.embedded`` (SQLite + local object store, the embedded default) in a
subprocess over a temporary data dir, so server and clients do not share one interpreter.
Goals (issue 3): small samples >= 500/s on 2 cores; streaming >= 50 % of raw disk write.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import requests

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tinyforge.v1 import ingest_service_pb2 as ipb  # noqa: E402
from tinyforge.v1 import ingest_service_pb2_grpc  # noqa: E402

N_SMALL = int(os.environ.get("BENCH_SMALL", "2000"))
BIG_MB = int(os.environ.get("BENCH_BIG_MB", "200"))
THREADS = 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def small_sample(i: int) -> bytes:
    values = [[i % 97, (i * 7) % 13, k] for k in range(20)]
    return json.dumps({"protected": {"ver": "v1", "alg": "none"}, "signature": "0" * 64,
                       "payload": {"device_name": f"bench-{i % 8}", "device_type": "BENCH",
                                   "interval_ms": 10,
                                   "sensors": [{"name": n, "units": "m/s2"} for n in "xyz"],
                                   "values": values}}).encode()


def raw_small(dirpath: Path, blobs: list[bytes]) -> float:
    """Files/s for writing each blob to its own file with fsync, THREADS in parallel (the
    object store's durability rule), on the same disk."""
    dirpath.mkdir()

    def one(i: int) -> None:
        fd = os.open(dirpath / f"{i}", os.O_WRONLY | os.O_CREAT)
        os.write(fd, blobs[i])
        os.fsync(fd)
        os.close(fd)

    t = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(one, range(len(blobs))))
    return len(blobs) / (time.perf_counter() - t)


def raw_big(path: Path, data: bytes) -> float:
    """MB/s for writing ``data`` to one file in 1 MiB chunks plus fsync."""
    t = time.perf_counter()
    with open(path, "wb") as f:
        for i in range(0, len(data), 1 << 20):
            f.write(data[i:i + (1 << 20)])
        f.flush()
        os.fsync(f.fileno())
    dt = time.perf_counter() - t
    path.unlink()
    return len(data) / dt / 1e6


def start_platform(data_dir: Path) -> tuple[subprocess.Popen, dict]:
    grpc_port, http_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYFORGE_")}
    env.update(TINYFORGE_DATA_DIR=str(data_dir), TINYFORGE_GRPC_PORT=str(grpc_port),
               TINYFORGE_INGESTION_PORT=str(http_port),
               TINYFORGE_MAX_UPLOAD_BYTES=str((BIG_MB + 10) << 20))
    proc = subprocess.Popen([sys.executable, "-m", "services.embedded"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "Ctrl-C stops" in line:
            break
    else:
        raise SystemExit("platform did not start")
    config = json.loads((data_dir / "client.json").read_text())
    return proc, config


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="tf-bench-ingest-", dir=os.environ.get("BENCH_DIR")))
    proc, cfg = start_platform(root / "data")
    try:
        key, pid, url = cfg["api_key"], cfg["project_id"], cfg["ingestion_url"]
        md = (("x-api-key", key),)
        blobs = [small_sample(i) for i in range(2 * N_SMALL)]

        # (a) small samples: HTTP (EI files endpoint), then gRPC UploadSample
        sessions = {}

        def http_one(i: int) -> None:
            import threading

            s = sessions.setdefault(threading.get_ident(), requests.Session())
            r = s.post(f"{url}/api/training/files",
                       files=[("data", (f"s{i}.json", blobs[i], "application/json"))],
                       headers={"x-api-key": key, "x-project-id": str(pid), "x-label": "b"},
                       timeout=120)
            assert r.status_code == 200, r.text

        t = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(http_one, range(N_SMALL)))
        http_rate = N_SMALL / (time.perf_counter() - t)

        channel = grpc.insecure_channel(cfg["address"])
        stub = ingest_service_pb2_grpc.IngestServiceStub(channel)

        def grpc_one(i: int) -> None:
            stub.UploadSample(ipb.UploadSampleRequest(
                project_id=pid, data=blobs[i],
                options=ipb.UploadOptions(filename=f"g{i}.json", label="b")),
                metadata=md, timeout=120)

        t = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(grpc_one, range(N_SMALL, 2 * N_SMALL)))
        grpc_rate = N_SMALL / (time.perf_counter() - t)
        raw_rate = raw_small(root / "raw-small", blobs[:N_SMALL])
        print(f"small JSON samples ({N_SMALL} each, {THREADS} client threads, "
              f"~{len(blobs[0])} B):")
        print(f"  HTTP  /api/training/files : {http_rate:8.1f} samples/s")
        print(f"  gRPC  UploadSample        : {grpc_rate:8.1f} samples/s")
        print(f"  raw   file+fsync, same disk: {raw_rate:8.1f} files/s "
              f"(a JSON sample = 2 objects: original + canonical .npz)")
        print(f"  goal >= 500 samples/s: HTTP {'met' if http_rate >= 500 else 'MISSED'}, "
              f"gRPC {'met' if grpc_rate >= 500 else 'MISSED'}")

        # (b) one large WAV through UploadStream
        frames = (BIG_MB << 20) // 2
        pcm = (np.arange(frames, dtype=np.int64) % 4000 - 2000).astype("<i2").tobytes()
        wav_path = root / "big.wav"
        with wave.open(str(wav_path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(pcm)
        del pcm
        data = wav_path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()

        def messages():
            yield ipb.UploadStreamRequest(header=ipb.UploadStreamHeader(
                project_id=pid, size_bytes=len(data),
                options=ipb.UploadOptions(filename="big.wav", label="hum")))
            for i in range(0, len(data), 1 << 20):
                yield ipb.UploadStreamRequest(chunk=data[i:i + (1 << 20)])

        t = time.perf_counter()
        sample = stub.UploadStream(messages(), metadata=md, timeout=600).sample
        stream_rate = len(data) / (time.perf_counter() - t) / 1e6
        assert sample.sha256 == digest
        raw = raw_big(root / "raw-big.bin", data)
        print(f"one {len(data) / 1e6:.0f} MB WAV through UploadStream (stored once: the WAV "
              f"is its own canonical object, {sample.length} frames validated):")
        print(f"  UploadStream end to end   : {stream_rate:8.1f} MB/s")
        print(f"  raw   write+fsync, same disk: {raw:8.1f} MB/s")
        print(f"  ratio {stream_rate / raw:.0%} (goal >= 50 %: "
              f"{'met' if stream_rate >= 0.5 * raw else 'MISSED'})")
        channel.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
