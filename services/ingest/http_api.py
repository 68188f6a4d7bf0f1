"""Edge-Impulse-compatible HTTP ingestion API, served at the root of its own port.

Endpoints (what Edge Impulse's SDKs, CLI uploader and data forwarder send):

- ``POST /api/{training|testing|anomaly|split}/files``: multipart/form-data, one or more file
  parts named ``data``; parts whose file name is ``bounding_boxes.labels`` or
  ``structured_labels.labels`` carry labels for the other files (by file name).
- ``POST /api/{training|testing|anomaly|split}/data``: the body is one acquisition envelope
  (JSON or CBOR, HS256 or unsigned); the sample's name comes from ``x-file-name``.

Headers: ``x-api-key`` (or ``Authorization: Bearer``), ``x-label`` (URL-encoded; when absent
the label is the file name up to its first dot, as Edge Impulse does), ``x-no-label``,
``x-file-name``, ``x-disallow-duplicates``, ``x-add-date-id``, ``x-metadata`` (JSON object),
``x-bounding-boxes`` (JSON list), ``x-device-name``, ``x-device-type``, ``x-upload-source``,
and ``x-project-id``: the project, required only with an organization-wide key (a project
key always uploads to its own project).

Responses: ``200 {"success": true, "files": [{"success": true, "sampleId": N, ...}]}``; when
every file fails, the first error's 4xx status with ``{"success": false, "error": "...",
"files": [...]}``. Request bodies over ``max_upload_bytes`` (+1 MiB of multipart overhead)
are refused from their Content-Length before being read (413).

Authorization is the gRPC one: the key is authenticated by :func:`tinyforge.auth.authenticate`
and checked against the policy rule of ``IngestService/UploadSample``; every request gets an
audit row.
"""

from __future__ import annotations

import contextlib
import email.parser
import io
import json
import logging
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any
from urllib.parse import unquote

from python_multipart.multipart import MultipartParser, parse_options_header

from services.common import audit
from services.common.auth import LazySession
from tinyforge.auth import POLICY, Principal, Target, authenticate, authorize, cache
from tinyforge.context import PlatformContext
from tinyforge.data.labels import (
    LabelRange,
    parse_bounding_boxes_file,
    parse_bounding_boxes_header,
    parse_metadata_header,
    parse_structured_labels_file,
    validate_category,
)
from tinyforge.data.samples import SampleStore, UploadOptions
from tinyforge.errors import (
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    TinyForgeError,
    Unauthenticated,
)

log = logging.getLogger(__name__)

UPLOAD_RULE_METHOD = "/tinyforge.v1.IngestService/UploadSample"
MULTIPART_OVERHEAD = 1 << 20
IN_MEMORY_LIMIT = 8 << 20  # parts up to this size are ingested from memory, larger streamed
SPOOL_BYTES = 1 << 20
SMALL_BODY = 1 << 20  # multipart bodies up to this size are read whole and split in memory
READ_CHUNK = 1 << 20
LABEL_FILES = ("bounding_boxes.labels", "structured_labels.labels")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    content_type: str | None = None
    file: IO[bytes] = field(
        default_factory=lambda: tempfile.SpooledTemporaryFile(SPOOL_BYTES)  # noqa: SIM115
    )
    size: int = 0


def _read_exactly(stream: IO[bytes], length: int) -> bytes:
    data = stream.read(length)
    if len(data) == length:
        return data
    buf = bytearray(data)
    while len(buf) < length:
        chunk = stream.read(length - len(buf))
        if not chunk:
            raise InvalidArgument("request body ended early", field="data")
        buf += chunk
    return bytes(buf)


