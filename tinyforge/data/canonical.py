"""The canonical form every upload is reduced to, and its serialisation for the DSP stage.

Time series and audio become a :class:`TimeSeries`: a float32 array ``[T, axes]`` with the
sampling interval in milliseconds, one name and one unit per axis. Images keep their original
file as the canonical form (re-encoding would lose information and grow the data); an
:class:`ImageInfo` records what was decoded. :class:`ParsedSample` wraps either, plus what the
upload said about the device and any labels carried inside the file.

``TimeSeries.to_bytes`` / ``TimeSeries.from_bytes`` give the stored derived object: an ``.npz``
archive holding ``values`` (float32 ``[T, A]``) and ``meta`` (a JSON string with interval, axes
and units), readable with plain ``numpy.load`` and no pickle. For WAV uploads the original file
is the stored canonical object (no float32 copy twice its size); ``from_bytes`` reads both.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from tinyforge.errors import InvalidArgument

CANONICAL_CONTENT_TYPE = "application/x-tinyforge-series+npz"
CANONICAL_VERSION = 1


class SampleKind(StrEnum):
    TIME_SERIES = "time_series"
    AUDIO = "audio"
    IMAGE = "image"


class SourceFormat(StrEnum):
    """The format an upload was recognised as."""

    EI_JSON = "ei-json"
    EI_CBOR = "ei-cbor"
    CSV = "csv"
    WAV = "wav"
    JPEG = "jpeg"
    PNG = "png"


#: Formats whose original upload is its own canonical object (no derived copy is stored):
#: lossless containers of the series :meth:`TimeSeries.from_bytes` reads back as parsed.
ORIGINAL_IS_CANONICAL = frozenset({SourceFormat.WAV, SourceFormat.EI_JSON, SourceFormat.EI_CBOR})

#: Content type to store the original upload under, per recognised format.
CONTENT_TYPES: dict[SourceFormat, str] = {
    SourceFormat.EI_JSON: "application/json",
    SourceFormat.EI_CBOR: "application/cbor",
    SourceFormat.CSV: "text/csv",
    SourceFormat.WAV: "audio/wav",
    SourceFormat.JPEG: "image/jpeg",
    SourceFormat.PNG: "image/png",
}


@dataclass(frozen=True)
class TimeSeries:
    """Uniformly sampled signal.

    ``values``: float32, shape ``[T, A]`` (T ≥ 1 samples, A ≥ 1 axes), all finite.
    ``interval_ms``: time between two samples in milliseconds (> 0).
    ``axes`` / ``units``: one name and one unit string per axis.
    """

    values: np.ndarray
    interval_ms: float
    axes: tuple[str, ...]
    units: tuple[str, ...]

    def __post_init__(self) -> None:
        v = self.values
        if not isinstance(v, np.ndarray) or v.dtype != np.float32 or v.ndim != 2:
            raise InvalidArgument("values must be a float32 array [T, axes]", field="values")
        if v.shape[0] < 1 or v.shape[1] < 1:
            raise InvalidArgument(
                f"values must have at least 1 sample and 1 axis, got shape {v.shape}",
                field="values",
            )
        if not np.isfinite(v).all():
            raise InvalidArgument("values contain NaN or Inf", field="values")
        if not (isinstance(self.interval_ms, float | int) and math.isfinite(self.interval_ms)
                and self.interval_ms > 0):
            raise InvalidArgument(
                f"interval_ms must be a finite number > 0, got {self.interval_ms!r}",
                field="interval_ms",
            )
        if len(self.axes) != v.shape[1] or len(self.units) != v.shape[1]:
            raise InvalidArgument(
                f"{v.shape[1]} axes in values but {len(self.axes)} names and "
                f"{len(self.units)} units",
                field="sensors",
            )
        if len(set(self.axes)) != len(self.axes):
            raise InvalidArgument(f"axis names must be unique, got {list(self.axes)}",
                                  field="sensors")

    @property
    def length(self) -> int:
        """Number of samples T."""
        return int(self.values.shape[0])

    @property
    def frequency_hz(self) -> float:
        return 1000.0 / self.interval_ms

    @property
    def duration_ms(self) -> float:
        """Duration covered by the samples, T × interval (EI's convention)."""
        return self.length * self.interval_ms

    def to_bytes(self) -> bytes:
        """Serialise to the canonical ``.npz`` (values float32 [T, A] + JSON ``meta``)."""
        meta = json.dumps({
            "version": CANONICAL_VERSION,
            "interval_ms": float(self.interval_ms),
            "axes": list(self.axes),
            "units": list(self.units),
        })
        values = np.ascontiguousarray(self.values, dtype="<f4")
        if values.nbytes >= _ZIP32_LIMIT:  # needs ZIP64: let numpy write it
            buf = io.BytesIO()
            np.savez(buf, values=values, meta=np.array(meta))
            return buf.getvalue()
        return _stored_zip([
            ("values.npy", _npy_header("<f4", values.shape), values.data),
            ("meta.npy", _npy_header(f"<U{max(len(meta), 1)}", ()),
             meta.encode("utf-32-le")),
        ])

    @classmethod
    def from_bytes(cls, data: bytes) -> TimeSeries:
        """Read back what :meth:`to_bytes` wrote, a WAV file or an Edge Impulse acquisition
        envelope (JSON/CBOR): the stored canonical object of WAV and EI uploads is the
        original file (see :data:`ORIGINAL_IS_CANONICAL`), parsed again exactly as at ingest
        (the signature was checked then, so it is not checked here). Raises InvalidArgument
        if it is none of these."""
        if data[:4] == b"RIFF":
            from tinyforge.data.wav import parse_wav  # wav imports this module

            return parse_wav(data)
        if data[:2] != b"PK":  # not a zip (.npz): an acquisition envelope, or nothing valid
            from tinyforge.data.formats import parse_upload  # formats imports this module

            parsed = parse_upload(data, allow_unsigned=True, max_bytes=None)
            if parsed.format not in ORIGINAL_IS_CANONICAL or parsed.series is None:
                raise InvalidArgument(f"a {parsed.format} file is not a canonical series "
                                      "object", field="data")
            return parsed.series
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                values = np.ascontiguousarray(npz["values"], dtype=np.float32)
                meta = json.loads(str(npz["meta"]))
            return cls(values=values, interval_ms=float(meta["interval_ms"]),
                       axes=tuple(meta["axes"]), units=tuple(meta["units"]))
        except InvalidArgument:
            raise
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as e:
            raise InvalidArgument(f"not a canonical series object: {e}", field="data") from e


_ZIP32_LIMIT = 1 << 31
_NPY_MAGIC = b"\x93NUMPY\x01\x00"
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01: the archive's bytes depend only on content


def _npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    """An ``.npy`` version 1.0 header (magic, length, dict literal padded so the data starts
    on a 64-byte boundary, as numpy writes it) for a C-ordered array."""
    shape_s = "(" + "".join(f"{n}, " for n in shape).rstrip(" ") + ")" if len(shape) != 1 \
        else f"({shape[0]},)"
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_s}, }}"
    pad = -(len(_NPY_MAGIC) + 2 + len(text) + 1) % 64
    body = (text + " " * pad + "\n").encode("latin-1")
    return _NPY_MAGIC + struct.pack("<H", len(body)) + body


