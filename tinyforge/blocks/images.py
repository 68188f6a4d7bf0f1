"""Build, push and inspect block images with podman.

``podman build --pull=never --network=none`` builds a block directory's Dockerfile ``FROM`` a
locally bootstrapped base (passed as the ``BASE_IMAGE`` build argument), and stores the
block's validated ``parameters.json`` in the image as the label
:data:`LABEL_PARAMETERS`, so an image pulled from a registry describes itself: the runner reads
the block's type, parameters and resources from the image alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from tinyforge.blocks.containers import BASE_IMAGE, BUSYBOX_IMAGE, ensure_base_image
from tinyforge.blocks.containers import ensure_busybox_image as _ensure_busybox
from tinyforge.blocks.errors import BlockFailed
from tinyforge.blocks.manifest import BlockManifest, load_manifest, parse_manifest
from tinyforge.errors import InvalidArgument, NotFound
from tinyforge.workflows.executors import run_process
from tinyforge.workflows.podman import (
    image_exists,
    is_loopback_registry,
    podman,
    podman_env,
    registry_host,
)

LABEL_PARAMETERS = "io.tinyforge.block.parameters"
LABEL_TYPE = "io.tinyforge.block.type"
#: Repository prefix of block images (local tags and registry paths).
REPO_PREFIX = "tinyforge-blocks"
_REF_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_REGISTRY_RE = re.compile(r"^(localhost|[A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(:\d{1,5})?$")


def block_slug(manifest: BlockManifest) -> str:
    """The image repository name of a block: its name lower-cased, runs of others as ``-``."""
    slug = re.sub(r"[^a-z0-9]+", "-", manifest.name.lower()).strip("-")
    return slug or "block"


def default_image_ref(manifest: BlockManifest, tag: str = "latest") -> str:
    """Local image reference of a block: ``localhost/tinyforge-blocks/<slug>:<tag>``."""
    return f"localhost/{REPO_PREFIX}/{block_slug(manifest)}:{tag}"


def check_registry(registry: str) -> str:
    """Validate ``HOST[:PORT]``; raise InvalidArgument(field=registry) otherwise."""
    if not _REGISTRY_RE.match(registry):
        raise InvalidArgument(
            f"registry {registry!r} is not HOST[:PORT] (e.g. 127.0.0.1:5000)", field="registry"
        )
    return registry


def build_block_image(
    block_dir: Path,
    *,
    tag: str = "latest",
    base_image: str | None = None,
    log: Callable[[str], None] | None = None,
) -> str:
    """Build ``block_dir``'s Dockerfile into :func:`default_image_ref`; returns the reference.

    ``base_image`` (default :data:`~tinyforge.blocks.containers.BASE_IMAGE`) is passed as
    ``--build-arg BASE_IMAGE``; the two bases TinyForge knows are bootstrapped when missing.
    Raises InvalidArgument for a bad directory/manifest, BlockFailed with the build log tail.
    """
    block_dir = Path(block_dir)
    manifest = load_manifest(block_dir)
    if not _TAG_RE.match(tag):
        raise InvalidArgument(f"tag {tag!r} must be 1-128 of [A-Za-z0-9_.-]", field="tag")
    dockerfile = block_dir / "Dockerfile"
    if not dockerfile.is_file():
        raise InvalidArgument(f"{block_dir} has no Dockerfile", field="Dockerfile")
    base = base_image or BASE_IMAGE
    if base == BASE_IMAGE:
        ensure_base_image(base, log=log)
    elif base == BUSYBOX_IMAGE:
        _ensure_busybox(base)
    elif not image_exists(base):
        raise NotFound(
            f"base image {base!r} is not in local storage (registries cannot be pulled from "
            "here; bootstrap a base with `tinyforge blocks setup`)",
            field="base_image",
        )
    ref = default_image_ref(manifest, tag)
    previous = _image_id(ref)
    argv = [
        "podman", "build", "--pull=never", "--network=none",
        "--build-arg", f"BASE_IMAGE={base}",
        "--label", f"{LABEL_PARAMETERS}={json.dumps(manifest.to_json(), sort_keys=True)}",
        "--label", f"{LABEL_TYPE}={manifest.type}",
        "-t", ref, "-f", str(dockerfile.resolve()), str(block_dir.resolve()),
    ]  # fmt: skip
    proc = run_process(
        argv,
        env=podman_env(),
        cwd=block_dir.resolve(),
        timeout_s=3600,
        log=log or (lambda _line: None),
        cancelled=lambda: False,
    )
    if proc.exit_code != 0:
        raise BlockFailed(
            f"podman build of block {manifest.name!r} failed (exit {proc.exit_code})",
            log_tail=proc.tail,
        )
    if previous and previous != _image_id(ref):
        # The rebuilt tag moved; drop the now untagged old image (fails harmlessly if in use).
        podman("rmi", previous, check=False, timeout=120)
    return ref


def _image_id(ref: str) -> str | None:
    proc = podman("image", "inspect", "--format", "{{.Id}}", ref, check=False, timeout=60)
    return proc.stdout.decode().strip() or None if proc.returncode == 0 else None


def push_block_image(ref: str, registry: str, *, log: Callable[[str], None] | None = None) -> str:
    """Push local image ``ref`` to ``registry`` (HOST:PORT); returns the remote reference.

    The remote reference keeps the repository path and tag after the registry host
    (``localhost/tinyforge-blocks/x:1`` -> ``HOST:PORT/tinyforge-blocks/x:1``). TLS verification is
    off only for a loopback registry.
    """
    check_registry(registry)
    if not image_exists(ref):
        raise NotFound(f"image {ref!r} is not in local storage; build it first", field="image")
    path = ref.split("/", 1)[1] if registry_host(ref) else ref
    remote = f"{registry}/{path}"
    tls = "false" if is_loopback_registry(registry) else "true"
    if log:
        log(f"pushing {ref} -> {remote}")
    proc = podman("push", f"--tls-verify={tls}", ref, remote, check=False, timeout=1800)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise BlockFailed(
            f"podman push of {ref} to {registry} failed (exit {proc.returncode})",
            log_tail=err,
        )
    return remote


def manifest_from_image(ref: str) -> BlockManifest:
    """The block manifest stored in local image ``ref``'s :data:`LABEL_PARAMETERS` label."""
    proc = podman(
        "image", "inspect", "--format", f'{{{{index .Labels "{LABEL_PARAMETERS}"}}}}', ref,
        check=False, timeout=60,
    )  # fmt: skip
    if proc.returncode != 0:
        raise NotFound(f"image {ref!r} is not in local storage", field="image")
    raw = proc.stdout.decode().strip()
    if not raw or raw == "<no value>":
        raise InvalidArgument(
            f"image {ref!r} has no {LABEL_PARAMETERS} label: build it with "
            "`tinyforge blocks build DIR` so it carries its parameters.json",
            field="image",
        )
    return parse_manifest(raw)


def remove_image(ref: str) -> None:
    """Remove ``ref`` from local storage (no error when it is absent)."""
    podman("rmi", "--force", ref, check=False, timeout=120)
