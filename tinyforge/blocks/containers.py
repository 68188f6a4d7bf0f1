"""Base images for block containers, built on this machine (no registry can be pulled from).

Two bases, both made from local files and imported with ``podman import``:

- :data:`BASE_IMAGE` — Debian bookworm ``debootstrap --variant=minbase`` plus ``python3`` and
  ``python3-numpy`` (Debian's apt mirror is reachable; container registries are not). The
  example blocks and ``tinyforge blocks init`` scaffolds build ``FROM`` it.
- :data:`BUSYBOX_IMAGE` — a busybox-static root filesystem (a few hundred kB, imported in well
  under a second), for shell-only blocks and fast tests of the container machinery.

Both functions are idempotent: an image already in podman's storage is reused, and the
debootstrap root filesystem is kept as a tarball in the cache so re-importing after a storage
reset takes seconds, not a fresh download. A file lock serialises concurrent builders.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from tinyforge.errors import FailedPrecondition
from tinyforge.workflows.podman import cache_dir, image_exists, podman

BASE_IMAGE = os.environ.get("TINYFORGE_BLOCK_BASE_IMAGE", "localhost/tinyforge/block-base:bookworm")
BUSYBOX_IMAGE = "localhost/tinyforge/busybox:latest"
#: Debian packages added to the minbase root filesystem of :data:`BASE_IMAGE`.
BASE_PACKAGES = ("python3", "python3-numpy", "ca-certificates")
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("TINYFORGE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
_BUSYBOX_APPLETS = (
    "sh", "ls", "cat", "echo", "cp", "mv", "rm", "mkdir", "head", "tail", "sleep", "tr",
    "wc", "find", "env", "true", "false", "test", "printf", "sed", "awk", "grep", "seq",
)  # fmt: skip

_IMAGE_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    "WORKDIR /",
)


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    lock = cache_dir() / f"{name}.lock"
    with lock.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _import_tar(tar: Path, ref: str, cmd: str) -> None:
    changes: list[str] = []
    for c in (*_IMAGE_CHANGES, f"CMD {cmd}"):
        changes += ["--change", c]
    podman("import", *changes, str(tar), ref, timeout=1800)


def ensure_busybox_image(ref: str = BUSYBOX_IMAGE) -> str:
    """Import a busybox-static root filesystem as ``ref`` unless it exists; returns ``ref``."""
    if image_exists(ref):
        return ref
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not Path(busybox).is_file():
        raise FailedPrecondition(
            "busybox is not installed: scripts/install-system-deps.sh installs busybox-static",
            field="busybox",
        )
    with _locked("busybox"), tempfile.TemporaryDirectory(prefix="tf-busybox-") as tmp:
        if image_exists(ref):
            return ref
        root = Path(tmp) / "rootfs"
        for d in ("bin", "tmp", "etc", "work"):
            (root / d).mkdir(parents=True)
        shutil.copy2(busybox, root / "bin" / "busybox")
        for applet in _BUSYBOX_APPLETS:
            (root / "bin" / applet).symlink_to("busybox")
        (root / "tmp").chmod(0o1777)
        tar = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(root), "-cf", str(tar), "."], check=True)
        _import_tar(tar, ref, '["/bin/sh"]')
    return ref


def base_rootfs_tarball(log: Callable[[str], None] | None = None) -> Path:
    """The cached debootstrap root filesystem tarball of :data:`BASE_IMAGE`, built if absent.

    Takes a few minutes the first time (downloads ~60 MB of .debs from the Debian mirror).
    """
    tar = cache_dir() / "bases" / f"block-base-{DEBIAN_SUITE}.tar"
    if tar.is_file():
        return tar
    if shutil.which("debootstrap") is None:
        raise FailedPrecondition(
            "debootstrap is not installed: scripts/install-system-deps.sh installs it",
            field="debootstrap",
        )
    tar.parent.mkdir(parents=True, exist_ok=True)
    with _locked("block-base"):
        if tar.is_file():
            return tar
        with tempfile.TemporaryDirectory(prefix="tf-debootstrap-", dir=tar.parent) as tmp:
            root = Path(tmp) / "rootfs"
            if log:
                log(f"debootstrap --variant=minbase {DEBIAN_SUITE} (+{','.join(BASE_PACKAGES)})")
            proc = subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(BASE_PACKAGES)}",
                    DEBIAN_SUITE,
                    str(root),
                    DEBIAN_MIRROR,
                ],
                capture_output=True,
                text=True,
                timeout=1800,
                check=False,
            )
            if proc.returncode != 0:
                tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
                raise FailedPrecondition(
                    f"debootstrap failed (exit {proc.returncode}):\n{tail}", field="debootstrap"
                )
            # Downloaded .debs and apt lists are not needed in the image.
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for f in (root / junk).glob("*"):
                    if f.is_file():
                        f.unlink()
            partial = tar.with_suffix(".tar.partial")
            subprocess.run(
                [
                    "tar", "-C", str(root), "--numeric-owner",
                    "--exclude=./proc/*", "--exclude=./sys/*", "--exclude=./dev/*",
                    "-cf", str(partial), ".",
                ],
                check=True,
            )  # fmt: skip
            partial.replace(tar)
    return tar


def ensure_base_image(ref: str = BASE_IMAGE, log: Callable[[str], None] | None = None) -> str:
    """Make sure the Debian+Python base image ``ref`` exists in podman storage; returns ``ref``.

    Idempotent and cached (see module docstring). Raises FailedPrecondition naming the missing
    tool or the debootstrap error.
    """
    if image_exists(ref):
        return ref
    tar = base_rootfs_tarball(log)
    with _locked("block-base-import"):
        if not image_exists(ref):
            if log:
                log(f"importing {tar} as {ref}")
            _import_tar(tar, ref, '["/bin/bash"]')
    return ref


TF_BASE_IMAGE = "localhost/tinyforge/block-base-tf:bookworm"
#: Distributions whose installed files (and dependencies') make up the TensorFlow base.
TF_ROOT_DISTRIBUTIONS = ("tensorflow-cpu", "tensorflow")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def tensorflow_closure() -> list[importlib.metadata.Distribution]:
    """The installed TensorFlow distribution and everything it requires (no extras), by metadata.

    Raises FailedPrecondition when TensorFlow is not installed in this interpreter.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    index = {_norm(d.metadata["Name"]): d for d in importlib.metadata.distributions()}
    roots = [_norm(n) for n in TF_ROOT_DISTRIBUTIONS if _norm(n) in index]
    if not roots:
        raise FailedPrecondition(
            "TensorFlow is not installed in this Python environment", field="tensorflow"
        )
    seen: dict[str, importlib.metadata.Distribution] = {}
    stack = roots[:1]
    while stack:
        name = stack.pop()
        if name in seen or name not in index:
            continue
        seen[name] = index[name]
        for raw in index[name].requires or []:
            try:
                req = Requirement(raw)
            except InvalidRequirement:
                continue
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                stack.append(_norm(req.name))
    return [seen[k] for k in sorted(seen)]


