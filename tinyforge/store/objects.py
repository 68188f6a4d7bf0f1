"""Object store: immutable, write-complete-or-invisible blobs with a recorded sha256.

One interface (:class:`ObjectStore`), two backends:

* :class:`LocalObjectStore` — a directory (embedded mode, the default).
* :class:`MinioObjectStore` — any S3 API server through the ``minio`` SDK (cluster mode).

Keys look like ``projects/{project_id}/raw/{sample_id}`` (DESIGN.md §3): ``/``-separated
segments of ``A-Z a-z 0-9 . _ - = + @ ,``; no empty segment, no leading ``/``, no segment that
starts with ``.`` (which also rules out ``..``; both backends keep their bookkeeping under
names starting with ``.``). Objects are immutable unless ``overwrite=True`` is asked for.
"""

from __future__ import annotations

import abc
import base64
import contextlib
import errno
import hashlib
import io
import itertools
import json
import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from tinyforge.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    TinyForgeError,
)
from tinyforge.store.direct_io import DirectWriter, enable_direct

if TYPE_CHECKING:
    from tinyforge.config import Settings

DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_KEY_BYTES = 1024
MAX_SEGMENT_CHARS = 200
MAX_METADATA_BYTES = 2048  # S3's limit on user metadata (keys + values)
_SEGMENT_CHARS = "A-Za-z0-9._\\-=+@,"
_SEGMENT_RE = re.compile(f"[{_SEGMENT_CHARS}]+")
_META_KEY_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_RESERVED_META_KEYS = frozenset({"sha256"})
_READ_CHUNK = 1 << 20  # 1 MiB: how much a file-like source is asked for at a time
_OVERLAP_MIN = 256 * 1024  # chunks at least this big are hashed while being written
_WRITEBACK_STEP = 16 << 20  # large objects: start writeback of every 16 MiB written
_PREALLOCATE_MIN = 1 << 20  # put_stream reserves the announced size of objects this big
_DIRECT_MIN = 8 << 20  # put_stream writes announced objects this big with O_DIRECT
_TMP_COUNTER = itertools.count()  # temp file numbers (thread-safe: next() holds the GIL)
_PID = [os.getpid()]  # for temp file names, without a system call each time
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _PID.__setitem__(0, os.getpid()))
_O_DSYNC = getattr(os, "O_DSYNC", 0)


@dataclass(frozen=True)
class ObjectInfo:
    """What the store records about one object. ``size`` is in bytes; ``sha256`` is hex."""

    key: str
    size: int
    sha256: str
    content_type: str
    metadata: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- validation

_KEY_RULES = (
    f"'/'-separated segments of 1-{MAX_SEGMENT_CHARS} characters from "
    f"A-Z a-z 0-9 . _ - = + @ , not starting with '.', no empty segment, "
    f"no leading '/', at most {MAX_KEY_BYTES} bytes"
)


def validate_key(key: object) -> str:
    """Return ``key`` if it is a valid object key, else raise InvalidArgument(field="key")."""
    if not isinstance(key, str) or not key:
        raise InvalidArgument(f"object key must be a non-empty string ({_KEY_RULES})", field="key")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidArgument(
            f"object key is {len(key.encode())} bytes ({_KEY_RULES})", field="key"
        )
    for seg in key.split("/"):
        if not _valid_segment(seg):
            raise InvalidArgument(
                f"object key {key!r} has invalid segment {seg!r} ({_KEY_RULES})", field="key"
            )
    return key


def _valid_segment(seg: str) -> bool:
    return (
        0 < len(seg) <= MAX_SEGMENT_CHARS
        and not seg.startswith(".")
        and _SEGMENT_RE.fullmatch(seg) is not None
    )


def validate_prefix(prefix: object, *, require_folder: bool = False) -> str:
    """Validate a listing prefix: ``""`` or full segments followed by an optional partial one.

    With ``require_folder`` the prefix must be non-empty and end with ``/`` (used by
    :meth:`ObjectStore.delete_prefix` so ``projects/1`` can never also wipe ``projects/10``).
    """
    if not isinstance(prefix, str):
        raise InvalidArgument("prefix must be a string", field="prefix")
    if require_folder and not prefix.endswith("/"):
        raise InvalidArgument(
            f"prefix {prefix!r} must be non-empty and end with '/' (a whole folder)",
            field="prefix",
        )
    if not prefix:
        return prefix
    *folders, partial = prefix.split("/")
    bad = next((s for s in folders if not _valid_segment(s)), None)
    if bad is None and partial and not _valid_segment(partial):
        bad = partial
    if bad is not None or len(prefix.encode()) > MAX_KEY_BYTES:
        raise InvalidArgument(
            f"prefix {prefix!r} is not a valid key prefix (keys are {_KEY_RULES})", field="prefix"
        )
    return prefix


