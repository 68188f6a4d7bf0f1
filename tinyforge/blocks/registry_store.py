"""The organization's registry of custom blocks: register, get, list, versions, delete.

A block is registered under an org-unique ``name`` (a lower-case slug; impulses reference DSP
blocks as ``custom:NAME`` or ``custom:NAME@VERSION``). Each registration of a name adds an
immutable version holding:

- ``image``: an OCI image reference (``HOST[:PORT]/path:tag``), and its manifest ``digest``
  (``sha256:...``) when known, which then pins what runs;
- the block's ``parameters.json`` (validated by :func:`tinyforge.blocks.manifest.parse_manifest`
  and stored in canonical form);
- optionally a source archive (tar.gz of the block directory, see :func:`pack_block_source`) so
  a block with ``info.localCommand`` can run as a plain process where podman cannot.

A version needs an image or a source archive (something to run). Old versions stay readable;
deleting removes one version or the whole block. Every read is scoped to one organization:
another organization's blocks are invisible (NotFound), never merely forbidden.

Object keys: ``orgs/{org_id}/blocks/{block_id}/v{version}/source.tar.gz``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tinyforge.accounts.orgs import get_org
from tinyforge.blocks.manifest import BLOCK_TYPES, BlockManifest, parse_manifest
from tinyforge.errors import FailedPrecondition, InvalidArgument, NotFound
from tinyforge.store.models import Block, BlockVersion

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
#: compressed size limit of a source archive, bytes
MAX_SOURCE_BYTES = 16 * 1024 * 1024
#: uncompressed size / member count limits of a source archive
MAX_SOURCE_UNPACKED = 64 * 1024 * 1024
MAX_SOURCE_FILES = 2000
SOURCE_CONTENT_TYPE = "application/gzip"
#: directory names never packed into a source archive
_SKIP_DIRS = {"__pycache__", ".git", ".venv", "node_modules", ".mypy_cache", ".pytest_cache"}

# OCI distribution reference grammar (docker/distribution reference.go), written out here.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:localhost|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:]+\])(?::[0-9]{1,5})?"  # noqa: E501
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"sha256:[0-9a-f]{64}"
_IMAGE_RE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_DIGEST_RE = re.compile(rf"^{_DIGEST}$")


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference. ``domain`` is None when the first component is no host."""

    domain: str | None
    path: str
    tag: str | None
    digest: str | None

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def pinned(self, digest: str | None = None) -> str:
        """``repository@digest`` when a digest is known (what runs), else ``repository:tag``."""
        d = digest or self.digest
        if d:
            return f"{self.repository}@{d}"
        return f"{self.repository}:{self.tag or 'latest'}"


def parse_image_ref(ref: str, field: str = "image") -> ImageRef:
    """Validate an OCI image reference ``[HOST[:PORT]/]path[:tag][@sha256:...]``.

    Raises InvalidArgument(field) naming what is wrong: empty, too long, upper-case or other
    characters a repository path may not hold, a bad tag or digest.
    """
    if not isinstance(ref, str) or not ref:
        raise InvalidArgument("image reference is empty", field=field)
    if len(ref) > 512:
        raise InvalidArgument(f"image reference is {len(ref)} characters; at most 512",
                              field=field)  # fmt: skip
    m = _IMAGE_RE.match(ref)
    if m is None:
        raise InvalidArgument(
            f"image reference {ref!r} is malformed: expected [HOST[:PORT]/]path[:tag]"
            "[@sha256:<64 hex>] with a lower-case path of [a-z0-9] separated by . _ - /, "
            "e.g. 127.0.0.1:5000/tinyforge-blocks/zcr:1",
            field=field,
        )
    domain = m.group("domain")
    if domain is not None and "." not in domain and ":" not in domain and domain != "localhost":
        # a first component without '.', ':' or 'localhost' is a path component, not a host
        if not re.fullmatch(_COMPONENT, domain):
            raise InvalidArgument(f"image reference {ref!r} is malformed: {domain!r} is neither "
                                  "a registry host nor a lower-case path component",
                                  field=field)  # fmt: skip
        return ImageRef(None, f"{domain}/{m.group('path')}", m.group("tag"), m.group("digest"))
    return ImageRef(domain, m.group("path"), m.group("tag"), m.group("digest"))


