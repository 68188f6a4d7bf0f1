"""DirectWriter: what reaches the file is exactly what was written, in any chunking; disk
errors reach the caller."""

from __future__ import annotations

import mmap
import os
import random
from pathlib import Path

import pytest

from tinyforge.store.direct_io import DirectWriter, enable_direct

PAGE = mmap.PAGESIZE


def _write(path: Path, pieces: list[bytes], buffer_bytes: int) -> tuple[int, bool]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        direct = enable_direct(fd)
        w = DirectWriter(fd, buffer_bytes)
        try:
            for p in pieces:
                w.write(p)
            n = w.finish()
        finally:
            w.close()
        os.fsync(fd)
    finally:
        os.close(fd)
    return n, direct


@pytest.mark.parametrize(
    "total", [0, 1, PAGE - 1, PAGE, 2 * PAGE, 2 * PAGE + 1, 7 * PAGE + 123, 20 * PAGE]
)
def test_file_holds_exactly_the_bytes_written(tmp_path: Path, total: int) -> None:
    rng = random.Random(total)
    data = rng.randbytes(total)
    # uneven pieces: smaller and larger than a buffer, some crossing buffer boundaries
    pieces, i = [], 0
    while i < total:
        n = rng.choice([1, 17, PAGE - 3, PAGE, 3 * PAGE + 5])
        pieces.append(data[i : i + n])
        i += n
    n, _direct = _write(tmp_path / "f", pieces, 2 * PAGE)
    assert n == total
    assert (tmp_path / "f").read_bytes() == data


def test_memoryview_and_bytearray_pieces(tmp_path: Path) -> None:
    data = os.urandom(5 * PAGE + 9)
    view = memoryview(data)
    pieces = [view[: PAGE + 1], bytearray(data[PAGE + 1 : 3 * PAGE]), view[3 * PAGE :]]
    n, _ = _write(tmp_path / "f", pieces, 2 * PAGE)
    assert n == len(data) and (tmp_path / "f").read_bytes() == data


def test_disk_error_reaches_the_writer(tmp_path: Path) -> None:
    """A write the file refuses (here: a read-only descriptor) raises from write() or
    finish(); close() still returns."""
    (tmp_path / "f").write_bytes(b"")
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    w = DirectWriter(fd, 2 * PAGE)
    try:
        with pytest.raises(OSError):
            for _ in range(4):
                w.write(b"x" * (2 * PAGE))
            w.finish()
    finally:
        w.close()
        os.close(fd)


def test_buffer_size_must_be_whole_pages() -> None:
    with pytest.raises(ValueError, match="multiple"):
        DirectWriter(0, PAGE + 1)