def validate_metadata(metadata: object) -> dict[str, str]:
    """Validate user metadata: lowercase keys ``[a-z0-9][a-z0-9_-]{0,63}`` (not ``sha256``),
    printable-ASCII values without surrounding spaces, at most 2048 bytes in all (S3's limit).
    Returns a plain copy."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidArgument("metadata must be a dict of str to str", field="metadata")
    total = 0
    for k, v in metadata.items():
        if not isinstance(k, str) or not _META_KEY_RE.fullmatch(k) or k in _RESERVED_META_KEYS:
            raise InvalidArgument(
                f"metadata key {k!r} is invalid: use 1-64 characters of a-z 0-9 _ - starting "
                f"with a letter or digit; 'sha256' is reserved",
                field="metadata",
            )
        if not isinstance(v, str) or any(not (0x20 <= ord(c) <= 0x7E) for c in v) or v != v.strip():
            raise InvalidArgument(
                f"metadata value for {k!r} must be printable ASCII without leading or trailing "
                f"spaces, got {v!r}",
                field="metadata",
            )
        total += len(k) + len(v)
    if total > MAX_METADATA_BYTES:
        raise InvalidArgument(
            f"metadata is {total} bytes, the limit is {MAX_METADATA_BYTES}", field="metadata"
        )
    return dict(metadata)


def validate_content_type(content_type: object) -> str:
    """A MIME type such as ``audio/wav`` (parameters allowed): printable ASCII, a ``/`` in the
    type part, no spaces before any ``;``, 3-255 characters."""
    ok = (
        isinstance(content_type, str)
        and 3 <= len(content_type) <= 255
        and all(0x20 <= ord(c) <= 0x7E for c in content_type)
        and "/" in content_type.split(";")[0]
        and " " not in content_type.split(";")[0]
    )
    if not ok:
        raise InvalidArgument(
            f"content_type {content_type!r} must be a MIME type like 'application/octet-stream' "
            "(3-255 printable ASCII characters)",
            field="content_type",
        )
    return content_type  # type: ignore[return-value]


def _check_max_bytes(max_bytes: int | None) -> None:
    if max_bytes is not None and (not isinstance(max_bytes, int) or max_bytes < 0):
        raise InvalidArgument(
            f"max_bytes must be None or >= 0, got {max_bytes!r}", field="max_bytes"
        )


def _check_chunk_size(chunk_size: int) -> None:
    if not isinstance(chunk_size, int) or not 1 <= chunk_size <= 1 << 30:
        raise InvalidArgument(
            f"chunk_size must be 1..{1 << 30} bytes, got {chunk_size!r}", field="chunk_size"
        )


# --------------------------------------------------------------------------- streaming helpers


class _MeteredSource:
    """Pulls bytes from a file-like object or an iterable of byte chunks, hashing (sha256) and
    counting them on the way, and raising ResourceExhausted as soon as more than ``max_bytes``
    arrive. ``read(n)`` makes it a file-like object for the S3 SDK."""

    def __init__(self, source: BinaryIO | Iterable[bytes], max_bytes: int | None, key: str,
                 *, hash_inline: bool = True):
        if isinstance(source, (bytes, bytearray, memoryview)):
            source = [bytes(source)]
        if hasattr(source, "read"):
            self._chunks: Iterator[Any] = iter(lambda: source.read(_READ_CHUNK), b"")  # type: ignore[union-attr]
        elif isinstance(source, Iterable) and not isinstance(source, str):
            self._chunks = iter(source)
        else:
            raise InvalidArgument(
                "source must be a binary file-like object or an iterable of bytes", field="source"
            )
        self._max = max_bytes
        self._key = key
        # hash_inline=False: the consumer calls hash() on every chunk itself (to overlap
        # hashing with writing on another core); push_back/read are then not supported.
        self._hash_inline = hash_inline
        self._sha = hashlib.sha256()
        self.size = 0
        self._pending = memoryview(b"")  # pulled (and hashed) but not handed out yet
        self._gen = self._pull()

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def _pull(self) -> Iterator[bytes | memoryview]:
        # The one place bytes enter: type-check, count, enforce the limit, hash.
        for chunk in self._chunks:
            if isinstance(chunk, str) or not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise InvalidArgument(
                    f"source yielded {type(chunk).__name__}, expected bytes", field="source"
                )
            if not chunk:
                continue
            self.size += len(chunk)
            if self._max is not None and self.size > self._max:
                raise ResourceExhausted(
                    f"object {self._key!r} is larger than the limit of {self._max} bytes",
                    field="size",
                )
            if self._hash_inline:
                self._sha.update(chunk)
            yield chunk

    def hash(self, chunk: bytes | memoryview) -> None:
        """Add a chunk to the sha256 (only with ``hash_inline=False``)."""
        self._sha.update(chunk)

    def chunks(self) -> Iterator[bytes | memoryview]:
        """Every remaining chunk, in order (pushed-back bytes first)."""
        if self._pending:
            rest, self._pending = self._pending, memoryview(b"")
            yield rest
        yield from self._gen

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (fewer only at the end); all that is left when ``n < 0``."""
        if n is None or n < 0:
            return b"".join(bytes(c) for c in self.chunks())
        out = bytearray()
        while len(out) < n:
            if not self._pending:
                nxt = next(self._gen, None)
                if nxt is None:
                    break
                self._pending = memoryview(nxt).cast("B")
            take = self._pending[: n - len(out)]
            out += take
            self._pending = self._pending[len(take) :]
        return bytes(out)

    def push_back(self, data: bytes) -> None:
        """Return already-read bytes to the front of the stream (they stay counted/hashed)."""
        if data:
            self._pending = memoryview(bytes(data) + bytes(self._pending)).cast("B")