def check_digest(digest: str, field: str = "image_digest") -> str:
    """``""`` or a ``sha256:<64 lower-case hex>`` manifest digest (InvalidArgument otherwise)."""
    if digest and not _DIGEST_RE.match(digest):
        raise InvalidArgument(f"digest {digest!r} must be sha256:<64 lower-case hex digits>",
                              field=field)  # fmt: skip
    return digest


def check_name(name: str, field: str = "name") -> str:
    """A registry name: 1-64 of [a-z0-9._-], starting with a letter or digit."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidArgument(
            f"block name {name!r} must be 1-64 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (e.g. zcr-bands)",
            field=field,
        )
    return name


def slug(text: str) -> str:
    """A registry name from a free-form name ("ZCR and band energies" -> zcr-and-band-energies)."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:64].strip("-")
    return s or "block"


# -- source archives ------------------------------------------------------------------------------
def pack_block_source(directory: Path) -> bytes:
    """A deterministic tar.gz of a block directory (regular files only; caches and VCS skipped).

    Raises InvalidArgument(field=source) when it holds too many files or is over
    :data:`MAX_SOURCE_BYTES` compressed.
    """
    directory = Path(directory).resolve()
    if not (directory / "parameters.json").is_file():
        raise InvalidArgument(f"{directory} has no parameters.json", field="source")
    files: list[Path] = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for n in sorted(names):
            p = Path(root) / n
            if p.is_file() and not p.is_symlink() and not n.endswith((".pyc", ".pyo")):
                files.append(p)
    if len(files) > MAX_SOURCE_FILES:
        raise InvalidArgument(f"{directory} holds {len(files)} files; a block source may hold "
                              f"at most {MAX_SOURCE_FILES}", field="source")  # fmt: skip
    buf = io.BytesIO()
    # mtime 0 in the gzip header and every member: equal directories give equal archives
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=6, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for p in files:
            info = tarfile.TarInfo(p.relative_to(directory).as_posix())
            info.size = p.stat().st_size
            info.mode = 0o755 if os.access(p, os.X_OK) else 0o644
            info.mtime = 0
            with p.open("rb") as fh:
                tar.addfile(info, fh)
    data = buf.getvalue()
    if len(data) > MAX_SOURCE_BYTES:
        raise InvalidArgument(f"the block source archive is {len(data)} bytes; at most "
                              f"{MAX_SOURCE_BYTES}", field="source")  # fmt: skip
    return data


def _check_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    if len(members) > MAX_SOURCE_FILES:
        raise InvalidArgument(f"source archive holds {len(members)} entries; at most "
                              f"{MAX_SOURCE_FILES}", field="source")  # fmt: skip
    total = 0
    for m in members:
        parts = m.name.split("/")
        if (m.name.startswith("/") or ".." in parts or "\\" in m.name
                or not (m.isfile() or m.isdir())):  # fmt: skip
            raise InvalidArgument(f"source archive entry {m.name!r} is not a plain relative "
                                  "file or directory", field="source")  # fmt: skip
        total += m.size
    if total > MAX_SOURCE_UNPACKED:
        raise InvalidArgument(f"source archive unpacks to {total} bytes; at most "
                              f"{MAX_SOURCE_UNPACKED}", field="source")  # fmt: skip
    return members


def check_source_archive(data: bytes) -> None:
    """Validate a source archive (tar.gz of plain relative files holding parameters.json)."""
    if len(data) > MAX_SOURCE_BYTES:
        raise InvalidArgument(f"source archive is {len(data)} bytes; at most {MAX_SOURCE_BYTES}",
                              field="source")  # fmt: skip
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            names = {m.name for m in _check_members(tar)}
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InvalidArgument(f"source archive is not a valid tar.gz: {exc}",
                              field="source") from None
    if "parameters.json" not in names:
        raise InvalidArgument("source archive has no parameters.json at its top level",
                              field="source")


