"""Ingest benchmark: small JSON samples/s (HTTP and gRPC) and UploadStream MB/s, each printed
next to the raw speed of writing the same bytes to the same disk in the same run.

Runs ``python -m services.embedded`` (SQLite + local object store, the embedded default) in a
subprocess over a temporary data dir, so server and clients do not share one interpreter.
Small samples are sent by BENCH_CLIENT_PROCS client processes ("devices", default 4) with
BENCH_CLIENT_THREADS threads each (default 4, one keep-alive connection per thread); each
figure is printed with the server's CPU time per sample (user + system, from /proc) and the
clients' CPU time per sample, since the machine's 2 cores are shared by all of them (and,
on a shared machine, by everyone else: the load average is printed too).
Goals (issue 3): small samples >= 500/s on 2 cores; streaming >= 50 % of raw disk write.
BENCH_SMALL=0 skips the small-sample part; BENCH_SMALL_RUNS / BENCH_STREAM_RUNS set how many
timed runs give each median (3 each by default). On a machine with more cores,
BENCH_SERVER_CPUS / BENCH_CLIENT_CPUS (lists like ``0,1`` / ``2-15``) pin the platform and
the client processes to separate cores: the platform's figure on 2 dedicated cores, without
the load generator or neighbours in its way.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tinyforge.client import TinyForgeClient  # noqa: E402
from tinyforge.v1 import ingest_service_pb2 as ipb  # noqa: E402
from tinyforge.v1 import ingest_service_pb2_grpc  # noqa: E402

N_SMALL = int(os.environ.get("BENCH_SMALL", "2000"))
BIG_MB = int(os.environ.get("BENCH_BIG_MB", "200"))
THREADS = 16  # concurrent writers of the raw-disk baselines
# Small samples come from several client processes ("devices"), each with a few threads on
# its own connection, as a fleet of devices would send them (one Python client process
# would itself be the bottleneck: the GIL caps it at about one core).
CLIENT_PROCS = int(os.environ.get("BENCH_CLIENT_PROCS", "4"))
CLIENT_THREADS = int(os.environ.get("BENCH_CLIENT_THREADS", "4"))
BATCH = int(os.environ.get("BENCH_BATCH", "20"))  # files per request of the extra batched line
STREAM_RUNS = int(os.environ.get("BENCH_STREAM_RUNS", "3"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "400"))  # untimed small uploads per protocol
SMALL_RUNS = int(os.environ.get("BENCH_SMALL_RUNS", "3"))  # timed runs per protocol


def cpu_list(text: str) -> set[int] | None:
    """``"0,1"`` / ``"2-15"`` / ``"0,4-7"`` -> a set of CPU numbers; None for ``""``."""
    cpus: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus or None


SERVER_CPUS = cpu_list(os.environ.get("BENCH_SERVER_CPUS", ""))
CLIENT_CPUS = cpu_list(os.environ.get("BENCH_CLIENT_CPUS", ""))


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


def proc_cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds used so far by process ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tck, int(fields[12]) / tck


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (Linux /proc)."""
    return sum(proc_cpu_split(pid))


def _client_proc(kind: str, cfg: dict, ids: list[int], start: Any, out: Any) -> None:
    """One client process: CLIENT_THREADS threads uploading the samples ``ids``; puts its
    CPU seconds (and the first error, if any) on ``out``."""
    import http.client
    import threading
    from urllib.parse import urlsplit

    if CLIENT_CPUS:
        os.sched_setaffinity(0, CLIENT_CPUS)
    key, pid = cfg["api_key"], cfg["project_id"]
    blobs = {i: small_sample(i) for i in ids}
    local = threading.local()
    work: list[Any] = list(ids)
    if kind in ("http", "http-batch"):
        host = urlsplit(cfg["ingestion_url"])
        boundary = "tfbenchboundary7d3f"
        if kind == "http-batch":
            work = [ids[k:k + BATCH] for k in range(0, len(ids), BATCH)]

        def one(item: int | list[int]) -> None:
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = http.client.HTTPConnection(host.hostname, host.port,
                                                               timeout=120)
            body = b"".join(
                (f"--{boundary}\r\nContent-Disposition: form-data; name=\"data\"; "
                 f"filename=\"s{i}.json\"\r\nContent-Type: application/json\r\n\r\n"
                 ).encode() + blobs[i] + b"\r\n"
                for i in (item if isinstance(item, list) else [item])
            ) + f"--{boundary}--\r\n".encode()
            conn.request("POST", "/api/training/files", body=body, headers={
                "x-api-key": key, "x-project-id": str(pid), "x-label": "b",
                "Content-Type": f"multipart/form-data; boundary={boundary}"})
            resp = conn.getresponse()
            text = resp.read()
            assert resp.status == 200, text
            assert all(f["success"] for f in json.loads(text)["files"]), text
    else:
        channel = grpc.insecure_channel(cfg["address"])
        stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
        md = (("x-api-key", key),)

        def one(i: int) -> None:
            stub.UploadSample(ipb.UploadSampleRequest(
                project_id=pid, data=blobs[i],
                options=ipb.UploadOptions(filename=f"g{i}.json", label="b")),
                metadata=md, timeout=120)

    start.wait()
    t = time.process_time()
    err = ""
    try:
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            list(pool.map(one, work))
    except Exception as e:  # reported by the parent
        err = repr(e)[:500]
    out.put((time.process_time() - t, err))


