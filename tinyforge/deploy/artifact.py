"""Pack a staged folder into the build's one zip, atomically (temp file + rename).

Entries are sorted and carry a fixed timestamp, so the same inputs give the same zip bytes;
executables keep their mode bits. A failure leaves no zip (and no temp file) behind.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

_EPOCH = (2020, 1, 1, 0, 0, 0)


def write_zip(stage: Path, dest: Path, top: str | None = None) -> list[str]:
    """Zip the contents of ``stage`` (under the top folder ``top``, default ``stage.name``)
    to ``dest``.

    Returns the names inside the zip.
    """
    files = sorted(p for p in stage.rglob("*") if p.is_file())
    names = []
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for p in files:
                name = f"{top or stage.name}/{p.relative_to(stage).as_posix()}"
                info = zipfile.ZipInfo(name, date_time=_EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (0o755 if os.access(p, os.X_OK) else 0o644) << 16
                zf.writestr(info, p.read_bytes())
                names.append(name)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return names
