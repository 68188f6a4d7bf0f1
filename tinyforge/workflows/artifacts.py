"""S3 artifacts for the local runner: what Argo's artifact repository does in the cluster.

A template may declare ``inputs.artifacts``/``outputs.artifacts`` located by an S3 key only
(``s3: {key: ...}``); Argo fills in the bucket, endpoint and credentials from the namespace's
default artifact repository (the Helm chart's ``artifact-repositories`` ConfigMap points it at
the platform's bucket). The local runner gets an :class:`ArtifactStore` instead, usually
:class:`ObjectStoreArtifacts` over the platform's own object store, so the same keys name the
same objects in both modes.

Semantics follow Argo's S3 driver for ``archive: {none: {}}``:

- input: a key holding an object is downloaded as that file; otherwise every object under
  ``KEY/`` is downloaded into a directory, keeping the relative paths;
- output: a file is uploaded to the key; a directory's files are uploaded under ``KEY/`` with
  their relative paths (an empty directory uploads nothing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class ArtifactError(Exception):
    """An artifact could not be fetched or stored; the message names the key or file."""


class ArtifactStore(Protocol):
    """Where key-located S3 artifacts live for the local runner."""

    def fetch(self, key: str, dest: Path) -> int:
        """Download the object ``key`` to the file ``dest``, or every object under ``key/``
        into the directory ``dest``; returns the number of files. ArtifactError when nothing
        is stored there."""
        ...

    def store(self, src: Path, key: str) -> int:
        """Upload the file ``src`` to ``key``, or each file under the directory ``src`` to
        ``key/RELATIVE/PATH``; returns the number of objects written."""
        ...


class ObjectStoreArtifacts:
    """:class:`ArtifactStore` over a :class:`tinyforge.store.objects.ObjectStore`."""

    def __init__(self, objects: Any) -> None:
        self.objects = objects

    def fetch(self, key: str, dest: Path) -> int:
        from tinyforge.errors import TinyForgeError

        key = key.strip()
        dest = Path(dest)
        try:
            if key and not key.endswith("/") and self.objects.exists(key):
                self.objects.download_to(key, dest)
                return 1
            prefix = key.rstrip("/") + "/"
            dest.mkdir(parents=True, exist_ok=True)
            n = 0
            for info in self.objects.list(prefix):
                rel = info.key[len(prefix) :]
                self.objects.download_to(info.key, dest / rel)
                n += 1
        except TinyForgeError as exc:
            raise ArtifactError(f"cannot download {key!r}: {exc.message}") from None
        if n == 0:
            raise ArtifactError(f"no object at {key!r} and none under {prefix!r}")
        return n

    def store(self, src: Path, key: str) -> int:
        from tinyforge.errors import TinyForgeError

        src = Path(src)
        key = key.strip().rstrip("/")
        if src.is_file():
            pairs = [(src, key)]
        elif src.is_dir():
            pairs = [
                (p, f"{key}/{p.relative_to(src).as_posix()}")
                for p in sorted(src.rglob("*"))
                if p.is_file()
            ]
        else:
            raise ArtifactError(f"{src} does not exist")
        for path, k in pairs:
            try:
                with path.open("rb") as fh:
                    self.objects.put_stream(k, fh, overwrite=True)
            except TinyForgeError as exc:
                rel = path.name if path == src else path.relative_to(src).as_posix()
                raise ArtifactError(f"cannot store {rel!r} as {k!r}: {exc.message}") from None
        return len(pairs)
