"""Upload bytes → :class:`ParsedSample`: format detection and the one entry point.

Detection order (the first that applies wins):

1. magic bytes: ``RIFF....WAVE`` → WAV, ``\\x89PNG`` → PNG, ``FF D8 FF`` → JPEG;
2. first non-blank byte ``{`` → EI JSON envelope (EI's Python SDK sends JSON labelled
   ``application/cbor``, so content sniffing beats the declared type);
3. a CBOR map header byte (0xA0–0xBB, 0xBF) or the CBOR self-describe tag → EI CBOR;
4. the file name extension (.json .cbor .csv .wav .jpg .jpeg .png);
5. the content type (application/json, application/cbor, text/csv, audio/wav, image/...);
6. anything else is tried as CSV.

Steps 4–6 only pick the parser whose error message will be the most useful; the parser
still checks the bytes.
"""

from __future__ import annotations

from tinyforge.data.acquisition import parse_envelope
from tinyforge.data.canonical import ParsedSample, SampleKind, SourceFormat
from tinyforge.data.csv_format import parse_csv
from tinyforge.data.images import DEFAULT_MAX_PIXELS, JPEG_MAGIC, PNG_MAGIC, parse_image
from tinyforge.data.wav import is_wav, parse_wav
from tinyforge.errors import InvalidArgument, ResourceExhausted

DEFAULT_MAX_BYTES = 100 * 1024 * 1024  # EI's per-file limit

_EXTENSIONS = {
    "json": SourceFormat.EI_JSON, "cbor": SourceFormat.EI_CBOR, "csv": SourceFormat.CSV,
    "wav": SourceFormat.WAV, "wave": SourceFormat.WAV, "jpg": SourceFormat.JPEG,
    "jpeg": SourceFormat.JPEG, "png": SourceFormat.PNG,
}
_CONTENT_TYPES = {
    "application/json": SourceFormat.EI_JSON, "text/json": SourceFormat.EI_JSON,
    "application/cbor": SourceFormat.EI_CBOR, "text/csv": SourceFormat.CSV,
    "application/csv": SourceFormat.CSV, "text/plain": SourceFormat.CSV,
    "audio/wav": SourceFormat.WAV, "audio/x-wav": SourceFormat.WAV,
    "audio/wave": SourceFormat.WAV, "audio/vnd.wave": SourceFormat.WAV,
    "image/jpeg": SourceFormat.JPEG, "image/jpg": SourceFormat.JPEG,
    "image/png": SourceFormat.PNG,
}
_CBOR_SELF_DESCRIBE = b"\xd9\xd9\xf7"


def detect_format(data: bytes, filename: str | None = None,
                  content_type: str | None = None) -> SourceFormat:
    """Pick the parser for an upload (see the module docstring for the order)."""
    if is_wav(data):
        return SourceFormat.WAV
    if data.startswith(PNG_MAGIC):
        return SourceFormat.PNG
    if data.startswith(JPEG_MAGIC):
        return SourceFormat.JPEG
    head = data[:64].lstrip(b" \t\r\n\xef\xbb\xbf")  # whitespace and a UTF-8 BOM
    if head.startswith(b"{"):
        return SourceFormat.EI_JSON
    if data and (0xA0 <= data[0] <= 0xBB or data[0] == 0xBF
                 or data.startswith(_CBOR_SELF_DESCRIBE)):
        return SourceFormat.EI_CBOR
    if filename and "." in filename:
        ext = filename.rsplit(".", 1)[1].lower()
        if ext in _EXTENSIONS:
            return _EXTENSIONS[ext]
    if content_type:
        ctype = content_type.split(";", 1)[0].strip().lower()
        if ctype in _CONTENT_TYPES:
            return _CONTENT_TYPES[ctype]
    return SourceFormat.CSV


def parse_upload(data: bytes, filename: str | None = None, content_type: str | None = None,
                 *, hmac_key: str | None = None, allow_unsigned: bool = False,
                 frequency_hz: float | None = None, max_bytes: int | None = DEFAULT_MAX_BYTES,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> ParsedSample:
    """Parse one uploaded file into its canonical form.

    ``data``: the original bytes (store them unchanged; ``content_sha256`` gives their hash).
    ``filename`` / ``content_type``: hints for format detection only (validate the name with
    ``labels.validate_filename``). ``hmac_key``: the project's HMAC key for HS256 envelopes;
    ``allow_unsigned``: accept ``alg: none`` (and HS256 when no key is set). ``frequency_hz``:
    sampling rate for CSV files without a timestamp column. ``max_bytes``: size limit
    (None = no limit); ``max_pixels``: image size limit (width × height).

    Returns a ParsedSample whose ``series`` (float32 [T, axes], T ≥ 1, finite, interval > 0)
    or ``image`` is set. Raises InvalidArgument (bad or corrupt input, naming the field) or
    ResourceExhausted (over a size limit) — nothing else.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidArgument("upload data must be bytes", field="data")
    data = bytes(data)
    if max_bytes is not None and len(data) > max_bytes:
        raise ResourceExhausted(f"file is {len(data)} bytes, over the limit of {max_bytes}",
                                field="data")
    if not data:
        raise InvalidArgument("file is empty", field="data")
    fmt = detect_format(data, filename, content_type)
    try:
        return _parse(fmt, data, hmac_key=hmac_key, allow_unsigned=allow_unsigned,
                      frequency_hz=frequency_hz, max_pixels=max_pixels)
    except MemoryError as e:
        raise ResourceExhausted("file needs more memory to decode than is available",
                                field="data") from e


def _parse(fmt: SourceFormat, data: bytes, *, hmac_key: str | None, allow_unsigned: bool,
           frequency_hz: float | None, max_pixels: int) -> ParsedSample:
    if fmt in (SourceFormat.EI_JSON, SourceFormat.EI_CBOR):
        env = parse_envelope(data, is_cbor=fmt is SourceFormat.EI_CBOR, hmac_key=hmac_key,
                             allow_unsigned=allow_unsigned)
        audio = env.series.units == ("wav",) * len(env.series.units)
        return ParsedSample(kind=SampleKind.AUDIO if audio else SampleKind.TIME_SERIES,
                            format=fmt, series=env.series, device_name=env.device_name,
                            device_type=env.device_type, signed=env.signed)
    if fmt is SourceFormat.WAV:
        return ParsedSample(kind=SampleKind.AUDIO, format=fmt, series=parse_wav(data))
    if fmt in (SourceFormat.JPEG, SourceFormat.PNG):
        info = parse_image(data, max_pixels=max_pixels)
        real = SourceFormat.JPEG if info.format == "JPEG" else SourceFormat.PNG
        return ParsedSample(kind=SampleKind.IMAGE, format=real, image=info)
    series, labels = parse_csv(data, frequency_hz=frequency_hz)
    return ParsedSample(kind=SampleKind.TIME_SERIES, format=SourceFormat.CSV, series=series,
                        structured_labels=labels)