def run_small(kind: str, cfg: dict, ids: list[int],
              server_pid: int) -> tuple[float, float, float, float]:
    """Upload samples ``ids`` from CLIENT_PROCS processes; returns (samples/s, server CPU ms
    per sample, of which system (kernel) ms per sample, client CPU ms per sample)."""
    import multiprocessing as mp

    mpc = mp.get_context("fork")
    start, out = mpc.Event(), mpc.Queue()
    shares = [ids[k::CLIENT_PROCS] for k in range(CLIENT_PROCS)]
    procs = [mpc.Process(target=_client_proc, args=(kind, cfg, share, start, out))
             for share in shares]
    for p in procs:
        p.start()
    time.sleep(1.0)  # let the clients import and build their samples before the clock starts
    user0, sys0 = proc_cpu_split(server_pid)
    t = time.perf_counter()
    start.set()
    results = [out.get(timeout=600) for _ in procs]
    wall = time.perf_counter() - t
    user1, sys1 = proc_cpu_split(server_pid)
    server_cpu, server_sys = user1 - user0 + sys1 - sys0, sys1 - sys0
    for p in procs:
        p.join()
    errors = [e for _, e in results if e]
    if errors:
        raise SystemExit(f"{kind} client failed: {errors[0]}")
    n = len(ids)
    return (n / wall, server_cpu / n * 1e3, server_sys / n * 1e3,
            sum(c for c, _ in results) / n * 1e3)


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