class _Fd:
    """Closes a raw file descriptor (for ``contextlib.closing``)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        os.close(self.fd)


def _mkdir_new(path: str) -> bool:
    """Create directory ``path`` (and its parents); True if this call created ``path`` itself,
    False if it existed already."""
    try:
        os.mkdir(path)
        return True
    except FileExistsError:
        return False
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            os.mkdir(path)
            return True
        except FileExistsError:
            return False


def _immutable(chunk: bytes | bytearray | memoryview) -> bool:
    """Whether ``chunk`` cannot change under us (bytes, or a view of bytes)."""
    return isinstance(chunk, bytes) or (isinstance(chunk, memoryview)
                                        and isinstance(chunk.obj, bytes))


def _write_all(fd: int, chunk: bytes | bytearray | memoryview) -> None:
    """os.write until every byte of ``chunk`` is written (no buffered-file layer)."""
    view = memoryview(chunk)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _preallocate(fd: int, key: str, size_hint: int | None, max_bytes: int | None) -> int:
    """Reserve ``size_hint`` bytes of disk for the file ``fd`` (large objects only, and never
    more than ``max_bytes``); returns the bytes reserved (the file's size is then that).
    ResourceExhausted if the disk cannot hold them; file systems without preallocation
    just skip it."""
    if (not isinstance(size_hint, int) or size_hint < _PREALLOCATE_MIN
            or (max_bytes is not None and size_hint > max_bytes)):
        return 0
    try:
        os.posix_fallocate(fd, 0, size_hint)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ResourceExhausted(
                f"not enough disk space to store {size_hint} bytes for object {key!r}: "
                f"{exc.strerror}", field="size_bytes") from None
        return 0  # EOPNOTSUPP, EINVAL...: write without reserving
    return size_hint


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing ``length`` bytes at ``offset`` to disk now, without
    waiting (POSIX_FADV_DONTNEED starts asynchronous writeback of the dirty range), so the
    final fsync of a large object finds little left to write: the disk works while the rest
    of the stream is still arriving. Best effort (durability still comes from the fsync)."""
    with contextlib.suppress(OSError, AttributeError):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


class _PageCacheWriter:
    """Appends chunks to ``fd`` through the page cache, with the interface of
    :class:`~tinyforge.store.direct_io.DirectWriter`; with ``writeback``, the disk starts
    writing every _WRITEBACK_STEP bytes (:func:`_start_writeback`)."""

    def __init__(self, fd: int, *, writeback: bool) -> None:
        self.fd = fd
        self._writeback = writeback
        self._written = self._flushed = 0

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        _write_all(self.fd, chunk)
        self._written += len(chunk)
        if self._writeback and self._written - self._flushed >= _WRITEBACK_STEP:
            _start_writeback(self.fd, self._flushed, self._written - self._flushed)
            self._flushed = self._written

    def finish(self) -> int:
        """The total bytes written."""
        return self._written

    def close(self) -> None:
        pass


def _verified(info: ObjectInfo, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Yield ``chunks`` unchanged, then check size and sha256 against ``info``."""
    sha = hashlib.sha256()
    size = 0
    for c in chunks:
        sha.update(c)
        size += len(c)
        yield c
    if size != info.size or sha.hexdigest() != info.sha256:
        raise TinyForgeError(
            f"object {info.key!r} is corrupt: read {size} bytes with sha256 {sha.hexdigest()}, "
            f"recorded {info.size} bytes with sha256 {info.sha256}"
        )


# --------------------------------------------------------------------------- interface


class ObjectStore(abc.ABC):
    """Immutable blobs addressed by key. A write is visible only once complete; every object
    records its size, sha256, content type and user metadata."""

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: dict[str, str] | None = None,
        overwrite: bool = False,
    ) -> ObjectInfo:
        """Store ``data`` under ``key``. AlreadyExists if the key exists and not ``overwrite``."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidArgument(f"data must be bytes, got {type(data).__name__}", field="data")
        return self.put_stream(
            key,
            io.BytesIO(data),
            content_type=content_type,
            metadata=metadata,
            overwrite=overwrite,
        )

    @abc.abstractmethod
    def put_stream(
        self,
        key: str,
        source: BinaryIO | Iterable[bytes],
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: dict[str, str] | None = None,
        max_bytes: int | None = None,
        overwrite: bool = False,
        size_hint: int | None = None,
    ) -> ObjectInfo:
        """Stream ``source`` (a binary file or an iterable of byte chunks) into ``key`` in
        constant memory, computing sha256 on the way. Nothing is visible until the whole
        stream is stored; if the source raises, or yields more than ``max_bytes`` bytes
        (ResourceExhausted), nothing is left behind and the exception propagates.

        ``size_hint``: the size the caller expects (an upload's announced size), if known.
        The local store reserves that much disk space before the first byte (a full disk
        fails at once with ResourceExhausted, and the file is allocated in one piece rather
        than block by block); the object is always exactly what ``source`` yields."""

    def get_bytes(self, key: str) -> bytes:
        """The whole object in memory (checked against its sha256). NotFound if missing."""
        info, chunks = self._open(validate_key(key), _READ_CHUNK)
        return b"".join(_verified(info, chunks))

    def iter_chunks(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The object as chunks of at most ``chunk_size`` bytes; NotFound is raised by this
        call (not on first iteration). The sha256 is checked after the last chunk."""
        _check_chunk_size(chunk_size)
        info, chunks = self._open(validate_key(key), chunk_size)
        return _verified(info, chunks)

    def download_to(self, key: str, path: Path) -> ObjectInfo:
        """Write the object to ``path`` (temp file + rename: ``path`` is never half-written),
        verifying its sha256. Returns its info."""
        path = Path(path)
        info, chunks = self._open(validate_key(key), _READ_CHUNK)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                for c in _verified(info, chunks):
                    f.write(c)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return info

    @abc.abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Info of the object. NotFound if missing."""

    def exists(self, key: str) -> bool:
        """Whether a complete object is stored under ``key``."""
        try:
            self.stat(key)
        except NotFound:
            return False
        return True

    @abc.abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix`` (plain string prefix, as in S3: pass a
        trailing ``/`` to stay inside a folder), sorted by key."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error."""

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under the folder ``prefix`` (must end with ``/``); returns how
        many were removed."""
        prefix = validate_prefix(prefix, require_folder=True)
        n = 0
        for info in self.list(prefix):
            self.delete(info.key)
            n += 1
        return n

    @abc.abstractmethod
    def _open(self, key: str, chunk_size: int) -> tuple[ObjectInfo, Iterator[bytes]]:
        """Info and a chunk iterator of one consistent version of the object (NotFound)."""


# --------------------------------------------------------------------------- local directory


class LocalObjectStore(ObjectStore):
    """Objects in a directory tree.

    Layout: key ``a/b/c`` is the directory ``root/a/b/c/`` holding ``.object.json`` (the
    sidecar: size, sha256, content type, metadata, blob name) and ``.blob-<uuid>`` (the bytes).
    Both are written to ``root/.tmp`` first and fsync'ed; the blob is renamed into place, then
    the sidecar is hard-linked in (``os.link`` fails if one exists, so of two concurrent
    writers exactly one wins and the other gets AlreadyExists). The sidecar is the commit
    point: an object is visible only when its sidecar exists, and the sidecar is only ever
    linked after its blob is complete. A crash between the two steps leaves an unreferenced
    blob, never a visible half object.

    Small objects (``put_bytes`` of at most ``inline_max`` bytes, 64 KiB by default) are kept
    *inside* their sidecar (``inline``, base64) with no blob file: one file to write, so one
    data fsync instead of two — most samples are a few hundred bytes.

    Durability (``fsync=True``, the default): when a put returns, the object survives a crash
    or power loss: every file's bytes are fsync'ed before the file is linked in (sidecars are
    written with ``O_DSYNC``: the same guarantee in one system call; so a visible sidecar
    never points at bytes that were not on disk), and the key directory is
    fsync'ed after the link (so the link itself is on disk). That is 2 fsyncs for an inline
    object (sidecar, directory) and 3 for a blob object (blob, sidecar, directory). Newly
    created parent directories are not fsync'ed one by one: on journaling file systems
    (ext4, xfs) the directory fsync commits the journal transaction holding their creation.
    ``fsync=False`` (tests) keeps atomic visibility but not durability across power loss.
    Large streamed objects reserve their announced size first (``size_hint``:
    ``posix_fallocate``), so a full disk is reported before the upload instead of part-way
    through it. Those announced at 8 MiB or more are written with ``O_DIRECT``
    (:class:`~tinyforge.store.direct_io.DirectWriter`: no copy into the page cache, and
    nothing left dirty for the final fsync); other large ones start their writeback every
    16 MiB (``_start_writeback``), so the final fsync does not have to write the whole
    object after the last byte arrives.
    """

    _SIDECAR = ".object.json"
    _BLOB = ".blob-"
    _TMP = ".tmp"
    _STALE_TMP_S = 24 * 3600

    def __init__(self, root: Path, *, fsync: bool = True, inline_max: int = 64 * 1024) -> None:
        self.root = Path(root)
        self._tmp = self.root / self._TMP
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._root_s = str(self.root)
        self._tmp_s = str(self._tmp)
        self._fsync_enabled = fsync
        self.inline_max = inline_max
        self._sweep_stale_tmp()

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"

    # -- paths and fs helpers

    def _dir(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def _tmp_name(self, prefix: str, flags: int = 0) -> tuple[int, str]:
        # pid + process-wide counter instead of mkstemp or uuid4 (a getrandom syscall
        # each): no pathlib, no randomness; O_EXCL still guards against a leftover of a
        # dead process that had the same pid (then the next number is tried).
        while True:
            path = f"{self._tmp_s}/{prefix}{_PID[0]}-{next(_TMP_COUNTER)}"
            try:
                return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | flags, 0o600), path
            except FileExistsError:
                continue

    def _fsync(self, fd: int) -> None:
        if self._fsync_enabled:
            os.fsync(fd)

    def _fsync_dir(self, path: Path) -> None:
        if not self._fsync_enabled:
            return
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _sweep_stale_tmp(self) -> None:
        # Temp files of writers that crashed; live writers touch theirs continuously.
        cutoff = time.time() - self._STALE_TMP_S
        with os.scandir(self._tmp) as it:
            for e in it:
                with contextlib.suppress(OSError):
                    if e.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(e.path)

    def _read_sidecar(self, kdir: Path) -> dict[str, Any] | None:
        try:
            with open(kdir / self._SIDECAR, "rb") as f:
                return json.load(f)
        except (FileNotFoundError, NotADirectoryError):
            return None

    @staticmethod
    def _info(doc: dict[str, Any]) -> ObjectInfo:
        return ObjectInfo(
            key=doc["key"],
            size=int(doc["size"]),
            sha256=doc["sha256"],
            content_type=doc["content_type"],
            metadata=dict(doc.get("metadata", {})),
        )

    def _move_into(self, src: str, kdir: Path, name: str) -> None:
        # A concurrent delete may prune the (empty) key directory between mkdir and rename;
        # retry a few times rather than fail.
        for _ in range(20):
            try:
                kdir.mkdir(parents=True, exist_ok=True)
                os.rename(src, kdir / name)
                return
            except FileNotFoundError:
                if not os.path.exists(src):
                    raise
        raise TinyForgeError(f"could not create directory {kdir} for the object")

    def _prune(self, kdir: Path) -> None:
        # Remove now-empty key directories up to (not including) the root.
        d = kdir
        while d != self.root and self.root in d.parents:
            try:
                os.rmdir(d)
            except OSError:
                return
            d = d.parent

    # -- writes

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: dict[str, str] | None = None,
        overwrite: bool = False,
    ) -> ObjectInfo:
        """Store ``data`` under ``key``; objects up to ``inline_max`` bytes live inside their
        sidecar (one file, one data fsync). AlreadyExists if the key exists and not
        ``overwrite``."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidArgument(f"data must be bytes, got {type(data).__name__}", field="data")
        if len(data) > self.inline_max:
            return super().put_bytes(
                key, data, content_type=content_type, metadata=metadata, overwrite=overwrite
            )
        key = validate_key(key)
        content_type = validate_content_type(content_type)
        meta = validate_metadata(metadata)
        kdir = self._dir(key)
        if not overwrite and (kdir / self._SIDECAR).exists():
            raise AlreadyExists(
                f"object {key!r} already exists (objects are immutable)", field="key"
            )
        data = bytes(data)
        info = ObjectInfo(key, len(data), hashlib.sha256(data).hexdigest(), content_type, meta)
        try:
            self._commit(kdir, info, None, overwrite, inline=data)
        except BaseException:
            self._prune(kdir)
            raise
        return info

    def _writer(self, fd: int, size_hint: int | None) -> DirectWriter | _PageCacheWriter:
        # Large announced objects skip the page cache (durable stores only: a store without
        # fsync leaves writeback to the kernel anyway).
        if (self._fsync_enabled and isinstance(size_hint, int) and size_hint >= _DIRECT_MIN
                and enable_direct(fd)):
            return DirectWriter(fd)
        return _PageCacheWriter(fd, writeback=self._fsync_enabled)

    def put_stream(
        self,
        key: str,
        source: BinaryIO | Iterable[bytes],
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: dict[str, str] | None = None,
        max_bytes: int | None = None,
        overwrite: bool = False,
        size_hint: int | None = None,
    ) -> ObjectInfo:
        key = validate_key(key)
        content_type = validate_content_type(content_type)
        meta = validate_metadata(metadata)
        _check_max_bytes(max_bytes)
        kdir = self._dir(key)
        if not overwrite and (kdir / self._SIDECAR).exists():
            raise AlreadyExists(
                f"object {key!r} already exists (objects are immutable)", field="key"
            )
        src = _MeteredSource(source, max_bytes, key, hash_inline=False)
        fd, tmp = self._tmp_name("data-")
        tmp_path: str | None = tmp
        hasher: ThreadPoolExecutor | None = None
        hashing: list[Future[None]] = []
        try:
            with contextlib.closing(_Fd(fd)):
                reserved = _preallocate(fd, key, size_hint, max_bytes)
                writer = self._writer(fd, size_hint)
                with contextlib.closing(writer):  # before the fd closes: a write may be in flight
                    for chunk in src.chunks():
                        if len(chunk) >= _OVERLAP_MIN:
                            # Hash on another core while this one writes and pulls the next
                            # chunk: hashlib and file writes release the GIL for large
                            # buffers. The one hashing thread keeps the chunk order. An
                            # immutable chunk may still be hashing when the next one is
                            # pulled (at most 2 in flight); a mutable one (a reused buffer)
                            # is hashed before that.
                            if hasher is None:
                                hasher = ThreadPoolExecutor(1, thread_name_prefix="tf-sha256")
                            hashing.append(hasher.submit(src.hash, chunk))
                            writer.write(chunk)
                            while hashing and (len(hashing) > 1 or not _immutable(chunk)):
                                hashing.pop(0).result()
                        else:
                            for done in hashing:
                                done.result()
                            hashing.clear()
                            src.hash(chunk)
                            writer.write(chunk)
                    for done in hashing:
                        done.result()
                    written = writer.finish()
                if written < reserved:  # fewer bytes than announced: drop the reserved tail
                    os.ftruncate(fd, written)
                self._fsync(fd)
            info = ObjectInfo(key, src.size, src.sha256, content_type, meta)
            blob = f"{self._BLOB}{uuid.uuid4().hex}"
            self._move_into(tmp, kdir, blob)
            tmp_path = None
            try:
                self._commit(kdir, info, blob, overwrite)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(kdir / blob)
                self._prune(kdir)
                raise
        finally:
            if hasher is not None:
                hasher.shutdown(wait=False)
            if tmp_path is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp_path)
        return info

    def _commit(
        self,
        kdir: Path,
        info: ObjectInfo,
        blob: str | None,
        overwrite: bool,
        *,
        inline: bytes | None = None,
    ) -> None:
        doc: dict[str, Any] = {
            "format": 1,
            "key": info.key,
            "size": info.size,
            "sha256": info.sha256,
            "content_type": info.content_type,
            "metadata": info.metadata,
            "blob": blob,
            "created_at": time.time(),
        }
        if inline is not None:
            doc["inline"] = base64.b64encode(inline).decode("ascii")
        payload = json.dumps(doc, sort_keys=True).encode()
        # O_DSYNC: the one write returns once the bytes (and the size needed to read them)
        # are on disk, like write + fdatasync in one system call.
        dsync = _O_DSYNC if self._fsync_enabled else 0
        fd, mtmp = self._tmp_name("meta-", dsync)
        moved = False
        try:
            try:
                _write_all(fd, payload)
                if not dsync:
                    self._fsync(fd)
            finally:
                os.close(fd)
            target = kdir / self._SIDECAR
            # A key directory this call creates holds nothing yet, so there is no old
            # version to read (a new sample's objects, the common case: mkdir + rename).
            fresh = blob is None and _mkdir_new(str(kdir))
            for attempt in range(20):
                try:
                    if overwrite:
                        old = None if fresh else self._read_sidecar(kdir)
                        os.replace(mtmp, target)
                        moved = True
                        # Blob names are unique per write: the old one is referenced by nobody.
                        old_blob = old.get("blob") if old is not None else None
                        if old_blob and old_blob != blob:
                            with contextlib.suppress(FileNotFoundError):
                                os.unlink(kdir / old_blob)
                    else:
                        try:
                            os.link(mtmp, target)
                        except FileExistsError:
                            raise AlreadyExists(
                                f"object {info.key!r} already exists (objects are immutable)",
                                field="key",
                            ) from None
                    break
                except FileNotFoundError:
                    # Inline objects create their key directory here; a concurrent delete may
                    # prune it between mkdir and link: create it again.
                    if blob is not None or attempt == 19:
                        raise
                    fresh = False
                    kdir.mkdir(parents=True, exist_ok=True)
            self._fsync_dir(kdir)
        finally:
            if not moved:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(mtmp)

    def delete(self, key: str) -> None:
        key = validate_key(key)
        kdir = self._dir(key)
        # Grab the sidecar atomically: whichever version we take, we delete its blob.
        grabbed = self._tmp / f"del-{uuid.uuid4().hex}"
        try:
            os.rename(kdir / self._SIDECAR, grabbed)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            with open(grabbed, "rb") as f:
                doc = json.load(f)
            if doc.get("blob"):  # inline objects have no blob file
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(kdir / doc["blob"])
        finally:
            os.unlink(grabbed)
        self._prune(kdir)

    # -- reads

    def stat(self, key: str) -> ObjectInfo:
        key = validate_key(key)
        doc = self._read_sidecar(self._dir(key))
        if doc is None:
            raise NotFound(f"object {key!r} not found", field="key")
        return self._info(doc)

    def _open(self, key: str, chunk_size: int) -> tuple[ObjectInfo, Iterator[bytes]]:
        kdir = self._dir(key)
        for _ in range(10):
            doc = self._read_sidecar(kdir)
            if doc is None:
                break
            if not doc.get("blob"):  # inline object: the bytes are in the sidecar
                data = base64.b64decode(doc.get("inline", ""))
                chunks = (data[i : i + chunk_size] for i in range(0, len(data), chunk_size))
                return self._info(doc), chunks
            try:
                f = open(kdir / doc["blob"], "rb")  # noqa: SIM115 - closed by the generator
            except FileNotFoundError:
                continue  # overwritten or deleted between the two reads: look again
            return self._info(doc), _file_chunks(f, chunk_size)
        raise NotFound(f"object {key!r} not found", field="key")

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        prefix = validate_prefix(prefix)
        folder, _, partial = prefix.rpartition("/")
        base = self._dir(folder) if folder else self.root
        keys: list[str] = []
        try:
            top = list(os.scandir(base))
        except (FileNotFoundError, NotADirectoryError):
            top = []
        for e in top:
            if (
                not e.name.startswith(".")
                and e.name.startswith(partial)
                and e.is_dir(follow_symlinks=False)
            ):
                self._walk(e.path, f"{folder}/{e.name}" if folder else e.name, keys)
        keys.sort()
        return self._infos(keys)

    def _walk(self, path: str, key: str, out: list[str]) -> None:
        with os.scandir(path) as it:
            for e in it:
                if e.name == self._SIDECAR:
                    out.append(key)
                elif not e.name.startswith(".") and e.is_dir(follow_symlinks=False):
                    self._walk(e.path, f"{key}/{e.name}", out)

    def _infos(self, keys: list[str]) -> Iterator[ObjectInfo]:
        for k in keys:
            doc = self._read_sidecar(self._dir(k))
            if doc is not None:  # skip objects deleted while listing
                yield self._info(doc)


def _file_chunks(f: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    with f:
        while chunk := f.read(chunk_size):
            yield chunk


# --------------------------------------------------------------------------- MinIO / S3


class MinioObjectStore(ObjectStore):
    """Objects in one bucket of an S3 API server (MinIO in the cluster), via the ``minio`` SDK.

    * The bucket is created on first write.
    * sha256 is stored as user metadata (``x-amz-meta-sha256``), with the content type and
      the caller's metadata (``x-amz-meta-<key>``).
    * An object of at most ``part_size`` bytes is one PutObject. A longer stream of unknown
      length is uploaded as a multipart upload (parts of ``part_size`` >= 5 MiB, one at a time,
      so memory stays at about two parts) to a hidden staging key ``.staging/<uuid>``: S3 fixes
      an object's metadata when the upload *starts*, before its sha256 is known. Once the
      upload completes, a server-side CopyObject publishes it under the real key with its
      metadata (atomic: the key shows nothing or the whole object) and the staging object is
      removed. If the source raises or exceeds ``max_bytes``, the multipart upload is
      aborted, so nothing is ever visible.
    * Immutability is checked with a HEAD before the upload (and again before publishing).
      Honest caveat: that is check-then-act, so two writers racing on the same new key can
      both pass the check and the last one wins. Keys are minted from database ids, so
      this does not happen in TinyForge's own flows; the local backend has no such window.
    """

    STAGING_PREFIX = ".staging/"
    MIN_PART_SIZE = 5 * 1024 * 1024

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str = "tinyforge",
        *,
        secure: bool = False,
        region: str = "us-east-1",
        part_size: int = 8 * 1024 * 1024,
    ) -> None:
        from minio import Minio  # imported here so the local backend does not need it loaded

        if not endpoint:
            raise InvalidArgument("S3 endpoint (host:port) is empty", field="s3_endpoint")
        if not isinstance(part_size, int) or not self.MIN_PART_SIZE <= part_size <= 5 << 30:
            raise InvalidArgument(
                f"part_size must be {self.MIN_PART_SIZE}..{5 << 30} bytes, got {part_size!r}",
                field="part_size",
            )
        try:
            self._client = Minio(
                endpoint,
                access_key=access_key,
                secret_key=secret_key,
                secure=secure,
                region=region,
            )
        except ValueError as e:
            raise InvalidArgument(
                f"S3 endpoint {endpoint!r} is invalid ({e}); use host:port without a scheme",
                field="s3_endpoint",
            ) from e
        self.endpoint = endpoint
        self.bucket = bucket
        self.part_size = part_size
        self._bucket_ready = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MinioObjectStore({self.endpoint!r}, bucket={self.bucket!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> MinioObjectStore:
        """Build from ``TINYFORGE_S3_*`` settings."""
        return cls(
            settings.s3_endpoint,
            settings.s3_access_key,
            settings.s3_secret_key,
            settings.s3_bucket,
            secure=settings.s3_secure,
            region=settings.s3_region,
        )

    # -- helpers

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """Translate SDK and transport errors into tinyforge.errors."""
        from minio.error import MinioException, S3Error
        from urllib3.exceptions import HTTPError

        try:
            yield
        except S3Error as e:
            if e.code in ("NoSuchKey", "NoSuchBucket", "ResourceNotFound", "NoSuchObject"):
                raise NotFound(f"object {key!r} not found", field="key") from e
            if e.code == "PreconditionFailed":
                raise AlreadyExists(f"object {key!r} already exists", field="key") from e
            if e.code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise PermissionDenied(
                    f"S3 server {self.endpoint} refused access to bucket {self.bucket!r}: {e.code}"
                ) from e
            raise TinyForgeError(f"S3 error on object {key!r}: {e.code}: {e.message}") from e
        except (MinioException, HTTPError) as e:
            raise TinyForgeError(f"S3 server {self.endpoint} failed on {key!r}: {e}") from e

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        from minio.error import S3Error

        with self._lock:
            if self._bucket_ready:
                return
            with self._errors(self.bucket):
                try:
                    if not self._client.bucket_exists(self.bucket):
                        self._client.make_bucket(self.bucket)
                except S3Error as e:
                    if e.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
                except ValueError as e:
                    raise InvalidArgument(
                        f"S3 bucket name {self.bucket!r} is invalid: {e}", field="s3_bucket"
                    ) from e
            self._bucket_ready = True

    def _check_absent(self, key: str) -> None:
        if self.exists(key):
            raise AlreadyExists(
                f"object {key!r} already exists (objects are immutable)", field="key"
            )

    @staticmethod
    def _headers(info: ObjectInfo) -> dict[str, str]:
        h = {"x-amz-meta-sha256": info.sha256}
        h.update({f"x-amz-meta-{k}": v for k, v in info.metadata.items()})
        return h

    def _info_from_headers(self, key: str, headers: Any, size: int) -> ObjectInfo:
        meta: dict[str, str] = {}
        sha = ""
        for name, value in headers.items():
            lname = name.lower()
            if lname.startswith("x-amz-meta-"):
                k = lname[len("x-amz-meta-") :]
                if k == "sha256":
                    sha = value
                else:
                    meta[k] = value
        if not sha:
            raise TinyForgeError(
                f"object {key!r} in bucket {self.bucket!r} has no sha256 metadata "
                "(not written by TinyForge?)"
            )
        return ObjectInfo(
            key=key,
            size=size,
            sha256=sha,
            content_type=headers.get("content-type") or DEFAULT_CONTENT_TYPE,
            metadata=meta,
        )

    # -- writes

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: dict[str, str] | None = None,
        overwrite: bool = False,
    ) -> ObjectInfo:
        key = validate_key(key)
        content_type = validate_content_type(content_type)
        meta = validate_metadata(metadata)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidArgument(f"data must be bytes, got {type(data).__name__}", field="data")
        data = bytes(data)
        info = ObjectInfo(key, len(data), hashlib.sha256(data).hexdigest(), content_type, meta)
        self._ensure_bucket()
        if not overwrite:
            self._check_absent(key)
        # The hash is known up front, so even a multipart upload goes straight to the key.
        with self._errors(key):
            self._client.put_object(
                self.bucket,
                key,
                io.BytesIO(data),
                len(data),
                content_type=content_type,
                metadata=self._headers(info),
                part_size=self.part_size,
                num_parallel_uploads=1,
            )
        return info

    def put_stream(
        self,
        key: str,
        source: BinaryIO | Iterable[bytes],
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: dict[str, str] | None = None,
        max_bytes: int | None = None,
        overwrite: bool = False,
        size_hint: int | None = None,
    ) -> ObjectInfo:
        key = validate_key(key)
        content_type = validate_content_type(content_type)
        meta = validate_metadata(metadata)
        _check_max_bytes(max_bytes)
        src = _MeteredSource(source, max_bytes, key)
        self._ensure_bucket()
        if not overwrite:
            self._check_absent(key)
        head = src.read(self.part_size + 1)
        if len(head) <= self.part_size:  # the whole object fits in one PutObject
            info = ObjectInfo(key, len(head), src.sha256, content_type, meta)
            with self._errors(key):
                self._client.put_object(
                    self.bucket,
                    key,
                    io.BytesIO(head),
                    len(head),
                    content_type=content_type,
                    metadata=self._headers(info),
                )
            return info
        src.push_back(head)
        del head
        staging = f"{self.STAGING_PREFIX}{uuid.uuid4().hex}"
        try:
            with self._errors(key):
                # length=-1: multipart with parts of part_size; the SDK aborts the upload if
                # reading the source raises (including our ResourceExhausted).
                self._client.put_object(
                    self.bucket,
                    staging,
                    src,
                    -1,
                    content_type=content_type,
                    part_size=self.part_size,
                    num_parallel_uploads=1,
                )
            info = ObjectInfo(key, src.size, src.sha256, content_type, meta)
            if not overwrite:
                self._check_absent(key)
            self._publish(staging, info)
        finally:
            with contextlib.suppress(Exception):
                self._client.remove_object(self.bucket, staging)
        return info

    def _publish(self, staging: str, info: ObjectInfo) -> None:
        from minio.commonconfig import REPLACE, CopySource

        with self._errors(info.key):
            self._client.copy_object(
                self.bucket,
                info.key,
                CopySource(self.bucket, staging),
                metadata={"Content-Type": info.content_type, **self._headers(info)},
                metadata_directive=REPLACE,
            )

    def delete(self, key: str) -> None:
        key = validate_key(key)
        with self._errors(key):
            try:
                self._client.remove_object(self.bucket, key)
            except Exception as e:  # a missing bucket means nothing to delete
                if getattr(e, "code", None) != "NoSuchBucket":
                    raise

    def delete_prefix(self, prefix: str) -> int:
        from minio.deleteobjects import DeleteObject

        prefix = validate_prefix(prefix, require_folder=True)
        names = list(self._names(prefix))
        with self._errors(prefix):
            for start in range(0, len(names), 1000):  # DeleteObjects takes <= 1000 keys
                batch = [DeleteObject(n) for n in names[start : start + 1000]]
                errors = list(self._client.remove_objects(self.bucket, batch))
                if errors:
                    raise TinyForgeError(
                        f"could not delete {len(errors)} objects under {prefix!r}: {errors[0]}"
                    )
        return len(names)

    # -- reads

    def stat(self, key: str) -> ObjectInfo:
        key = validate_key(key)
        with self._errors(key):
            st = self._client.stat_object(self.bucket, key)
        return self._info_from_headers(key, st.metadata, int(st.size or 0))

    def _open(self, key: str, chunk_size: int) -> tuple[ObjectInfo, Iterator[bytes]]:
        with self._errors(key):
            resp = self._client.get_object(self.bucket, key)
        try:
            info = self._info_from_headers(key, resp.headers, int(resp.headers["content-length"]))
        except BaseException:
            resp.close()
            resp.release_conn()
            raise
        return info, self._stream(resp, key, chunk_size)

    def _stream(self, resp: Any, key: str, chunk_size: int) -> Iterator[bytes]:
        try:
            with self._errors(key):
                yield from resp.stream(chunk_size)
        finally:
            resp.close()
            resp.release_conn()

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        prefix = validate_prefix(prefix)
        return self._list(prefix)

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        # Listings carry no user metadata, so each object costs one HEAD for its sha256.
        for name in self._names(prefix):
            with contextlib.suppress(NotFound):  # deleted while listing
                yield self.stat(name)

    def _names(self, prefix: str, *, internal: bool = False) -> Iterator[str]:
        """Keys under ``prefix`` in S3's order (UTF-8 bytes, i.e. sorted); empty if the
        bucket does not exist. Internal names (``.staging/``) only with ``internal``."""
        from minio.error import S3Error

        try:
            with self._errors(prefix):
                names = [
                    o.object_name
                    for o in self._client.list_objects(self.bucket, prefix=prefix, recursive=True)
                ]
        except NotFound as e:
            if isinstance(e.__cause__, S3Error) and e.__cause__.code == "NoSuchBucket":
                return
            raise
        for name in names:
            if name and (internal or not name.startswith(".")):
                yield name

    def sweep_staging(self, older_than_s: float = 24 * 3600) -> int:
        """Remove staging objects left by writers that crashed between completing a
        multipart upload and publishing it; returns how many. (Incomplete multipart uploads
        of crashed writers are best expired by a bucket lifecycle rule,
        AbortIncompleteMultipartUpload.)"""
        from datetime import UTC, datetime, timedelta

        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
        n = 0
        with contextlib.suppress(NotFound), self._errors(self.STAGING_PREFIX):  # no bucket: 0
            for o in self._client.list_objects(self.bucket, prefix=self.STAGING_PREFIX):
                if o.last_modified is not None and o.last_modified < cutoff:
                    self._client.remove_object(self.bucket, o.object_name)
                    n += 1
        return n


# --------------------------------------------------------------------------- factory


def make_object_store(settings: Settings) -> ObjectStore:
    """The object store ``settings.object_store`` names: ``local`` (``settings.objects_dir``)
    or ``minio`` (``settings.s3_*``)."""
    kind = settings.object_store
    if kind == "local":
        return LocalObjectStore(settings.objects_dir)
    if kind == "minio":
        return MinioObjectStore.from_settings(settings)
    raise InvalidArgument(
        f"object_store must be 'local' or 'minio', got {kind!r}", field="object_store"
    )
