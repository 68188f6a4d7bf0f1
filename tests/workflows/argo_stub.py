"""A stand-in for the Argo Server: the few REST endpoints TinyForge calls, on loopback.

NOT Argo: no controller runs anything here. A test scripts what the server reports (a
workflow's status after each GET, each pod's log lines) and inspects every request it received
(method, path, query, headers, JSON body). Paths, query parameters and response shapes follow
Argo's REST API (``/api/v1/workflows/{namespace}...``; the log endpoint streams JSON lines
``{"result": {"content", "podName"}}``). The real server is exercised by the kind end-to-end
run (tests/e2e_cluster/run.sh).
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PREFIX = "/api/v1/workflows/"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None


def fnv32a(text: str) -> int:
    """FNV-1a 32-bit, written independently of the code under test (Argo names pods with it)."""
    value = 2166136261
    for byte in text.encode("utf-8"):
        value ^= byte
        value = (value * 16777619) % 2**32
    return value


def argo_pod_name(workflow: str, node_name: str, template: str) -> str:
    """Argo's v2 pod name of a node (short names: no truncation needed)."""
    return f"{workflow}-{template}-{fnv32a(node_name)}"


def node(
    workflow: str,
    path: str,
    template: str,
    phase: str,
    *,
    type_: str = "Pod",
    outputs: dict[str, str] | None = None,
    message: str = "",
) -> dict[str, Any]:
    """A ``status.nodes`` entry for node ``<workflow>.<path>`` as Argo reports it."""
    name = f"{workflow}.{path}" if path else workflow
    n: dict[str, Any] = {
        "id": f"{workflow}-{fnv32a(name)}",
        "name": name,
        "displayName": path.rsplit(".", 1)[-1] if path else workflow,
        "type": type_,
        "templateName": template,
        "templateScope": "local/",
        "phase": phase,
    }
    if message:
        n["message"] = message
    if outputs:
        n["outputs"] = {"parameters": [{"name": k, "value": v} for k, v in outputs.items()]}
    return n


@dataclass
class FakeArgo:
    """The stand-in server. ``statuses[name]`` is a list of status dicts: each GET of the
    workflow returns the next one (the last one repeats). ``on_stop(name)`` / ``on_terminate``
    let a test script what a stop does. ``logs[pod]`` are the lines the log API returns."""

    token: str | None = None
    requests: list[Request] = field(default_factory=list)
    workflows: dict[str, dict[str, Any]] = field(default_factory=dict)
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    logs: dict[str, list[str]] = field(default_factory=dict)
    on_create: Callable[[str, dict[str, Any]], None] | None = None
    on_stop: Callable[[str], None] | None = None
    on_terminate: Callable[[str], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeArgo:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                stub._dispatch(self)

            do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- helpers for tests ---------------------------------------------------------------------
    def calls(self, method: str | None = None, suffix: str = "") -> list[Request]:
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and r.path.endswith(suffix)
            ]

    def created(self) -> list[str]:
        with self.lock:
            return list(self.workflows)

    # -- the endpoints -----------------------------------------------------------------------
    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        req = Request(h.command, url.path, query, {k: v for k, v in h.headers.items()}, body)
        with self.lock:
            self.requests.append(req)
        if self.token is not None and h.headers.get("Authorization") != f"Bearer {self.token}":
            return self._send(h, 401, {"code": 16, "message": "token not valid"})
        if not url.path.startswith(PREFIX):
            return self._send(h, 404, {"code": 5, "message": f"no route {url.path}"})
        parts = url.path[len(PREFIX) :].split("/")
        ns = parts[0]
        if len(parts) == 1 and h.command == "POST":
            return self._create(h, ns, body)
        if len(parts) == 1 and h.command == "GET":
            return self._list(h, ns, query.get("listOptions.labelSelector", ""))
        name = parts[1] if len(parts) > 1 else ""
        with self.lock:
            wf = self.workflows.get(name)
        if wf is None or wf["metadata"]["namespace"] != ns:
            return self._send(
                h, 404, {"code": 5, "message": f'workflows.argoproj.io "{name}" not found'}
            )
        if len(parts) == 2 and h.command == "GET":
            return self._send(h, 200, self._advance(name))
        if len(parts) == 3 and parts[2] == "log" and h.command == "GET":
            return self._log(h, query)
        if len(parts) == 3 and parts[2] in ("stop", "terminate") and h.command == "PUT":
            hook = self.on_stop if parts[2] == "stop" else self.on_terminate
            if hook:
                hook(name)
            return self._send(h, 200, wf)
        return self._send(h, 404, {"code": 5, "message": f"no route {h.command} {url.path}"})

    def _create(self, h: BaseHTTPRequestHandler, ns: str, body: Any) -> None:
        wf = dict(body["workflow"])
        meta = dict(wf["metadata"])
        meta["name"] = meta.pop("generateName") + secrets.token_hex(3)[:5]
        meta.update(
            namespace=ns, uid=secrets.token_hex(8), creationTimestamp="2026-11-22T10:00:00Z"
        )
        wf["metadata"] = meta
        with self.lock:
            self.workflows[meta["name"]] = wf
            self.statuses.setdefault(meta["name"], [{"phase": "Pending"}])
        if self.on_create:
            self.on_create(meta["name"], wf)
        self._send(h, 200, wf)

    def _list(self, h: BaseHTTPRequestHandler, ns: str, selector: str) -> None:
        key, _, value = selector.partition("=")
        with self.lock:
            items = [
                w
                for w in self.workflows.values()
                if w["metadata"]["namespace"] == ns
                and (not key or w["metadata"].get("labels", {}).get(key) == value)
            ]
        # Argo (Go) marshals an empty list as null
        self._send(h, 200, {"metadata": {"resourceVersion": "1"}, "items": items or None})

    def _advance(self, name: str) -> dict[str, Any]:
        with self.lock:
            queue = self.statuses[name]
            status = queue.pop(0) if len(queue) > 1 else queue[0]
            wf = {**self.workflows[name], "status": status}
            self.workflows[name] = wf
            return wf

    def _log(self, h: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        pod = query.get("podName", "")
        with self.lock:
            lines = list(self.logs.get(pod, []))
        text = "".join(
            json.dumps({"result": {"content": ln, "podName": pod}}) + "\n" for ln in lines
        )
        data = text.encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, code: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