def _split_multipart(body: bytes, boundary: bytes) -> list[_Part] | None:
    """Parts of a complete, plainly formed multipart body held in memory (what every client
    sends: ``--boundary CRLF headers CRLF CRLF data CRLF --boundary ... --boundary--``);
    None for anything else (then the streaming parser decides, with its error messages)."""
    delim = b"--" + boundary
    if not body.startswith(delim):
        return None
    parts: list[_Part] = []
    pos = len(delim)
    sep = b"\r\n" + delim
    while True:
        if body.startswith(b"--", pos):
            return parts if parts else None
        if not body.startswith(b"\r\n", pos):
            return None
        head_end = body.find(b"\r\n\r\n", pos + 2)
        if head_end < 0:
            return None
        headers: dict[str, str] = {}
        for line in body[pos + 2:head_end].split(b"\r\n"):
            name, colon, value = line.partition(b":")
            if not colon or not name or name[:1] in b" \t":
                return None
            headers[name.strip().decode("latin-1").lower()] = (
                value.strip().decode("utf-8", "replace"))
        data_end = body.find(sep, head_end + 4)
        if data_end < 0:
            return None
        part = _Part(file=io.BytesIO(body[head_end + 4:data_end]))
        _disp, params = parse_options_header(headers.get("content-disposition", ""))
        part.name = params.get(b"name", b"").decode("utf-8", "replace")
        fn = params.get(b"filename")
        part.filename = fn.decode("utf-8", "replace") if fn is not None else None
        part.content_type = headers.get("content-type")
        part.size = data_end - head_end - 4
        parts.append(part)
        pos = data_end + len(sep)


def parse_multipart(stream: IO[bytes], length: int, boundary: bytes,
                    max_part_bytes: int) -> list[_Part]:
    """Read a multipart body of ``length`` bytes into spooled temp files (constant memory);
    small bodies are read whole and split in memory."""
    if length <= SMALL_BODY:
        body = _read_exactly(stream, length)
        parts = _split_multipart(body, boundary)
        if parts is not None:
            big = next((p for p in parts if p.size > max_part_bytes), None)
            if big is not None:
                raise ResourceExhausted(f"file {big.filename!r} is larger than the limit of "
                                        f"{max_part_bytes} bytes", field="data")
            return parts
        stream = io.BytesIO(body)
    parts = []
    headers: dict[str, str] = {}
    cur: dict[str, Any] = {"field": b"", "value": b""}

    def on_part_begin() -> None:
        headers.clear()
        parts.append(_Part())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        cur["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        cur["value"] += data[start:end]

    def on_header_end() -> None:
        headers[cur["field"].decode("latin-1").lower()] = cur["value"].decode("utf-8", "replace")
        cur["field"], cur["value"] = b"", b""

    def on_headers_finished() -> None:
        part = parts[-1]
        _disp, params = parse_options_header(headers.get("content-disposition", ""))
        part.name = params.get(b"name", b"").decode("utf-8", "replace")
        fn = params.get(b"filename")
        part.filename = fn.decode("utf-8", "replace") if fn is not None else None
        part.content_type = headers.get("content-type")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = parts[-1]
        part.size += end - start
        if part.size > max_part_bytes:
            raise ResourceExhausted(f"file {part.filename!r} is larger than the limit of "
                                    f"{max_part_bytes} bytes", field="data")
        part.file.write(data[start:end])

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
    })
    left = length
    try:
        while left > 0:
            chunk = stream.read(min(READ_CHUNK, left))
            if not chunk:
                raise InvalidArgument("request body ended early", field="data")
            left -= len(chunk)
            parser.write(chunk)
        parser.finalize()
    except TinyForgeError:
        _close(parts)
        raise
    except Exception as e:  # the parser's own errors: a malformed body
        _close(parts)
        raise InvalidArgument(f"malformed multipart body: {e}", field="data") from e
    for p in parts:
        p.file.seek(0)
    return parts


def _close(parts: list[_Part]) -> None:
    for p in parts:
        with contextlib.suppress(Exception):
            p.file.close()


def _file_chunks(f: IO[bytes]) -> Iterator[bytes]:
    while chunk := f.read(READ_CHUNK):
        yield chunk


