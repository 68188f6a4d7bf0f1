"""Repo-wide pytest fixtures. Names and signatures are stable: other areas rely on them.

Data
    ``shared_datasets`` (session) -> ``Path``
        ``/work/shared/datasets``, located relative to the repo (``<repo>/../shared/datasets``).
        Skips the test ("../shared/datasets not present: ...") when it is missing.

S3 API server (real HTTP server: moto's ThreadedMotoServer in a child process)
    ``s3_server`` (session) -> :class:`S3Server`
        ``.endpoint`` (``"127.0.0.1:PORT"``, no scheme), ``.access_key``, ``.secret_key``,
        ``.region``. Started once per session on an ephemeral loopback port.
    ``minio_settings`` -> :class:`tinyforge.config.Settings`
        ``object_store="minio"`` pointing at ``s3_server`` with a fresh, unique bucket per test;
        ``data_dir`` is the test's ``tmp_path`` and ``database_url`` a SQLite file in it.
    ``minio_store`` -> :class:`tinyforge.store.objects.MinioObjectStore` built from
        ``minio_settings`` (its own empty bucket; ``part_size`` = 5 MiB, the S3 minimum, so
        multipart paths run with modest data).
    ``local_store`` -> :class:`tinyforge.store.objects.LocalObjectStore` in ``tmp_path/"objects"``.
    ``object_store`` -> ``ObjectStore``, parametrised ``["local", "minio"]``: a test using it
        runs once per backend.

PostgreSQL (real server started by the test setup)
    ``postgres_url`` (session) -> ``str``
        ``postgresql://tinyforge@127.0.0.1:PORT/postgres`` of a throw-away cluster made with
        Debian's ``initdb``/``pg_ctl`` in a temp dir (run as the ``postgres`` user when the
        tests run as root). Skips with "PostgreSQL not installed (make install installs it)"
        only when the binaries are absent; if they are present and the server does not come
        up, the test FAILS with the server log. Mark tests that use it ``@pytest.mark.postgres``.
    ``db_url`` -> ``str``, parametrised ``["sqlite", "postgres"]`` (the postgres leg carries the
        ``postgres`` marker): a fresh, empty database per test (SQLite file in ``tmp_path``;
        on PostgreSQL a ``CREATE DATABASE`` with a unique name, dropped afterwards). Pass it to
        ``tinyforge.store.db.Database``.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import pwd
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT / ".." / "shared"

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- datasets


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """``<repo>/../shared/datasets`` (read-only real datasets); skip when absent."""
    path = (SHARED_DIR / "datasets").resolve()
    if not path.is_dir():
        pytest.skip(f"../shared/datasets not present: expected the shared datasets at {path}")
    return path


# --------------------------------------------------------------------------- S3 server


@dataclass(frozen=True)
class S3Server:
    """Where the test S3 API server listens. moto accepts any credentials."""

    endpoint: str  # "127.0.0.1:PORT"
    access_key: str = "tinyforge-test"
    secret_key: str = "tinyforge-test-secret"
    region: str = "us-east-1"


# Runs in a child process so the server's memory (it keeps objects in RAM) and CPU do not
# mix with the code under test: memory-bound tests measure only the client.
_MOTO_CHILD = """
import logging, sys
logging.getLogger("werkzeug").setLevel(logging.ERROR)
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # serve until the parent closes stdin (or dies)
server.stop()
"""


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3 API server (moto) on an ephemeral 127.0.0.1 port for the whole session."""
    pytest.importorskip("moto.server", reason="moto[server] missing: pip install -e '.[dev]'")
    logfile = tmp_path_factory.mktemp("s3") / "moto.log"
    with open(logfile, "wb") as errf:
        proc = subprocess.Popen(
            [sys.executable, "-c", _MOTO_CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errf,
        )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        line = proc.stdout.readline().decode().strip() if ready else ""
        if not line.isdigit():
            proc.kill()
            pytest.fail(f"moto S3 server did not start; its log:\n{logfile.read_text()}")
        yield S3Server(endpoint=f"127.0.0.1:{int(line)}")
    finally:
        with contextlib.suppress(Exception):
            proc.stdin.close()  # type: ignore[union-attr]
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def minio_settings(s3_server: S3Server, tmp_path: Path):  # -> tinyforge.config.Settings
    """Settings for the MinIO backend against ``s3_server``, with a fresh bucket per test."""
    from tinyforge.config import Settings

    return Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'tinyforge.db'}",
        object_store="minio",
        s3_endpoint=s3_server.endpoint,
        s3_access_key=s3_server.access_key,
        s3_secret_key=s3_server.secret_key,
        s3_bucket=f"tf-test-{uuid.uuid4().hex[:16]}",
        s3_secure=False,
        s3_region=s3_server.region,
    )


@pytest.fixture
def minio_store(minio_settings):  # -> MinioObjectStore
    """A MinioObjectStore on its own empty bucket (5 MiB parts: the S3 minimum)."""
    from tinyforge.store.objects import MinioObjectStore

    s = minio_settings
    return MinioObjectStore(
        s.s3_endpoint,
        s.s3_access_key,
        s.s3_secret_key,
        s.s3_bucket,
        secure=s.s3_secure,
        region=s.s3_region,
        part_size=MinioObjectStore.MIN_PART_SIZE,
    )