def write_wav(path: Path, nbytes: int) -> None:
    """A mono 16-bit 16 kHz WAV of about ``nbytes`` bytes (a sawtooth)."""
    frames = nbytes // 2
    pcm = (np.arange(frames, dtype=np.int64) % 4000 - 2000).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)


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
    pin = (lambda: os.sched_setaffinity(0, SERVER_CPUS)) if SERVER_CPUS else None
    proc = subprocess.Popen([sys.executable, "-m", "services.embedded"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=pin)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "Ctrl-C stops" in line:
            break
    else:
        raise SystemExit("platform did not start")
    config = json.loads((data_dir / "client.json").read_text())
    return proc, config


def bench_small(root: Path, cfg: dict, server: int) -> None:
    """(a) small samples: HTTP (EI files endpoint), gRPC UploadSample, HTTP batched.

    SMALL_RUNS timed runs of N_SMALL samples per protocol, the protocols taking turns (so a
    slow spell of this shared machine hits both alike); medians are printed with the range."""
    blobs = [small_sample(i) for i in range(N_SMALL)]
    # Each protocol is warmed up first with WARMUP untimed uploads (connections, the gRPC
    # server's worker threads, caches), as on a platform that has been running a while.
    base = (2 * SMALL_RUNS + 1) * N_SMALL  # sample numbers after those of the timed runs
    warm = list(range(base, base + WARMUP))
    run_small("http", cfg, warm, server)
    run_small("grpc", cfg, [i + WARMUP for i in warm], server)
    runs: dict[str, list[tuple[float, float, float, float]]] = {"http": [], "grpc": []}
    first = 0
    for _ in range(SMALL_RUNS):
        for kind in runs:
            runs[kind].append(run_small(kind, cfg, list(range(first, first + N_SMALL)), server))
            first += N_SMALL
    # extra (not the goal's figure): many files per EI multipart request
    batch_rate, batch_srv, batch_sys, batch_cli = run_small(
        "http-batch", cfg, list(range(first, first + N_SMALL)), server)
    raw_rate = raw_small(root / "raw-small", blobs)
    cores = (f"platform pinned to {len(SERVER_CPUS)} of {os.cpu_count()} cores, clients on "
             f"{len(CLIENT_CPUS) if CLIENT_CPUS else 'any'}" if SERVER_CPUS
             else f"{os.cpu_count()} cores shared by platform and clients")
    print(f"small JSON samples ({SMALL_RUNS} runs of {N_SMALL} per protocol after {WARMUP} "
          f"untimed, {CLIENT_PROCS} client processes x {CLIENT_THREADS} threads, "
          f"~{len(blobs[0])} B, {cores}, load {os.getloadavg()[0]:.1f}):")
    rates: dict[str, float] = {}
    for kind, label in (("http", "HTTP  /api/training/files "),
                        ("grpc", "gRPC  UploadSample        ")):
        rs = runs[kind]
        rates[kind] = statistics.median(r[0] for r in rs)
        srv, ksys, cli = (statistics.median(r[k] for r in rs) for k in (1, 2, 3))
        print(f"  {label}: {rates[kind]:8.1f} samples/s median (runs "
              f"{', '.join(f'{r[0]:.0f}' for r in rs)}; server CPU {srv:.2f} ms/sample "
              f"({ksys:.2f} kernel), clients {cli:.2f} ms/sample)")
    print(f"  raw   file+fsync, same disk: {raw_rate:8.1f} files/s "
          f"(a JSON sample is 1 object: the envelope is its own canonical form)")
    platform_cores = len(SERVER_CPUS) if SERVER_CPUS else os.cpu_count()
    print(f"  goal >= 500 samples/s on 2 cores (one sample per request, median): HTTP "
          f"{'met' if rates['http'] >= 500 else 'MISSED'}, gRPC "
          f"{'met' if rates['grpc'] >= 500 else 'MISSED'}"
          + ("" if platform_cores == 2 else
             f" (NOT a 2-core figure: the platform had {platform_cores} cores)"))
    print(f"  extra: HTTP {BATCH} files per request: {batch_rate:8.1f} samples/s   (server CPU "
          f"{batch_srv:.2f} ms/sample ({batch_sys:.2f} kernel), clients {batch_cli:.2f} "
          f"ms/sample)")


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="tf-bench-ingest-", dir=os.environ.get("BENCH_DIR")))
    proc, cfg = start_platform(root / "data")
    try:
        key, pid = cfg["api_key"], cfg["project_id"]
        if N_SMALL > 0:
            bench_small(root, cfg, proc.pid)
        # (b) one large WAV through UploadStream, sent the way users send files: the SDK's
        # Client.upload_file (UploadStream in 1 MiB chunks above 4 MiB). One smaller upload
        # warms the server up first (as a running platform is); then STREAM_RUNS uploads of
        # the big file, each followed by the raw write of the same bytes, and the medians.
        client = TinyForgeClient(cfg["address"], key, default_project_id=pid, timeout=600)
        wav_path = root / "big.wav"
        write_wav(wav_path, BIG_MB << 20)
        warm_path = root / "warm.wav"
        write_wav(warm_path, 32 << 20)
        client.upload_file(warm_path, label="warm-up")
        data = wav_path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        mb = len(data) / 1e6
        runs: list[tuple[float, float, float]] = []
        for _ in range(STREAM_RUNS):
            cpu0 = proc_cpu_s(proc.pid)
            t = time.perf_counter()
            sample = client.upload_file(wav_path, label="hum")
            rate = mb / (time.perf_counter() - t)
            cpu = (proc_cpu_s(proc.pid) - cpu0) / mb * 1e3
            assert sample.sha256 == digest
            runs.append((rate, cpu, raw_big(root / "raw-big.bin", data)))
        client.close()
        stream_rate = statistics.median(r[0] for r in runs)
        raw = statistics.median(r[2] for r in runs)
        print(f"one {mb:.0f} MB WAV through UploadStream (SDK Client.upload_file, "
              f"{TinyForgeClient.STREAM_CHUNK >> 20} MiB chunks; stored once: the WAV is its "
              f"own canonical object, {sample.length} frames validated), {STREAM_RUNS} runs:")
        for i, (rate, cpu, raw_rate) in enumerate(runs, 1):
            print(f"  run {i}: UploadStream {rate:7.1f} MB/s (server CPU {cpu:.2f} ms/MB), "
                  f"raw write+fsync {raw_rate:7.1f} MB/s")
        print(f"  UploadStream end to end   : {stream_rate:8.1f} MB/s   (median)")
        print(f"  raw   write+fsync, same disk: {raw:8.1f} MB/s   (median)")
        print(f"  ratio {stream_rate / raw:.0%} (goal >= 50 %: "
              f"{'met' if stream_rate >= 0.5 * raw else 'MISSED'})")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