class IngestionApi:
    """The request handling of the EI ingestion API, independent of the HTTP server."""

    def __init__(self, ctx: PlatformContext, store: SampleStore) -> None:
        self.ctx = ctx
        self.store = store
        self.rule = POLICY[UPLOAD_RULE_METHOD]

    # -- authorization --------------------------------------------------------------------
    def authorize(self, headers: Any) -> tuple[Principal, Target]:
        secret = (headers.get("x-api-key") or "").strip()
        auth = (headers.get("authorization") or "").strip()
        if not secret and auth.lower().startswith("bearer "):
            secret = auth[7:].strip()
        if not secret:
            raise Unauthenticated("missing API key: send it in the x-api-key header",
                                  field="x-api-key")
        raw_project = (headers.get("x-project-id") or "").strip()
        with LazySession(self.ctx.db) as s:  # key and project usually come from the cache
            principal = authenticate(s, secret)  # type: ignore[arg-type]
            if principal.project_id is not None:
                project_id = principal.project_id
                if raw_project and raw_project != str(project_id):
                    raise PermissionDenied(f"this API key is scoped to project {project_id}; "
                                           f"x-project-id asks for {raw_project}")
            else:
                if not raw_project.isdigit() or int(raw_project) <= 0:
                    raise InvalidArgument("an organization API key needs the x-project-id "
                                          "header (the numeric project id)",
                                          field="x-project-id")
                project_id = int(raw_project)
            facts = cache.project_facts(s, project_id)
            if facts is None:
                raise PermissionDenied(f"project {project_id} is not accessible with this key")
            target = Target(facts.org_id, project_id)
        authorize(principal, self.rule, target, UPLOAD_RULE_METHOD)
        return principal, target

    # -- options --------------------------------------------------------------------------
    @staticmethod
    def options(headers: Any, category: str, filename: str) -> UploadOptions:
        label: str | None = None
        raw_label = headers.get("x-label")
        if _truthy(headers.get("x-no-label")):
            label = None
        elif raw_label is not None and raw_label.strip():
            label = unquote(raw_label)
        else:  # Edge Impulse: the label is the file name up to its first dot
            label = filename.split(".", 1)[0] or None
        meta = headers.get("x-metadata")
        boxes = headers.get("x-bounding-boxes")
        return UploadOptions(
            category=category,
            label=label,
            filename=filename,
            metadata=parse_metadata_header(meta) if meta else {},
            bounding_boxes=list(parse_bounding_boxes_header(boxes)) if boxes else [],
            disallow_duplicates=_truthy(headers.get("x-disallow-duplicates")),
            add_date_id=_truthy(headers.get("x-add-date-id")),
            device_name=unquote(headers.get("x-device-name") or ""),
            device_type=unquote(headers.get("x-device-type") or ""),
            upload_source=headers.get("x-upload-source") or "ei-http",
        )

    # -- endpoints ------------------------------------------------------------------------
    def upload_files(self, project_id: int, category: str, headers: Any,
                     parts: list[_Part]) -> list[dict[str, Any]]:
        boxes_by_file: dict[str, Any] = {}
        ranges_by_file: dict[str, list[LabelRange]] = {}
        files: list[_Part] = []
        for p in parts:
            if p.filename in LABEL_FILES:
                raw = p.file.read()
                if p.filename == "bounding_boxes.labels":
                    boxes_by_file.update(parse_bounding_boxes_file(raw))
                else:
                    ranges_by_file.update(parse_structured_labels_file(raw))
            elif p.name == "data":
                files.append(p)
        if not files:
            raise InvalidArgument("no file in the request: send multipart parts named 'data'",
                                  field="data")
        results = []
        for p in files:
            name = p.filename or "sample"
            try:
                opts = self.options(headers, category, name)
                opts.content_type = p.content_type
                if name in boxes_by_file:
                    opts.bounding_boxes = list(boxes_by_file[name])
                if name in ranges_by_file:
                    opts.structured_labels = ranges_by_file[name]
                row = self._ingest(project_id, p, opts)
                results.append(_ok(row, name))
            except TinyForgeError as e:
                results.append(_err(e, name))
        return results

    def _ingest(self, project_id: int, p: _Part, opts: UploadOptions) -> Any:
        if p.size <= IN_MEMORY_LIMIT:
            return self.store.ingest_bytes(project_id, p.file.read(), opts)
        return self.store.ingest_stream(project_id, _file_chunks(p.file), opts,
                                        size_hint=p.size)

    def upload_data(self, project_id: int, category: str, headers: Any,
                    body: bytes) -> list[dict[str, Any]]:
        name = unquote(headers.get("x-file-name") or "") or "sample.json"
        try:
            opts = self.options(headers, category, name)
            opts.content_type = headers.get("content-type")
            row = self.store.ingest_bytes(project_id, body, opts)
            return [_ok(row, name)]
        except TinyForgeError as e:
            return [_err(e, name)]

    def record(self, principal: Principal | None, target: Target | None, path: str,
               status: str, detail: str) -> None:
        audit.record(self.ctx.db, method=f"HTTP POST {path}"[:256], status=status,
                     api_key_id=principal.key_id if principal else None,
                     user_id=principal.user_id if principal else None,
                     org_id=target.org_id if target else (principal.org_id if principal
                                                          else None),
                     project_id=target.project_id if target else None, detail=detail,
                     wait=False)  # the response is sent already: don't hold the connection