def _stored_zip(members: list[tuple[str, bytes, Any]]) -> bytes:
    """A zip archive (no compression, like ``np.savez``) of ``(name, head, data)`` members,
    each member's content being ``head + data``. What ``np.savez`` writes, built directly:
    about ten times cheaper for the small series most uploads are."""
    out: list[bytes | Any] = []
    central: list[bytes] = []
    offset = 0
    for name, head, data in members:
        raw = name.encode()
        size = len(head) + memoryview(data).nbytes
        crc = zlib.crc32(data, zlib.crc32(head))
        local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, _DOS_DATE, crc, size,
                            size, len(raw), 0) + raw
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0,
                                   _DOS_DATE, crc, size, size, len(raw), 0, 0, 0, 0,
                                   0o600 << 16, offset) + raw)
        out += (local, head, data)
        offset += len(local) + size
    cd = b"".join(central)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(cd),
                      offset, 0)
    return b"".join([*out, cd, end])


@dataclass(frozen=True)
class ImageInfo:
    """What was decoded from an image upload. Sizes in pixels; ``mode`` is Pillow's mode."""

    width: int
    height: int
    mode: str
    format: str  # "JPEG" | "PNG"


@dataclass(frozen=True)
class StructuredLabel:
    """A label over the sample range ``start_index..end_index`` (both inclusive, in samples)."""

    start_index: int
    end_index: int
    label: str

    def to_ei(self) -> dict[str, object]:
        return {"startIndex": self.start_index, "endIndex": self.end_index, "label": self.label}

    def ms_range(self, interval_ms: float) -> tuple[float, float]:
        """The half-open time range ``[start_ms, end_ms)`` these samples cover (the form
        ``tinyforge.data.windowing`` takes)."""
        return self.start_index * interval_ms, (self.end_index + 1) * interval_ms


@dataclass(frozen=True)
class ParsedSample:
    """The result of parsing one upload.

    Exactly one of ``series`` (time series / audio) and ``image`` is set. ``content_type`` is
    the type to store the original bytes under; ``signed`` is True only when an HS256
    signature was verified. ``structured_labels`` holds labels found inside the file
    (a CSV ``label`` column), empty otherwise.
    """

    kind: SampleKind
    format: SourceFormat
    series: TimeSeries | None = None
    image: ImageInfo | None = None
    device_name: str | None = None
    device_type: str | None = None
    signed: bool = False
    structured_labels: tuple[StructuredLabel, ...] = field(default=())

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def duration_ms(self) -> float:
        """Duration in milliseconds (0 for images)."""
        return self.series.duration_ms if self.series is not None else 0.0

    def canonical_bytes(self) -> bytes | None:
        """The derived object for the DSP stage: ``.npz`` for series, None for images
        (the original image file is the canonical form; decode with ``image_pixels``)."""
        return self.series.to_bytes() if self.series is not None else None


def content_sha256(data: bytes) -> str:
    """Lower-case hex sha256 of the original upload, the key for de-duplication."""
    return hashlib.sha256(data).hexdigest()
