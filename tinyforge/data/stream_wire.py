"""The wire format of ``UploadStreamRequest`` (the messages of a streamed upload), both ways,
without protobuf's copies of the chunk bytes.

The message is ``oneof part { UploadStreamHeader header = 1; bytes chunk = 2; }``. Going
through generated code, a chunk is copied twice on each side: the client copies it into the
message and again when serializing; the server copies the received bytes into the message
and out again on every ``msg.chunk`` access. For a 200 MB upload those copies cost as much
CPU as writing the file.

- Client side: :func:`encode_chunk` / :func:`encode_header` give the serialized message
  (tag, length, payload) directly; the SDK sends them with no request serializer.
- Server side: :func:`parse_stream_part` reads the wire format itself and hands the chunk out
  as a read-only ``memoryview`` of the received bytes. Anything unusual (unknown wire types,
  malformed input) goes through the generated parser, so errors are exactly the generated
  deserializer's.
"""

from __future__ import annotations

from typing import Any

from tinyforge.v1 import ingest_service_pb2 as pb

_HEADER_FIELD, _CHUNK_FIELD = 1, 2
_HEADER_TAG, _CHUNK_TAG = b"\x0a", b"\x12"  # (field << 3) | 2: length-delimited


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_chunk(chunk: bytes | bytearray | memoryview) -> bytes:
    """The serialized ``UploadStreamRequest(chunk=chunk)``: one copy of ``chunk``."""
    return _CHUNK_TAG + _varint_bytes(len(chunk)) + chunk


def encode_header(header: pb.UploadStreamHeader) -> bytes:
    """The serialized ``UploadStreamRequest(header=header)``."""
    raw = header.SerializeToString()
    return _HEADER_TAG + _varint_bytes(len(raw)) + raw


class StreamPart:
    """One decoded ``UploadStreamRequest``: the subset of the message API the servicer uses
    (``WhichOneof("part")``, ``header``, ``chunk``). ``chunk`` is a read-only memoryview over
    the received (immutable) bytes."""

    __slots__ = ("_which", "chunk", "header")

    def __init__(self, which: str | None, header: Any = None, chunk: Any = b"") -> None:
        self._which = which
        self.header = header if header is not None else pb.UploadStreamHeader()
        self.chunk = chunk

    def WhichOneof(self, name: str) -> str | None:  # noqa: N802 (protobuf's spelling)
        if name != "part":
            raise ValueError(f"UploadStreamRequest has no oneof named {name!r}")
        return self._which


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a varint at ``pos``; returns (value, next position). IndexError/ValueError on a
    truncated or oversized varint."""
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fallback(data: bytes) -> StreamPart:
    msg = pb.UploadStreamRequest.FromString(data)
    which = msg.WhichOneof("part")
    return StreamPart(which, msg.header if which == "header" else None,
                      msg.chunk if which == "chunk" else b"")


def parse_stream_part(data: bytes) -> StreamPart:
    """Decode one serialized ``UploadStreamRequest`` (see the module docstring)."""
    if not isinstance(data, bytes):
        data = bytes(data)
    view = memoryview(data)
    which: str | None = None
    header_raw: bytes | None = None
    chunk: Any = b""
    pos, end = 0, len(data)
    try:
        while pos < end:
            tag, pos = _varint(data, pos)
            field, wire = tag >> 3, tag & 7
            if wire == 2:
                length, pos = _varint(data, pos)
                if pos + length > end:
                    return _fallback(data)  # truncated: the generated parser's error
                if field == _CHUNK_FIELD:
                    which, chunk, header_raw = "chunk", view[pos:pos + length], None
                elif field == _HEADER_FIELD:
                    # protobuf merges repeated occurrences of a message field: rare, let it
                    if header_raw is not None:
                        return _fallback(data)
                    which, header_raw, chunk = "header", data[pos:pos + length], b""
                pos += length
            elif wire == 0:
                _, pos = _varint(data, pos)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            else:
                return _fallback(data)
            if field == 0 or pos > end:
                return _fallback(data)
    except (IndexError, ValueError):
        return _fallback(data)
    header = pb.UploadStreamHeader.FromString(header_raw) if header_raw is not None else None
    return StreamPart(which, header, chunk)