def unpack_source(data: bytes, dest: Path) -> None:
    """Extract a checked source archive into the new directory ``dest`` (temp + rename)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            _check_members(tar)
            tar.extractall(tmp, filter="data")
        try:
            os.rename(tmp, dest)
        except OSError:
            if not dest.is_dir():  # another process won the race: its copy is identical
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# -- the registry ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RegisteredBlock:
    """One version of a registered block, detached from the DB session."""

    org_id: int
    block_id: int
    name: str
    type: str
    version: int
    latest_version: int
    versions: int
    image: str
    image_digest: str
    manifest: BlockManifest
    source_key: str
    source_sha256: str
    created_at: datetime

    @property
    def reference(self) -> str:
        """How an impulse pins this version: ``custom:NAME@VERSION``."""
        return f"custom:{self.name}@{self.version}"

    @property
    def run_image(self) -> str | None:
        """The image to run (pinned by digest when known), or None without an image."""
        if not self.image:
            return None
        return parse_image_ref(self.image).pinned(self.image_digest or None)

    @property
    def identity(self) -> str:
        """sha256 of everything that determines what this version computes."""
        text = json.dumps([self.manifest.to_json(), self.image, self.image_digest,
                           self.source_sha256], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def manifest_json(self) -> str:
        return json.dumps(self.manifest.to_json(), sort_keys=True)


def source_key(org_id: int, block_id: int, version: int) -> str:
    return f"orgs/{org_id}/blocks/{block_id}/v{version}/source.tar.gz"


def _detached(row: Block, ver: BlockVersion, count: int) -> RegisteredBlock:
    return RegisteredBlock(
        org_id=row.org_id, block_id=row.id, name=row.name, type=row.type, version=ver.version,
        latest_version=row.latest_version, versions=count, image=ver.image,
        image_digest=ver.image_digest, manifest=parse_manifest(ver.manifest),
        source_key=ver.source_key, source_sha256=ver.source_sha256, created_at=ver.created_at)


def _row(s: Session, org_id: int, name: str, *, lock: bool = False) -> Block | None:
    q = select(Block).where(Block.org_id == org_id, Block.name == name)
    if lock:
        q = q.with_for_update()
    return s.scalar(q)


def _existing(s: Session, org_id: int, name: str) -> Block:
    check_name(name)
    row = _row(s, org_id, name)
    if row is None:
        raise NotFound(f"block {name!r} is not registered in organization {org_id}",
                       field="name")
    return row


def _count(s: Session, block_id: int) -> int:
    return int(s.scalar(select(func.count()).select_from(BlockVersion)
                        .where(BlockVersion.block_id == block_id)) or 0)


def _version_row(s: Session, row: Block, version: int) -> BlockVersion:
    if version < 0:
        raise InvalidArgument(f"version must be >= 0 (0 = latest), got {version}",
                              field="version")
    q = select(BlockVersion).where(BlockVersion.block_id == row.id)
    if version:
        ver = s.scalar(q.where(BlockVersion.version == version))
    else:
        ver = s.scalar(q.order_by(BlockVersion.version.desc()).limit(1))
    if ver is None:
        have = [v for (v,) in s.execute(select(BlockVersion.version)
                                        .where(BlockVersion.block_id == row.id)
                                        .order_by(BlockVersion.version))]
        raise NotFound(f"block {row.name!r} has no version {version}; versions: "
                       f"{', '.join(map(str, have)) or 'none'}", field="version")
    return ver


def register_block(
    s: Session,
    objects: Any,
    org_id: int,
    *,
    manifest: str | bytes | dict[str, Any] | BlockManifest,
    name: str = "",
    image: str = "",
    image_digest: str = "",
    source_archive: bytes = b"",
    created_by_key_id: int | None = None,
) -> RegisteredBlock:
    """Register a new version of block ``name`` (default: a slug of ``info.name``) in an org.

    ``manifest`` is the block's ``parameters.json``; ``image`` an OCI reference (a digest in it
    or in ``image_digest`` pins the version); ``source_archive`` a tar.gz of the block
    directory (needed to run its ``info.localCommand``). Raises InvalidArgument naming the
    field (``parameters.*``, ``image``, ``image_digest``, ``source``, ``name``), and
    InvalidArgument(field=type) when a new version would change the block's type.
    """
    get_org(s, org_id)
    m = manifest if isinstance(manifest, BlockManifest) else parse_manifest(manifest)
    name = check_name(name or slug(m.name))
    ref = parse_image_ref(image) if image else None
    check_digest(image_digest)
    if ref is not None and ref.digest and image_digest and ref.digest != image_digest:
        raise InvalidArgument(f"image_digest {image_digest} differs from the digest in the "
                              f"image reference ({ref.digest})", field="image_digest")
    digest = image_digest or (ref.digest if ref else "") or ""
    if source_archive:
        check_source_archive(source_archive)
    if ref is None and not source_archive:
        raise InvalidArgument("a block needs an image reference or a source archive "
                              "(with info.localCommand) to run", field="image")
    if ref is None and m.local_command is None:
        raise InvalidArgument("without an image the block must declare info.localCommand",
                              field="info.localCommand")
    row = _row(s, org_id, name, lock=True)
    if row is None:
        row = Block(org_id=org_id, name=name, type=m.type, latest_version=0)
        s.add(row)
        try:
            s.flush()
        except IntegrityError:  # a concurrent first registration of the name won the race
            raise FailedPrecondition(f"block {name!r} was registered concurrently; retry",
                                     field="name") from None
    if row.type != m.type:
        raise InvalidArgument(
            f"block {name!r} is a {row.type} block; a new version must keep that type "
            f"(parameters.json says {m.type}); register it under another name",
            field="type",
        )
    row.latest_version += 1
    version = row.latest_version
    key, sha = "", ""
    if source_archive:
        key = source_key(org_id, row.id, version)
        sha = hashlib.sha256(source_archive).hexdigest()
        # a leftover from a registration whose transaction failed may sit at this key
        objects.put_bytes(key, source_archive, content_type=SOURCE_CONTENT_TYPE,
                          overwrite=True)
    # an untagged reference means :latest; store it spelled out
    stored_image = "" if ref is None else image if (ref.tag or ref.digest) else ref.pinned()
    ver = BlockVersion(block_id=row.id, version=version, image=stored_image,
                       image_digest=digest, manifest=json.dumps(m.to_json(), sort_keys=True),
                       source_key=key, source_sha256=sha, created_by_key_id=created_by_key_id)
    s.add(ver)
    try:
        s.flush()
    except IntegrityError:
        if key:
            objects.delete(key)
        raise FailedPrecondition(f"block {name!r} version {version} was registered "
                                 "concurrently; retry", field="name") from None
    return _detached(row, ver, _count(s, row.id))


def get_registered_block(s: Session, org_id: int, name: str, version: int = 0) -> RegisteredBlock:
    """Version ``version`` (0 = latest) of block ``name`` of an org; NotFound otherwise."""
    row = _existing(s, org_id, name)
    return _detached(row, _version_row(s, row, version), _count(s, row.id))


def list_registered_blocks(s: Session, org_id: int, block_type: str = "") -> list[RegisteredBlock]:
    """Latest version of every block of an org (optionally of one type), by name."""
    get_org(s, org_id)
    if block_type and block_type not in BLOCK_TYPES:
        raise InvalidArgument(f"type {block_type!r} is not one of {', '.join(BLOCK_TYPES)}",
                              field="type")
    q = select(Block).where(Block.org_id == org_id).order_by(Block.name)
    if block_type:
        q = q.where(Block.type == block_type)
    return [_detached(r, _version_row(s, r, 0), _count(s, r.id)) for r in s.scalars(q)]


def list_block_versions(s: Session, org_id: int, name: str) -> list[RegisteredBlock]:
    """Every version of block ``name``, oldest first."""
    row = _existing(s, org_id, name)
    vers = list(s.scalars(select(BlockVersion).where(BlockVersion.block_id == row.id)
                          .order_by(BlockVersion.version)))
    return [_detached(row, v, len(vers)) for v in vers]


def delete_registered_block(s: Session, org_id: int, name: str,
                            version: int = 0) -> tuple[int, list[str]]:
    """Delete one version (``version`` > 0) or the whole block (0).

    Returns (versions deleted, object keys to delete once the transaction committed). Deleting
    the last version deletes the block. Impulses that reference it fail validation afterwards
    with NotFound naming the block.
    """
    row = _existing(s, org_id, name)
    if version < 0:
        raise InvalidArgument(f"version must be >= 0 (0 = every version), got {version}",
                              field="version")
    # explicit statements in FK order (the models declare no ORM relationship between them)
    q = delete(BlockVersion).where(BlockVersion.block_id == row.id)
    if version:
        ver = _version_row(s, row, version)
        keys = [ver.source_key] if ver.source_key else []
        s.execute(q.where(BlockVersion.id == ver.id))
        if _count(s, row.id):
            return 1, keys
        s.execute(delete(Block).where(Block.id == row.id))
        return 1, keys
    keys = [k for (k,) in s.execute(select(BlockVersion.source_key)
                                    .where(BlockVersion.block_id == row.id)) if k]
    n = _count(s, row.id)
    s.execute(q)
    s.execute(delete(Block).where(Block.id == row.id))
    return n, keys