def ensure_tensorflow_base_image(
    ref: str = TF_BASE_IMAGE, log: Callable[[str], None] | None = None
) -> str:
    """Make ``ref``: :data:`BASE_IMAGE` plus this interpreter's TensorFlow and its dependencies.

    TensorFlow cannot be pip-installed inside ``podman build --network=none`` and no registry
    holds a TensorFlow base here, so the installed files of :func:`tensorflow_closure` (same
    CPython 3.11 ABI as Debian's python3) are hard-linked into a build context and copied into
    ``/opt/tinyforge/site-packages`` (on ``PYTHONPATH``). About 1.5 GB; idempotent.
    """
    if image_exists(ref):
        return ref
    base = ensure_base_image(log=log)
    dists = tensorflow_closure()
    with _locked("block-base-tf"):
        if image_exists(ref):
            return ref
        ctx_root = cache_dir() / "bases"
        ctx_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="tf-base-ctx-", dir=ctx_root) as tmp:
            site = Path(tmp) / "site-packages"
            count = 0
            for dist in dists:
                for f in dist.files or []:
                    if ".." in Path(str(f)).parts:  # scripts outside site-packages
                        continue
                    src = Path(str(f.locate()))
                    if not src.is_file() or src.suffix == ".pyc":
                        continue
                    dst = site / str(f)
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        os.link(src, dst)
                    except OSError:  # another filesystem: copy instead
                        shutil.copy2(src, dst)
                    count += 1
            if log:
                log(f"TensorFlow base: {len(dists)} distributions, {count} files")
            (Path(tmp) / "Dockerfile").write_text(
                f"FROM {base}\n"
                "COPY site-packages /opt/tinyforge/site-packages\n"
                "ENV PYTHONPATH=/opt/tinyforge/site-packages TF_CPP_MIN_LOG_LEVEL=2\n"
            )
            proc = podman(
                "build", "--pull=never", "--network=none", "-t", ref, tmp,
                check=False, timeout=3600,
            )  # fmt: skip
            if proc.returncode != 0:
                tail = proc.stderr.decode(errors="replace").strip().splitlines()[-15:]
                raise FailedPrecondition(
                    "building the TensorFlow base failed:\n" + "\n".join(tail),
                    field="tensorflow",
                )
    return ref