_MAX_HEADER_LINE = 65536  # the standard library's limits (http.client)
_MAX_HEADERS = 100


class _Headers(dict):
    """Request headers by lower-cased name (the first of repeated ones), with the
    case-insensitive ``get`` of ``email.message.Message``."""

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name: str) -> Any:
        return dict.get(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())


def _fast_headers(lines: list[bytes]) -> _Headers | None:
    """``Name: value`` lines as :class:`_Headers`; None if any line is not that simple
    (continuation lines, no colon, odd names): the caller uses email.parser then."""
    out = _Headers()
    for raw in lines:
        name, colon, value = raw.decode("iso-8859-1").partition(":")
        if not colon or not name or name != name.strip() or " " in name:
            return None
        key = name.lower()
        if key not in out:
            dict.__setitem__(out, key, value.strip(" \t\r\n"))
    return out


def _ok(row: Any, name: str) -> dict[str, Any]:
    return {"success": True, "sampleId": row.id, "fileName": name, "sampleName": row.filename,
            "category": row.category, "label": row.label or ""}


def _err(e: TinyForgeError, name: str) -> dict[str, Any]:
    return {"success": False, "fileName": name, "error": e.message, "code": e.code,
            "field": e.field or "", "_status": e.http_status}


class _Handler(BaseHTTPRequestHandler):
    server: IngestHttpServer
    protocol_version = "HTTP/1.1"
    server_version = "TinyForgeIngestion/1"

    def parse_request(self) -> bool:
        """The request line and headers. Plain ``HTTP/1.x`` requests take a short path: the
        header lines are split here instead of going through ``email.parser`` (a large
        share of a small upload's cost); any other request line goes to the standard
        parser, and header lines that are not plain ``Name: value`` go to ``email.parser``
        exactly as the standard one would."""
        words = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n").split()
        if len(words) != 3 or words[2] not in ("HTTP/1.1", "HTTP/1.0"):
            return super().parse_request()
        self.requestline = " ".join(words)
        self.command, self.path, self.request_version = words
        self.close_connection = words[2] != "HTTP/1.1"
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")
        lines: list[bytes] = []
        while True:
            line = self.rfile.readline(_MAX_HEADER_LINE + 1)
            if len(line) > _MAX_HEADER_LINE:
                self.send_error(431, "Line too long")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            lines.append(line)
            if len(lines) > _MAX_HEADERS:
                self.send_error(431, "Too many headers")
                return False
        fast = _fast_headers(lines)
        self.headers = fast if fast is not None else email.parser.Parser(  # type: ignore[assignment]
            _class=self.MessageClass).parsestr(b"".join(lines).decode("iso-8859-1"))
        conntype = (self.headers.get("Connection") or "").lower()
        if conntype == "close":
            self.close_connection = True
        elif conntype == "keep-alive":
            self.close_connection = False
        if ((self.headers.get("Expect") or "").lower() == "100-continue"
                and self.request_version == "HTTP/1.1"):
            return self.handle_expect_100()
        return True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        # Headers and body in one send (end_headers + write would be two system calls).
        self._headers_buffer.append(b"\r\n" + data)  # type: ignore[attr-defined]
        self.flush_headers()

    def _fail(self, status: int, message: str, **extra: Any) -> None:
        self._send(status, {"success": False, "error": message, **extra})

    def do_GET(self) -> None:  # noqa: N802
        if self.path in ("/", "/health", "/healthz"):
            self._send(200, {"success": True, "service": "tinyforge-ingestion"})
        else:
            self.close_connection = True
            self._fail(404, f"no such endpoint: GET {self.path}")

    def do_POST(self) -> None:  # noqa: N802
        api = self.server.api
        path = self.path.split("?", 1)[0]
        segs = [s for s in path.split("/") if s]
        principal = target = None
        status, detail = "OK", ""
        self._unread = 0
        try:
            if len(segs) != 3 or segs[0] != "api" or segs[2] not in ("files", "data"):
                self.close_connection = True
                raise _HttpError(404, f"no such endpoint: POST {path}; use "
                                 "/api/{training|testing|anomaly|split}/files or .../data")
            length_raw = self.headers.get("content-length")
            if length_raw is None or not length_raw.strip().isdigit():
                self.close_connection = True
                raise _HttpError(411, "a Content-Length header is required")
            length = int(length_raw)
            self._unread = length
            limit = api.store.max_upload_bytes + (MULTIPART_OVERHEAD if segs[2] == "files" else 0)
            if length > limit:
                self.close_connection = True  # the body is not read
                raise ResourceExhausted(f"request body is {length} bytes, over the limit of "
                                        f"{limit} bytes", field="data")
            try:
                principal, target = api.authorize(self.headers)
                category = validate_category(segs[1]).value
            except TinyForgeError:
                self.close_connection = True
                raise
            assert target.project_id is not None
            if segs[2] == "data":
                body = self.rfile.read(length)
                self._unread = 0
                results = api.upload_data(target.project_id, category, self.headers, body)
            else:
                ctype, params = parse_options_header(self.headers.get("content-type", ""))
                boundary = params.get(b"boundary")
                if ctype != b"multipart/form-data" or not boundary:
                    self.close_connection = True
                    raise InvalidArgument("Content-Type must be multipart/form-data with a "
                                          "boundary", field="content-type")
                self._unread = 0  # the parser reads it, or the connection is closed
                parts = parse_multipart(self.rfile, length, boundary,
                                        api.store.max_upload_bytes)
                try:
                    results = api.upload_files(target.project_id, category, self.headers, parts)
                finally:
                    _close(parts)
            ok = [r for r in results if r["success"]]
            statuses = [r.pop("_status") for r in results if not r["success"]]
            detail = f"{len(ok)} of {len(results)} files stored" + "".join(
                f"; {r['fileName']}: {r['error']}" for r in results if not r["success"])
            if ok:
                self._send(200, {"success": True, "files": results})
            else:
                status = results[0]["code"]
                self._send(statuses[0], {"success": False, "error": results[0]["error"],
                                         "files": results})
        except _HttpError as e:
            status, detail = str(e.status), e.message
            self._fail(e.status, e.message)
        except TinyForgeError as e:
            status, detail = e.code, e.message
            self.close_connection = True
            self._fail(e.http_status, e.message, code=e.code, field=e.field or "")
        except Exception as e:  # never let one request take the server down
            log.exception("internal error in %s", path)
            status, detail = "INTERNAL", f"{type(e).__name__}: {e}"
            self.close_connection = True
            self._fail(500, f"internal error: {type(e).__name__} (see the server log)")
        finally:
            if self._unread:
                self._drain(self._unread)
            if principal is not None:
                api.record(principal, target, path, status, detail)

    def _drain(self, length: int) -> None:
        """Read and drop an unread request body (bounded), so the client, which sends the
        whole body before reading, gets our error response instead of a connection reset."""
        left = min(length, 2 * self.server.api.store.max_upload_bytes + MULTIPART_OVERHEAD)
        with contextlib.suppress(OSError, ValueError):
            self.connection.settimeout(10)
            while left > 0:
                chunk = self.rfile.read(min(READ_CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class IngestHttpServer(ThreadingHTTPServer):
    """The HTTP ingestion API on ``host:port`` (port 0 = any free port), one thread per
    connection. ``start()`` serves in a background thread; ``stop()`` shuts down cleanly."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, ctx: PlatformContext, store: SampleStore, *, host: str | None = None,
                 port: int | None = None) -> None:
        host = ctx.settings.grpc_host if host is None else host
        port = ctx.settings.ingestion_port if port is None else port
        self.api = IngestionApi(ctx, store)
        self._thread: threading.Thread | None = None
        super().__init__((host, port), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        """Base URL (EI_INGESTION_ENDPOINT for Edge Impulse clients)."""
        return f"http://{self.server_address[0]}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="tf-ingest-http",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        log.info("EI-compatible ingestion on %s", self.url)

    def stop(self) -> None:
        """Stop accepting, finish the loop and close the socket (safe to call twice)."""
        if self._thread is None:
            return
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
        self._thread = None

