"""Samples of a project: ingest (validate + parse + store, all-or-nothing), query and edit.

Ingesting one sample:

1. the options (category, label, file name, metadata, boxes, structured labels) are checked;
2. the upload is parsed into its canonical form (:func:`tinyforge.data.formats.parse_upload`);
3. a ``pending`` row reserves the sample id (pending rows are invisible to every query);
4. the original bytes go to ``projects/{project_id}/raw/{sample_id}/original`` and the
   canonical ``.npz`` (CSV time series) to ``.../canonical.npz`` — WAV and Edge Impulse
   JSON/CBOR envelopes are their own canonical object (``canonical_key == raw_key``:
   lossless containers of the series that ``TimeSeries.from_bytes`` parses again; a copy
   would cost a second object per sample on the ingest path, or twice a WAV as float32);
5. one transaction marks the row ``ready``, checks duplicates (when asked) and counts the
   sample in the device registry.

An upload held in memory (:meth:`SampleStore.ingest_bytes`, every unary gRPC and HTTP
upload) runs steps 3-5 as one operation of the process's group committer (``_IngestOp``):
in one transaction the reserve, the objects (written durably, those of a batch of uploads
in parallel) and the ready row, so the uploader waits once. If anything fails the
transaction is rolled back and the writer thread itself deletes the objects it wrote before
it hands out another id. A process killed in the middle leaves at most objects under an id
that no committed row holds: the id is given out again (SQLite) and its objects overwritten,
or, once later ids are committed, the objects are removed by
:func:`cleanup_stale_uploads` (run at service start and periodically).

A streamed upload (:func:`ingest_stream`) takes the steps one by one: the bytes go straight
into the object store with the size limit enforced on the way (nothing is visible until
complete), then are parsed; a streamed WAV is validated from its header and size (plus a
NaN/Inf scan for float WAVs) without decoding it, in constant memory. Any error after step 3
deletes the objects and the row; a process killed in the middle leaves a pending row and
maybe objects, removed by :func:`cleanup_stale_uploads`.

The database writes of an upload (reserve the id; pending -> ready + duplicate check +
device counter; the caller's audit row) go through the process's group committer
(:class:`tinyforge.store.db.GroupCommitter`): one writer thread commits the writes of all
concurrent uploads together — reserves as one multi-row INSERT, finishes as one multi-row
UPDATE plus one counter update per device — and each upload returns only once its own
writes are committed. A duplicate or a vanished row in a batch makes the batch re-run one
upload at a time, so exactly the culprit fails. On SQLite those statements run straight on
the driver cursor (:func:`tinyforge.store.db.driver_statement`). The project's settings
(HMAC key, unsigned data allowed) come from :mod:`tinyforge.auth.cache`: a change made in
this process applies to the very next upload, one made by another process within seconds.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from tinyforge.accounts.projects import get_project
from tinyforge.accounts.validation import check_id
from tinyforge.auth import cache
from tinyforge.data.canonical import (
    ORIGINAL_IS_CANONICAL,
    ParsedSample,
    SampleKind,
    SourceFormat,
    TimeSeries,
    content_sha256,
)
from tinyforge.data.formats import parse_upload
from tinyforge.data.labels import (
    BoundingBox,
    Category,
    LabelRange,
    check_boxes_in_image,
    parse_bounding_boxes,
    resolve_structured_labels,
    validate_category,
    validate_filename,
    validate_label,
    validate_metadata,
)
from tinyforge.data.splits import DEFAULT_TEST_FRACTION, split_for_hash
from tinyforge.data.wav import WavHeadTooShort, check_float_samples, inspect_wav, is_wav
from tinyforge.errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted
from tinyforge.store.db import BatchOp, Database, driver_statement, insert_rows
from tinyforge.store.models import Device, Project, Sample, detached_row
from tinyforge.store.objects import ObjectStore

log = logging.getLogger(__name__)

PENDING, READY = "pending", "ready"
STORED_CATEGORIES = ("training", "testing", "anomaly")
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
STALE_PENDING_S = 3600.0  # a pending row older than this belongs to a dead upload
INGEST_IO_THREADS = 8  # parallel object writes of one group-committed batch of uploads

_SAMPLES = Sample.__table__
_RESERVE_STMT = insert(_SAMPLES)
_FINISH_STMT: Any = None


def _finish_statement() -> Any:
    """pending -> ready UPDATE of every column, with bound parameters ``v_<column>``,
    ``w_id`` and ``w_state``: built once, so SQLAlchemy compiles it once (a statement with
    literal values would be re-coerced and re-keyed on every upload)."""
    global _FINISH_STMT
    if _FINISH_STMT is None:
        cols = [c for c in _SAMPLES.c if c.name not in ("id", "project_id")]
        _FINISH_STMT = (update(_SAMPLES)
                        .where(_SAMPLES.c.id == bindparam("w_id"),
                               _SAMPLES.c.state == bindparam("w_state"))
                        .values({c.name: bindparam("v_" + c.name, type_=c.type) for c in cols}))
    return _FINISH_STMT
_DEVICES = Device.__table__
# Column values of a finished row that the parsed content may leave unset.
_ROW_DEFAULTS: dict[str, Any] = {
    "interval_ms": 0.0, "length": 0, "axes": [], "width": 0, "height": 0,
    "canonical_key": None, "structured_labels": [], "bounding_boxes": [],
}


def _reserve_row(project_id: int, chk: _Checked, opts: UploadOptions) -> dict[str, Any]:
    """The pending row that reserves a sample id (invisible to every query)."""
    return {"project_id": project_id, "state": PENDING, "filename": chk.filename,
            "category": "training", "upload_source": opts.upload_source.strip()}


def raw_prefix(project_id: int, sample_id: int) -> str:
    """Object-store prefix holding every object of a sample."""
    return f"projects/{project_id}/raw/{sample_id}/"


def raw_key(project_id: int, sample_id: int) -> str:
    """Key of the original upload, byte for byte."""
    return raw_prefix(project_id, sample_id) + "original"


def canonical_key(project_id: int, sample_id: int) -> str:
    """Key of the canonical ``.npz`` (float32 [T, axes] + interval; time series/audio only)."""
    return raw_prefix(project_id, sample_id) + "canonical.npz"


@dataclass
class UploadOptions:
    """How to store one upload. Strings come straight from the client and are checked here.

    category: training | testing | anomaly | split (split = by content hash, ~80/20).
    label: single label (None = unlabeled). filename: bare name (no path, no ``..``).
    bounding_boxes: EI box dicts or BoundingBox (images only, pixels).
    structured_labels: ranges, in ``structured_unit`` (ms or sample index).
    frequency_hz: sampling rate of CSV files without a timestamp column.
    """

    category: str = "training"
    label: str | None = None
    filename: str = "sample"
    content_type: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    bounding_boxes: list[Any] = field(default_factory=list)
    structured_labels: list[LabelRange] = field(default_factory=list)
    structured_unit: Literal["ms", "index"] = "ms"
    disallow_duplicates: bool = False
    add_date_id: bool = False
    device_name: str = ""
    device_type: str = ""
    upload_source: str = ""
    frequency_hz: float | None = None
    test_fraction: float = DEFAULT_TEST_FRACTION


@dataclass(frozen=True)
class SeriesShape:
    """What ingest needs of a series it did not decode (a streamed WAV): T, interval in ms,
    axis names and units (the attributes of :class:`TimeSeries` that rows record)."""

    length: int
    interval_ms: float
    axes: tuple[str, ...]
    units: tuple[str, ...]

    @property
    def duration_ms(self) -> float:
        return self.length * self.interval_ms


class _Head:
    """Passes chunks through, keeping the first ``limit`` bytes (a file header) aside."""

    def __init__(self, chunks: Iterable[bytes], limit: int = 64 * 1024) -> None:
        self._chunks = chunks
        self._limit = limit
        self._parts: list[bytes] = []
        self._kept = 0

    def chunks(self) -> Iterator[bytes]:
        for c in self._chunks:
            if self._kept < self._limit:
                part = bytes(c[:self._limit - self._kept])
                self._parts.append(part)
                self._kept += len(part)
            yield c

    @property
    def data(self) -> bytes:
        return b"".join(self._parts)


@dataclass
class _Checked:
    category: Category
    label: str | None
    filename: str
    metadata: dict[str, str]
    boxes: list[BoundingBox]


def _short(value: str, limit: int, field: str) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise InvalidArgument(f"{field} is {len(value)} characters, the limit is {limit}",
                              field=field)
    return value


def check_options(opts: UploadOptions) -> _Checked:
    """Validate everything about an upload that does not need its bytes."""
    category = validate_category(opts.category)
    label = validate_label(opts.label) if opts.label is not None else None
    filename = validate_filename(opts.filename)
    if opts.add_date_id:
        stem, dot, ext = filename.rpartition(".")
        uid = base64.b32encode(uuid.uuid4().bytes[:5]).decode().lower()
        filename = validate_filename(f"{stem}.{uid}.{ext}" if dot and stem else f"{filename}.{uid}")
    metadata = validate_metadata(opts.metadata)
    boxes = [b if isinstance(b, BoundingBox) else None for b in opts.bounding_boxes]
    if any(b is None for b in boxes):
        boxes = parse_bounding_boxes(opts.bounding_boxes)
    _short(opts.device_name, 256, "device_name")
    _short(opts.device_type, 256, "device_type")
    _short(opts.upload_source, 128, "upload_source")
    return _Checked(category, label, filename, metadata, boxes)  # type: ignore[arg-type]


def _derive(parsed: ParsedSample, chk: _Checked, opts: UploadOptions) -> dict[str, Any]:
    """Row fields that come from the parsed content (and checks that need it)."""
    fields: dict[str, Any] = {
        "kind": str(parsed.kind), "format": str(parsed.format),
        "content_type": parsed.content_type, "signed": parsed.signed,
        "duration_ms": float(parsed.duration_ms),
    }
    boxes: list[dict[str, Any]] = []
    if chk.boxes:
        if parsed.image is None:
            raise InvalidArgument("bounding boxes are only allowed on images",
                                  field="bounding_boxes")
        boxes = [b.to_ei() for b in check_boxes_in_image(chk.boxes, parsed.image.width,
                                                         parsed.image.height)]
    fields["bounding_boxes"] = boxes
    structured = list(parsed.structured_labels)
    if opts.structured_labels:
        if parsed.series is None:
            raise InvalidArgument("structured labels are only allowed on time series",
                                  field="structured_labels")
        structured = resolve_structured_labels(
            opts.structured_labels, length=parsed.series.length,
            interval_ms=parsed.series.interval_ms, unit=opts.structured_unit)
    fields["structured_labels"] = [s.to_ei() for s in structured]
    if parsed.series is not None:
        s = parsed.series
        fields.update(interval_ms=float(s.interval_ms), length=s.length,
                      axes=[{"name": a, "units": u} for a, u in zip(s.axes, s.units, strict=True)])
    if parsed.image is not None:
        fields.update(width=parsed.image.width, height=parsed.image.height)
    fields["device_name"] = _short(opts.device_name or parsed.device_name or "", 256,
                                   "device_name")
    fields["device_type"] = _short(opts.device_type or parsed.device_type or "", 256,
                                   "device_type")
    return fields


class SampleStore:
    """Domain operations on samples over one metadata DB and one object store."""

    def __init__(self, db: Database, objects: ObjectStore, *,
                 max_upload_bytes: int = 100 * 1024 * 1024) -> None:
        self.db = db
        self.objects = objects
        self.max_upload_bytes = max_upload_bytes
        self._io_pool: ThreadPoolExecutor | None = None
        self._io_lock = threading.Lock()

    def io_pool(self) -> ThreadPoolExecutor:
        """The threads that write the objects of a batch of uploads in parallel (created on
        first use)."""
        if self._io_pool is None:
            with self._io_lock:
                if self._io_pool is None:
                    self._io_pool = ThreadPoolExecutor(INGEST_IO_THREADS,
                                                       thread_name_prefix="tf-ingest-io")
        return self._io_pool

    # ------------------------------------------------------------------ ingest
    def _project(self, project_id: int) -> tuple[str, bool]:
        # Cached for a few seconds (tinyforge.auth.cache); a settings change made in this
        # process (allow_unsigned_data, HMAC key) empties the cache, so it applies to the
        # next upload.
        check_id(project_id, "project_id")
        facts = cache.projects.get(project_id)
        if facts is None:
            with self.db.read() as conn:
                facts = cache.project_facts(conn, project_id)
        if facts is None:
            raise NotFound(f"project {project_id} does not exist", field="project_id")
        return facts.hmac_key, facts.allow_unsigned_data

    def _parse(self, data: bytes, opts: UploadOptions, project_id: int) -> ParsedSample:
        hmac_key, allow_unsigned = self._project(project_id)
        return parse_upload(data, opts.filename, opts.content_type, hmac_key=hmac_key or None,
                            allow_unsigned=allow_unsigned, frequency_hz=opts.frequency_hz,
                            max_bytes=self.max_upload_bytes)

    def _check_duplicate(self, s: Session | Connection, project_id: int, sha: str,
                         exclude: int) -> None:
        dup = s.scalar(_DUP_QUERY, {"pid": project_id, "sha": sha, "ex": exclude})
        if dup is not None:
            raise AlreadyExists(f"a sample with the same content (sha256 {sha[:12]}…) already "
                                f"exists: sample {dup}", field="data")

    def _reserve(self, project_id: int, chk: _Checked, opts: UploadOptions) -> int:
        # Core INSERT, group-committed with the other uploads' writes (Database.write).
        return int(self.db.writer.insert(_RESERVE_STMT, _reserve_row(project_id, chk, opts),
                                         returning_id=True))

    def _discard_objects(self, project_id: int, sample_id: int) -> None:
        """Remove the objects of a failed upload (never raises)."""
        try:
            self.objects.delete_prefix(raw_prefix(project_id, sample_id))
        except Exception:
            log.exception("could not delete the objects of failed upload %s", sample_id)

    def _discard(self, project_id: int, sample_id: int) -> None:
        """Remove the objects and the pending row of a failed upload (never raises)."""
        self._discard_objects(project_id, sample_id)
        try:
            self.db.write(lambda conn: conn.execute(
                delete(_SAMPLES).where(_SAMPLES.c.id == sample_id,
                                       _SAMPLES.c.state == PENDING)))
        except Exception:
            log.exception("could not delete the pending row of failed upload %s", sample_id)

    def _finish_op(self, project_id: int, sample_id: int, chk: _Checked, opts: UploadOptions,
                   parsed: ParsedSample, sha: str, size: int, *,
                   canonical_is_original: bool = False,
                   derived: dict[str, Any] | None = None) -> tuple[_FinishOp, dict[str, Any]]:
        """Store the canonical object (when the original is not its own canonical form) and
        build the pending -> ready write of sample ``sample_id``; returns it with the row's
        fields. ``derived``: :func:`_derive`'s result when the caller has it already."""
        if derived is None:
            derived = _derive(parsed, chk, opts)
        fields = {**_ROW_DEFAULTS, **derived}
        if canonical_is_original:
            # WAV / EI envelope: the original file is a lossless container of the series and
            # TimeSeries.from_bytes reads it directly, so no second copy is stored.
            fields["canonical_key"] = raw_key(project_id, sample_id)
        elif parsed.series is not None:
            data = parsed.canonical_bytes()
            assert data is not None
            self.objects.put_bytes(canonical_key(project_id, sample_id), data,
                                   content_type="application/x-tinyforge-series+npz",
                                   overwrite=True)
            fields["canonical_key"] = canonical_key(project_id, sample_id)
        category = chk.category.value
        if chk.category is Category.SPLIT:
            category = split_for_hash(sha, opts.test_fraction)
        now = datetime.now(UTC)
        fields.update(category=category, label=chk.label, filename=chk.filename,
                      sample_metadata=chk.metadata, sha256=sha, size_bytes=size,
                      raw_key=raw_key(project_id, sample_id), state=READY, created_at=now,
                      updated_at=now, upload_source=opts.upload_source.strip(), enabled=True)
        values = {"v_" + ("metadata" if k == "sample_metadata" else k): v
                  for k, v in fields.items()}
        values.update(w_id=sample_id, w_state=PENDING)
        name = fields["device_name"] or fields["device_type"]
        op = _FinishOp(project_id, sample_id, sha, opts.disallow_duplicates, values,
                       name[:256], fields["device_type"], now)
        return op, fields

    def _finish(self, project_id: int, sample_id: int, chk: _Checked, opts: UploadOptions,
                parsed: ParsedSample, sha: str, size: int, *,
                canonical_is_original: bool = False) -> Sample:
        op, fields = self._finish_op(project_id, sample_id, chk, opts, parsed, sha, size,
                                     canonical_is_original=canonical_is_original)
        # Core statements, group-committed (Database.write: one writer thread, so the
        # duplicate check and the device counter see every earlier upload of this process):
        # duplicate check, pending -> ready, device counter. Returns once committed.
        self.db.write(op)
        return detached_row(Sample, id=sample_id, project_id=project_id, **fields)

    def ingest_bytes(self, project_id: int, data: bytes, opts: UploadOptions) -> Sample:
        """Validate, parse and store one upload held in memory; returns the stored row.

        Raises InvalidArgument (bad options or content), ResourceExhausted (over the size
        limit), AlreadyExists (duplicate content with ``disallow_duplicates``), NotFound
        (unknown project). On any error nothing is stored.
        """
        chk = check_options(opts)
        parsed = self._parse(data, opts, project_id)
        sha = content_sha256(data)
        derived = _derive(parsed, chk, opts)  # box/label checks before anything is written
        if opts.disallow_duplicates:
            with self.db.session() as s:
                self._check_duplicate(s, project_id, sha, 0)
        # One group-committed operation (_IngestOp): id, objects, ready row, duplicate check,
        # device counter; a single wait for the caller, and nothing left behind on failure.
        return self.db.write(_IngestOp(self, project_id, data, chk, opts, parsed, sha,
                                       derived))

    def ingest_stream(self, project_id: int, chunks: Iterable[bytes],
                      opts: UploadOptions, *, size_hint: int = 0) -> Sample:
        """Like :meth:`ingest_bytes` for a large upload arriving in chunks.

        The chunks are written through ``ObjectStore.put_stream`` (constant memory, the size
        limit enforced while streaming, invisible until complete), then read back and parsed.
        If the source raises (client gone) or anything fails, nothing is left behind.
        ``size_hint``: the size the client announced (0: unknown); over the size limit it is
        refused before anything is received, else the store reserves the space up front.
        """
        chk = check_options(opts)
        self._project(project_id)  # NotFound before anything is written
        if size_hint > self.max_upload_bytes:
            raise ResourceExhausted(
                f"the upload announces {size_hint} bytes, over the limit of "
                f"{self.max_upload_bytes} bytes per file", field="size_bytes")
        sample_id = self._reserve(project_id, chk, opts)
        key = raw_key(project_id, sample_id)
        head = _Head(chunks)
        try:
            info = self.objects.put_stream(key, head.chunks(), max_bytes=self.max_upload_bytes,
                                           overwrite=True, size_hint=size_hint or None)
            parsed = self._parse_stored_wav(key, head.data, info.size)
            if parsed is None:  # not a WAV (or an odd one): parse the whole file in memory
                data = self.objects.get_bytes(key)
                parsed = self._parse(data, opts, project_id)
                del data
            return self._finish(project_id, sample_id, chk, opts, parsed, info.sha256, info.size,
                                canonical_is_original=parsed.format in ORIGINAL_IS_CANONICAL)
        except BaseException:
            self._discard(project_id, sample_id)
            raise

    def _parse_stored_wav(self, key: str, head: bytes, size: int) -> ParsedSample | None:
        """Validate a stored WAV from its header and size, without decoding it: integer PCM
        samples cannot be invalid, float ones are checked for NaN/Inf chunk by chunk. The
        original is the canonical object of a WAV, so nothing else is derived (constant
        memory for any file size). None when the head is not a WAV's or too short."""
        if not is_wav(head):
            return None
        try:
            lay = inspect_wav(head, size)
        except WavHeadTooShort:
            return None
        if lay.is_float:
            pos, end, carry = 0, lay.data_offset + lay.data_size, b""
            item = lay.bits // 8
            for chunk in self.objects.iter_chunks(key):
                lo, hi = max(lay.data_offset - pos, 0), min(end - pos, len(chunk))
                pos += len(chunk)
                if hi <= lo:
                    continue
                piece = carry + chunk[lo:hi]
                whole = len(piece) - len(piece) % item
                check_float_samples(lay, piece[:whole])
                carry = piece[whole:]
        series = SeriesShape(length=lay.frames, interval_ms=1000.0 / lay.rate, axes=lay.axes,
                             units=("wav",) * lay.channels)
        return ParsedSample(kind=SampleKind.AUDIO, format=SourceFormat.WAV,
                            series=series)  # type: ignore[arg-type]

    def ingest_file(self, project_id: int, path: Path, opts: UploadOptions) -> Sample:
        """Ingest a file from disk (CLI/importers running next to the platform)."""
        with open(path, "rb") as f:
            return self.ingest_stream(project_id, iter(lambda: f.read(1 << 20), b""), opts,
                                      size_hint=os.fstat(f.fileno()).st_size)

    # ------------------------------------------------------------------ queries
    def get(self, project_id: int, sample_id: int) -> Sample:
        """A ready sample of the project (NotFound otherwise, also for other projects)."""
        with self.db.session() as s:
            row = s.get(Sample, sample_id) if sample_id > 0 else None
            if row is None or row.project_id != project_id or row.state != READY:
                raise NotFound(f"sample {sample_id} does not exist in project {project_id}",
                               field="sample_id")
            s.expunge(row)
            return row

    def list(self, project_id: int, *, category: str = "", label: str | None = None,
             metadata: dict[str, str] | None = None, device: str = "", search: str = "",
             enabled: bool | None = None, page_size: int = 0,
             page_token: str = "") -> tuple[list[Sample], str, int]:
        """Ready samples of a project, oldest first, filtered; returns (page, next token,
        total matching). ``label=""`` selects unlabeled samples; ``search`` is a
        case-insensitive substring of the file name; ``metadata`` must all match."""
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size must be 0..{MAX_PAGE_SIZE}", field="page_size")
        size = page_size or DEFAULT_PAGE_SIZE
        after = 0
        if page_token:
            try:
                after = int(page_token)
            except ValueError:
                raise InvalidArgument("page_token is not one this API returned",
                                      field="page_token") from None
        conds = [Sample.project_id == project_id, Sample.state == READY]
        if category:
            if category not in STORED_CATEGORIES:
                raise InvalidArgument(f"category must be one of {', '.join(STORED_CATEGORIES)}",
                                      field="category")
            conds.append(Sample.category == category)
        if label is not None:
            conds.append(Sample.label.is_(None) if label == "" else Sample.label == label)
        if device:
            conds.append(or_(Sample.device_name == device, Sample.device_type == device))
        if search:
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conds.append(Sample.filename.ilike(pattern + "%", escape="\\"))
        if enabled is not None:
            conds.append(Sample.enabled == enabled)
        with self.db.session() as s:
            rows = list(s.scalars(select(Sample).where(*conds).order_by(Sample.id)))
            # metadata filters run in Python: JSON operators differ between SQLite and Postgres
            for k, v in (metadata or {}).items():
                rows = [r for r in rows if (r.sample_metadata or {}).get(k) == v]
            total = len(rows)
            page = [r for r in rows if r.id > after][:size]
            for r in page:
                s.expunge(r)
        more = len([r for r in rows if r.id > after]) > size
        return page, (str(page[-1].id) if more and page else ""), total

    def iter_all(self, project_id: int, **filters: Any) -> Iterator[Sample]:
        """Every matching sample, page by page."""
        token = ""
        while True:
            page, token, _ = self.list(project_id, page_size=MAX_PAGE_SIZE, page_token=token,
                                       **filters)
            yield from page
            if not token:
                return

    def download(self, project_id: int, sample_id: int, *, canonical: bool = False,
                 chunk_size: int = 1 << 20) -> tuple[Sample, Iterator[bytes]]:
        """The sample and an iterator over its original bytes (or its canonical ``.npz``)."""
        row = self.get(project_id, sample_id)
        key = row.raw_key
        if canonical:
            if not row.canonical_key:
                raise NotFound(f"sample {sample_id} ({row.kind}) has no canonical array; its "
                               "original file is its canonical form", field="canonical")
            if row.canonical_key == row.raw_key:  # WAV/EI: the .npz is derived on request
                npz = TimeSeries.from_bytes(self.objects.get_bytes(key)).to_bytes()
                return row, (npz[i:i + chunk_size] for i in range(0, len(npz), chunk_size))
            key = row.canonical_key
        return row, self.objects.iter_chunks(key, chunk_size)

    # ------------------------------------------------------------------ edits
    def update(self, project_id: int, sample_id: int, *, label: str | None = None,
               clear_label: bool = False, metadata: dict[str, Any] | None = None,
               bounding_boxes: list[Any] | None = None,
               structured_labels: list[LabelRange] | None = None,
               structured_unit: Literal["ms", "index"] = "index",
               enabled: bool | None = None, filename: str | None = None) -> Sample:
        """Change the labels / metadata / enabled flag of one sample (None = unchanged)."""
        new_label = validate_label(label) if label is not None else None
        meta = validate_metadata(metadata) if metadata is not None else None
        boxes = parse_bounding_boxes(bounding_boxes) if bounding_boxes is not None else None
        name = validate_filename(filename) if filename is not None else None
        with self.db.session() as s:
            row = s.get(Sample, sample_id) if sample_id > 0 else None
            if row is None or row.project_id != project_id or row.state != READY:
                raise NotFound(f"sample {sample_id} does not exist in project {project_id}",
                               field="sample_id")
            if clear_label:
                row.label = None
            elif new_label is not None:
                row.label = new_label
            if meta is not None:
                row.sample_metadata = meta
            if boxes is not None:
                if row.kind != "image":
                    raise InvalidArgument("bounding boxes are only allowed on images",
                                          field="bounding_boxes")
                row.bounding_boxes = [b.to_ei() for b in
                                      check_boxes_in_image(boxes, row.width, row.height)]
            if structured_labels is not None:
                if row.kind == "image":
                    raise InvalidArgument("structured labels are only allowed on time series",
                                          field="structured_labels")
                if structured_labels:
                    resolved = resolve_structured_labels(
                        structured_labels, length=row.length, interval_ms=row.interval_ms,
                        unit=structured_unit)
                    row.structured_labels = [r.to_ei() for r in resolved]
                else:
                    row.structured_labels = []
            if enabled is not None:
                row.enabled = enabled
            if name is not None:
                row.filename = name
            s.flush()
            s.expunge(row)
            return row

    def move(self, project_id: int, sample_ids: list[int], category: str) -> int:
        """Move samples to training/testing/anomaly; all ids must exist. Returns the count."""
        if category not in STORED_CATEGORIES:
            raise InvalidArgument(f"category must be one of {', '.join(STORED_CATEGORIES)}",
                                  field="category")
        with self.db.session() as s:
            rows = self._rows(s, project_id, sample_ids)
            for r in rows:
                r.category = category
            return len(rows)

    def _rows(self, s: Session, project_id: int, sample_ids: list[int]) -> list[Sample]:
        ids = sorted(set(sample_ids))
        if not ids:
            raise InvalidArgument("sample_ids is empty", field="sample_ids")
        rows = list(s.scalars(select(Sample).where(
            Sample.id.in_(ids), Sample.project_id == project_id, Sample.state == READY)))
        missing = sorted(set(ids) - {r.id for r in rows})
        if missing:
            raise NotFound(f"samples {missing[:10]} do not exist in project {project_id}",
                           field="sample_ids")
        return rows

    def delete(self, project_id: int, sample_ids: list[int]) -> int:
        """Delete samples (rows first, then their objects). Returns the count."""
        wanted = sorted(set(sample_ids))
        if not wanted:
            raise InvalidArgument("sample_ids is empty", field="sample_ids")

        def op(conn: Connection) -> list[int]:
            # Through the group committer, like ingest: device counters are only ever
            # changed by the one writer thread.
            rows = conn.execute(select(_SAMPLES.c.id, _SAMPLES.c.device_name,
                                       _SAMPLES.c.device_type).where(
                _SAMPLES.c.id.in_(wanted), _SAMPLES.c.project_id == project_id,
                _SAMPLES.c.state == READY)).all()
            missing = sorted(set(wanted) - {r[0] for r in rows})
            if missing:
                raise NotFound(f"samples {missing[:10]} do not exist in project {project_id}",
                               field="sample_ids")
            count = _DEVICES.c.sample_count
            for _sid, dev_name, dev_type in rows:
                name = dev_name or dev_type
                if name:
                    conn.execute(update(_DEVICES).where(
                        _DEVICES.c.project_id == project_id, _DEVICES.c.name == name[:256])
                        .values(sample_count=case((count > 0, count - 1), else_=0)))
            conn.execute(delete(_SAMPLES).where(_SAMPLES.c.id.in_([r[0] for r in rows])))
            return [r[0] for r in rows]

        ids = self.db.write(op)
        for sid in ids:  # rows are gone: unreferenced objects are garbage, never half samples
            try:
                self.objects.delete_prefix(raw_prefix(project_id, sid))
            except Exception:
                log.exception("could not delete the objects of sample %s", sid)
        return len(ids)

    def rebalance(self, project_id: int, test_fraction: float = DEFAULT_TEST_FRACTION
                  ) -> tuple[int, int, int]:
        """Reassign every training/testing sample by content hash (anomaly untouched).

        Deterministic and stable: a sample's side depends only on its own bytes, so adding
        data never moves old samples. Returns (moved, training, testing)."""
        moved = train = test = 0
        with self.db.session() as s:
            rows = s.scalars(select(Sample).where(
                Sample.project_id == project_id, Sample.state == READY,
                Sample.category.in_(["training", "testing"])))
            for r in rows:
                side = split_for_hash(r.sha256, test_fraction)
                if side != r.category:
                    r.category = side
                    moved += 1
                if side == "testing":
                    test += 1
                else:
                    train += 1
        return moved, train, test

    def summary(self, project_id: int) -> dict[str, Any]:
        """Counts and total duration (ms) per category and per (category, label)."""
        with self.db.session() as s:
            get_project(s, project_id)
            rows = s.execute(
                select(Sample.category, Sample.label, func.count(Sample.id),
                       func.coalesce(func.sum(Sample.duration_ms), 0.0))
                .where(Sample.project_id == project_id, Sample.state == READY)
                .group_by(Sample.category, Sample.label)).all()
        per_label = [{"category": c, "label": lab or "", "count": int(n), "duration_ms": float(d)}
                     for c, lab, n, d in sorted(rows, key=lambda r: (r[0], r[1] or ""))]
        per_cat: dict[str, dict[str, float]] = {}
        for e in per_label:
            agg = per_cat.setdefault(e["category"], {"count": 0, "duration_ms": 0.0})
            agg["count"] += e["count"]
            agg["duration_ms"] += e["duration_ms"]
        return {
            "total_count": sum(e["count"] for e in per_label),
            "total_duration_ms": sum(e["duration_ms"] for e in per_label),
            "categories": [{"category": c, **v} for c, v in sorted(per_cat.items())],
            "labels": per_label,
        }

    def devices(self, project_id: int) -> list[Device]:
        """Devices that sent data to the project, most recently seen first."""
        with self.db.session() as s:
            get_project(s, project_id)
            rows = list(s.scalars(select(Device).where(Device.project_id == project_id)
                                  .order_by(Device.last_seen.desc(), Device.id)))
            for r in rows:
                s.expunge(r)
            return rows

    # ------------------------------------------------------------------ cleanup
    def cleanup_stale_uploads(self, older_than_s: float = STALE_PENDING_S) -> int:
        """Remove uploads that never finished: pending rows older than ``older_than_s`` (and
        their objects), and sample objects of any project that no row references. Returns
        the number of samples' objects removed."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
        with self.db.session() as s:
            stale = list(s.execute(select(Sample.id, Sample.project_id).where(
                Sample.state == PENDING, Sample.created_at < cutoff)))
            live = {(pid, sid) for sid, pid in s.execute(select(Sample.id, Sample.project_id))}
            # ids above this were reserved after the snapshot: uploads in progress, not orphans
            max_id = s.scalar(select(func.max(Sample.id))) or 0
            project_ids = list(s.scalars(select(Project.id)))
        removed = 0
        for sid, pid in stale:
            self._discard(pid, sid)
            live.discard((pid, sid))
            removed += 1
        # Objects without any row: an upload whose row was removed but whose objects were not.
        orphans: set[tuple[int, int]] = set()
        for pid in project_ids:
            for info in self.objects.list(f"projects/{pid}/raw/"):
                part = info.key.split("/")[3]
                if part.isdigit() and int(part) <= max_id and (pid, int(part)) not in live:
                    orphans.add((pid, int(part)))
        for pid, sid in orphans:
            with contextlib.suppress(Exception):
                self.objects.delete_prefix(raw_prefix(pid, sid))
                removed += 1
        return removed


_DEV_WHERE = (_DEVICES.c.project_id == bindparam("pid"), _DEVICES.c.name == bindparam("nm"))
_DEV_INSERT = insert(_DEVICES)
_DUP_QUERY = select(_SAMPLES.c.id).where(
    _SAMPLES.c.project_id == bindparam("pid"), _SAMPLES.c.sha256 == bindparam("sha"),
    _SAMPLES.c.state == READY, _SAMPLES.c.id != bindparam("ex")).limit(1)


_DEV_SEEN_N = update(_DEVICES).where(*_DEV_WHERE).values(
    last_seen=bindparam("now"), sample_count=_DEVICES.c.sample_count + bindparam("n"))
_DEV_SEEN_N_TYPE = _DEV_SEEN_N.values(device_type=bindparam("dt"))


class _FinishOp(BatchOp):
    """pending -> ready of one upload (+ duplicate check, + device counter), run by the group
    committer. A batch of them is one multi-row UPDATE plus one counter update per device;
    a duplicate or a vanished row makes the batch fall back to one operation at a time
    (BatchOp), where exactly the culprit fails."""

    __slots__ = ("check_dup", "dev_name", "dev_type", "now", "project_id", "sample_id",
                 "sha", "values")
    group_key = "finish"

    def __init__(self, project_id: int, sample_id: int, sha: str, check_dup: bool,
                 values: dict[str, Any], dev_name: str, dev_type: str, now: datetime) -> None:
        self.project_id, self.sample_id, self.sha = project_id, sample_id, sha
        self.check_dup, self.values = check_dup, values
        self.dev_name, self.dev_type, self.now = dev_name, dev_type, now

    def _dup(self, conn: Connection) -> None:
        dup = conn.scalar(_DUP_QUERY, {"pid": self.project_id, "sha": self.sha,
                                       "ex": self.sample_id})
        if dup is not None:
            raise AlreadyExists(f"a sample with the same content (sha256 {self.sha[:12]}…) "
                                f"already exists: sample {dup}", field="data")

    def __call__(self, conn: Connection) -> None:
        self._run(conn, [self])

    @classmethod
    def run_group(cls, conn: Connection, ops: list[Any]) -> list[Any]:
        cls._run(conn, ops)
        return [None] * len(ops)

    @staticmethod
    def _run(conn: Connection, ops: list[_FinishOp]) -> None:
        shas: set[tuple[int, str]] = set()
        for op in ops:
            # a duplicate of an earlier upload of this very batch is caught too
            if op.check_dup and (op.project_id, op.sha) in shas:
                raise AlreadyExists("duplicate inside a batch", field="data")
            if op.check_dup:
                op._dup(conn)
            shas.add((op.project_id, op.sha))
        # SQLite: straight on the DBAPI cursor (tinyforge.store.db.driver_statement).
        drv = driver_statement(conn, _finish_statement())
        if drv is not None:
            ds, cur = drv
            try:
                cur.executemany(ds.sql, [ds.row(op.values) for op in ops])
                changed = cur.rowcount
            finally:
                cur.close()
        elif len(ops) == 1 or conn.dialect.supports_sane_multi_rowcount:
            changed = conn.execute(_finish_statement(), [op.values for op in ops]).rowcount
        else:
            changed = sum(conn.execute(_finish_statement(), op.values).rowcount for op in ops)
        if changed != len(ops):
            raise NotFound(f"sample {ops[0].sample_id} vanished during its upload"
                           if len(ops) == 1 else "a sample of the batch vanished during its "
                           "upload", field="sample_id")
        devices: dict[tuple[int, str], list[Any]] = {}
        for op in ops:
            if op.dev_name:
                d = devices.setdefault((op.project_id, op.dev_name), [0, "", op.now])
                d[0] += 1
                d[1] = op.dev_type or d[1]
                d[2] = max(d[2], op.now)
        for (pid, name), (n, dev_type, now) in devices.items():
            params: dict[str, Any] = {"pid": pid, "nm": name, "now": now, "n": n}
            if dev_type:
                params["dt"] = dev_type
            stmt = _DEV_SEEN_N_TYPE if dev_type else _DEV_SEEN_N
            drv = driver_statement(conn, stmt)
            if drv is not None:
                ds, cur = drv
                try:
                    cur.execute(ds.sql, ds.row(params))
                    seen = cur.rowcount
                finally:
                    cur.close()
            else:
                seen = conn.execute(stmt, params).rowcount
            if seen == 0:
                conn.execute(_DEV_INSERT, {"project_id": pid, "name": name,
                                           "device_type": dev_type, "first_seen": now,
                                           "last_seen": now, "sample_count": n})


class _IngestOp(BatchOp):
    """A whole in-memory upload, run by the group committer: reserve the id, write the
    objects (durably), mark the row ready (duplicate check, device counter), all in the
    batch's transaction. A batch of them is one multi-row INSERT, the objects, one
    multi-row UPDATE and one counter update per device, with one wait per upload instead
    of one per write; the objects of a rolled-back attempt are removed by the writer
    thread itself (:meth:`rolled_back`), before its ids can be handed out again."""

    __slots__ = ("chk", "data", "derived", "opts", "parsed", "project_id", "row", "sha",
                 "store", "written")
    group_key = "ingest"

    def __init__(self, store: SampleStore, project_id: int, data: bytes, chk: _Checked,
                 opts: UploadOptions, parsed: ParsedSample, sha: str,
                 derived: dict[str, Any]) -> None:
        self.store, self.project_id, self.data, self.chk = store, project_id, data, chk
        self.opts, self.parsed, self.sha, self.derived = opts, parsed, sha, derived
        self.written: int | None = None  # sample id whose objects this attempt wrote
        self.row: Sample | None = None

    def __call__(self, conn: Connection) -> Sample:
        return self.run_group(conn, [self])[0]

    def _store(self, sample_id: int) -> _FinishOp:
        """Write the objects of this upload as sample ``sample_id``; its ready-row write."""
        st, pid = self.store, self.project_id
        self.written = sample_id
        st.objects.put_bytes(raw_key(pid, sample_id), self.data,
                             content_type=self.parsed.content_type, overwrite=True)
        op, fields = st._finish_op(
            pid, sample_id, self.chk, self.opts, self.parsed, self.sha, len(self.data),
            canonical_is_original=self.parsed.format in ORIGINAL_IS_CANONICAL,
            derived=self.derived)
        self.row = detached_row(Sample, id=sample_id, project_id=pid, **fields)
        return op

    def rolled_back(self) -> None:
        if self.written is not None:
            self.store._discard_objects(self.project_id, self.written)
            self.written = None

    @classmethod
    def run_group(cls, conn: Connection, ops: list[Any]) -> list[Any]:
        ids = insert_rows(conn, _RESERVE_STMT,
                          [_reserve_row(op.project_id, op.chk, op.opts) for op in ops],
                          returning_id=True)
        if len(ops) == 1:
            fins = [ops[0]._store(ids[0])]
        else:
            # The objects of a batch are written in parallel (each is made durable with its
            # own flush: one at a time they would take the batch's sum of disk latencies).
            # Every write has ended before this returns or raises, so a rollback's
            # clean-up (rolled_back) cannot race with one.
            pool = ops[0].store.io_pool()
            futs = [pool.submit(op._store, sid) for op, sid in zip(ops, ids, strict=True)]
            wait(futs)
            fins = [f.result() for f in futs]
        _FinishOp._run(conn, fins)
        return [op.row for op in ops]


def project_exists(db: Database, project_id: int) -> Project:
    """The project row (NotFound otherwise)."""
    with db.session() as s:
        p = get_project(s, project_id)
        s.expunge(p)
        return p

