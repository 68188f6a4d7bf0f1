"""A real OCI registry on loopback (Debian's ``docker-registry``), and a client for its catalogue.

:class:`LocalOciRegistry` starts ``docker-registry serve`` on ``127.0.0.1`` with a storage
directory of the caller's choosing (an ephemeral port by default), waits until ``/v2/`` answers,
and stops it on exit. It speaks plain HTTP, which is why pushes and pulls to it turn TLS
verification off — only for loopback addresses (see ``tinyforge.workflows.podman``).

:func:`registry_catalog` lists repositories and tags through the registry HTTP API v2; it is
what ``tinyforge blocks ls`` shows until the org-scoped BlockService registry exists.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from tinyforge.errors import FailedPrecondition, NotFound
from tinyforge.workflows.podman import is_loopback_registry

_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: {addr}
"""


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _get_json(url: str, timeout: float = 10) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (http/https only)
        return json.loads(resp.read().decode())


def _base_url(address: str) -> str:
    scheme = "http" if is_loopback_registry(address) else "https"
    return f"{scheme}://{address}"


def registry_catalog(address: str, *, timeout: float = 10) -> dict[str, list[str]]:
    """Repositories of the registry at ``address`` (HOST:PORT) with their tags, sorted.

    Plain HTTP for a loopback registry, HTTPS otherwise. Raises NotFound when nothing answers.
    """
    base = _base_url(address)
    try:
        repos = _get_json(f"{base}/v2/_catalog?n=1000", timeout).get("repositories") or []
        out: dict[str, list[str]] = {}
        for repo in sorted(repos):
            tags = _get_json(f"{base}/v2/{repo}/tags/list", timeout).get("tags") or []
            out[repo] = sorted(tags)
        return out
    except (urllib.error.URLError, OSError, json.JSONDecodeError) as exc:
        raise NotFound(f"no OCI registry answers at {address}: {exc}", field="registry") from None


class LocalOciRegistry:
    """``docker-registry`` serving ``storage_dir`` on ``host:port`` (port 0 = pick a free one).

    Use as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(self, storage_dir: Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        if not is_loopback_registry(host):
            raise FailedPrecondition(
                f"the local registry serves plain HTTP and binds loopback only, not {host!r}",
                field="host",
            )
        self.storage_dir = Path(storage_dir)
        self.host = host
        self.port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def address(self) -> str:
        """``HOST:PORT`` of the running registry."""
        return f"{self.host}:{self.port}"

    def start(self, *, wait_s: float = 30) -> LocalOciRegistry:
        """Start the registry and return once ``/v2/`` answers (or raise with its log)."""
        exe = shutil.which("docker-registry")
        if exe is None:
            raise FailedPrecondition(
                "docker-registry is not installed (scripts/install-system-deps.sh installs it)",
                field="docker-registry",
            )
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        self._tmp = tempfile.TemporaryDirectory(prefix="tf-registry-")
        tmp = Path(self._tmp.name)
        fixed_port = self.port != 0
        for _attempt in range(1 if fixed_port else 3):
            if not fixed_port:
                self.port = _free_port(self.host)
            cfg = tmp / "config.yml"
            cfg.write_text(_CONFIG.format(root=self.storage_dir.resolve(), addr=self.address))
            log = (tmp / "registry.log").open("wb")
            self._proc = subprocess.Popen(
                [exe, "serve", str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            log.close()
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and self._proc.poll() is None:
                try:
                    _get_json(f"http://{self.address}/v2/", timeout=1)
                    return self
                except (urllib.error.URLError, OSError, json.JSONDecodeError):
                    time.sleep(0.05)  # poll interval while waiting for the port to answer
            self.stop(keep_tmp=True)
        text = (tmp / "registry.log").read_text(errors="replace")[-2000:]
        self._cleanup_tmp()
        raise FailedPrecondition(
            f"docker-registry did not come up on {self.address}:\n{text}", field="registry"
        )

    def stop(self, *, keep_tmp: bool = False) -> None:
        """Stop the registry process (storage is kept)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if not keep_tmp:
            self._cleanup_tmp()

    def _cleanup_tmp(self) -> None:
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.cleanup()
            self._tmp = None

    def serve_forever(self) -> None:
        """Block until the registry process ends (used by ``tinyforge blocks registry``)."""
        if self._proc is not None:
            self._proc.wait()

    def catalog(self) -> dict[str, list[str]]:
        """This registry's repositories and tags (see :func:`registry_catalog`)."""
        return registry_catalog(self.address)

    def __enter__(self) -> LocalOciRegistry:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