@pytest.fixture
def local_store(tmp_path: Path):  # -> LocalObjectStore
    """A LocalObjectStore in ``tmp_path / "objects"``."""
    from tinyforge.store.objects import LocalObjectStore

    return LocalObjectStore(tmp_path / "objects")


@pytest.fixture(params=["local", "minio"])
def object_store(request: pytest.FixtureRequest):  # -> ObjectStore
    """Each object-store backend in turn: local directory, then MinIO code path on moto."""
    return request.getfixturevalue(f"{request.param}_store")


# --------------------------------------------------------------------------- PostgreSQL

_PG_SKIP = "PostgreSQL not installed (make install installs it)"


def _pg_bindir() -> Path | None:
    """Newest Debian PostgreSQL bin dir that has initdb, pg_ctl and pg_isready."""
    found = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        d = Path(initdb).parent
        m = re.search(r"/postgresql/(\d+)", str(d))
        if m and (d / "pg_ctl").exists() and (d / "pg_isready").exists():
            found.append((int(m.group(1)), d))
    return max(found)[1] if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _PgCluster:
    """A throw-away PostgreSQL cluster in a temp dir, run as ``postgres`` when we are root."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="tinyforge-pg-"))
        self.data = self.base / "data"
        self.logfile = self.base / "server.log"
        self.prefix: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail("PostgreSQL binaries are present but there is no 'postgres' user")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.port = 0

    def run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [*self.prefix, str(self.bindir / tool), *args]
        res = subprocess.run(cmd, cwd=self.base, capture_output=True, text=True, timeout=120)
        if check and res.returncode != 0:
            pytest.fail(
                f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}\n"
                f"server log:\n{self.log()}"
            )
        return res

    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except OSError:
            return "(no server log)"

    def init(self) -> None:
        self.run(
            "initdb", "-D", str(self.data), "-U", "tinyforge", "--auth=trust",
            "--encoding=UTF8", "--no-locale", "--no-sync",
        )  # fmt: skip

    def start(self, deadline_s: float = 60.0) -> None:
        """Start on a free port and wait (pg_isready) until it accepts connections."""
        for _attempt in range(3):
            self.port = _free_port()
            opts = (
                f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            with contextlib.suppress(FileNotFoundError):
                self.logfile.unlink()
            self.run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-o", opts, "-W",
                     "start")  # fmt: skip
            end = time.monotonic() + deadline_s
            while time.monotonic() < end:
                ready = self.run(
                    "pg_isready", "-h", "127.0.0.1", "-p", str(self.port), "-t", "1", check=False
                )
                if ready.returncode == 0:
                    return
                text = self.log()
                if "could not bind" in text or "Address already in use" in text:
                    break  # lost the port to someone else: try another one
                # pg_isready itself logs "FATAL: the database system is starting up": benign.
                fatal = [
                    ln for ln in text.splitlines()
                    if ("FATAL" in ln or "PANIC" in ln) and "starting up" not in ln
                ]  # fmt: skip
                if fatal:
                    pytest.fail(f"PostgreSQL failed to start; server log:\n{text}")
                time.sleep(0.1)  # poll interval of the readiness loop
            else:
                pytest.fail(f"PostgreSQL not ready after {deadline_s:.0f} s; log:\n{self.log()}")
            self.stop()
        pytest.fail(f"PostgreSQL could not bind a port in 3 tries; log:\n{self.log()}")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a real PostgreSQL server started for this session (see module docstring)."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip(_PG_SKIP)
    cluster = _PgCluster(bindir)
    try:
        cluster.init()
        cluster.start()
        yield f"postgresql://tinyforge@127.0.0.1:{cluster.port}/postgres"
    finally:
        cluster.cleanup()


def _with_dbname(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


class _PgDatabases:
    """Creates per-test databases one step ahead on a worker thread, so a test's
    ``CREATE DATABASE`` (slow-ish: it copies template1) overlaps the previous test. Create and
    drop run in order on that one thread."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="pg-db")
        self._next = self._worker.submit(self._create)

    def _sql(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(statement)

    def _create(self) -> str:
        name = f"tf_test_{uuid.uuid4().hex[:16]}"
        self._sql(f'CREATE DATABASE "{name}"')
        return name

    def take(self) -> str:
        """The name of a new, empty database (the next one starts being made now)."""
        name = self._next.result()
        self._next = self._worker.submit(self._create)
        return name

    def drop(self, name: str) -> None:
        # FORCE: end connections a test's engine pool may still hold.
        self._worker.submit(self._sql, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.drop(self._next.result())
        self._worker.shutdown(wait=True)


@pytest.fixture(scope="session")
def _pg_databases(postgres_url: str) -> Iterator[_PgDatabases]:
    pool = _PgDatabases(postgres_url)
    yield pool
    pool.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL: SQLite file, or a new database on ``postgres_url``."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    pool: _PgDatabases = request.getfixturevalue("_pg_databases")
    name = pool.take()
    try:
        yield _with_dbname(pool.admin_url, name)
    finally:
        pool.drop(name)
