"""Running a registered custom block version on this host: shared by every block type used
inside the platform (custom DSP blocks in feature generation, custom learn blocks in training).

- references: ``custom:NAME`` (the latest registered version, resolved when used) or
  ``custom:NAME@VERSION`` (pinned), see :func:`parse_custom_ref`;
- the engine policy (:func:`choose_engine`): the version's image through podman when it has an
  image and podman works here, else its ``info.localCommand`` run from the stored source
  archive, when local commands are allowed (:func:`local_commands_allowed`);
- :func:`resolved_block`: the :class:`~tinyforge.blocks.run.ResolvedBlock` that
  :func:`tinyforge.blocks.run.run_block` runs for that engine (the source unpacked once per
  content into TinyForge's cache directory).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinyforge.errors import FailedPrecondition, InvalidArgument

if TYPE_CHECKING:
    from tinyforge.blocks.registry_store import RegisteredBlock
    from tinyforge.blocks.run import ResolvedBlock

CUSTOM_PREFIX = "custom:"
_REF_RE = re.compile(
    r"^custom:(?P<name>[a-z0-9][a-z0-9._-]{0,63})(?:@(?P<version>[1-9][0-9]{0,8}))?$")
#: seconds a podman availability check is reused
_PODMAN_CHECK_TTL = 300.0

_podman_state: dict[str, Any] = {}
_lock = threading.Lock()


def is_custom(block: Any) -> bool:
    """Whether a block name (processing ``block`` or learning ``type``) refers to a registered
    custom block."""
    return isinstance(block, str) and block.startswith(CUSTOM_PREFIX)


def parse_custom_ref(block: str, field: str = "block") -> tuple[str, int]:
    """``custom:NAME[@VERSION]`` -> (NAME, VERSION or 0 = latest); InvalidArgument otherwise."""
    m = _REF_RE.match(block or "")
    if m is None:
        raise InvalidArgument(
            f"{block!r} is not a custom block reference: expected custom:NAME or "
            "custom:NAME@VERSION with NAME the registered block name (e.g. custom:zcr-bands@2)",
            field=field,
        )
    return m.group("name"), int(m.group("version") or 0)


def local_commands_allowed() -> bool:
    """Whether registered blocks may run as plain processes on this host.

    ``TINYFORGE_BLOCKS_LOCAL_COMMANDS`` decides; unset, it is allowed with the local object
    store (embedded mode: one user's machine) and refused with MinIO (the shared cluster,
    where only containers isolate a tenant's code).
    """
    raw = os.environ.get("TINYFORGE_BLOCKS_LOCAL_COMMANDS")
    if raw is not None:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    return os.environ.get("TINYFORGE_OBJECT_STORE", "local") == "local"


def podman_reason() -> str | None:
    """Why podman cannot run containers (None when it can); cached for a few minutes."""
    with _lock:
        at = _podman_state.get("at")
        if at is not None and time.monotonic() - at < _PODMAN_CHECK_TTL:
            return _podman_state["reason"]
    from tinyforge.workflows.podman import podman_unavailable_reason

    reason = podman_unavailable_reason()
    with _lock:
        _podman_state.update(at=time.monotonic(), reason=reason)
    return reason


def source_dir(objects: Any, reg: RegisteredBlock) -> Path:
    """The block's source, unpacked once per content into TinyForge's cache directory."""
    from tinyforge.blocks.registry_store import unpack_source
    from tinyforge.workflows.podman import cache_dir

    dest = cache_dir() / "block-sources" / reg.source_sha256
    if not (dest / "parameters.json").is_file():
        data = objects.get_bytes(reg.source_key)
        if hashlib.sha256(data).hexdigest() != reg.source_sha256:
            raise FailedPrecondition(f"the stored source of block {reg.name!r} v{reg.version} "
                                     "does not match its recorded sha256", field="source")
        unpack_source(data, dest)
    return dest


def choose_engine(reg: RegisteredBlock, allow_local: bool | None = None) -> str:
    """How a registered version runs here now: ``podman`` or ``local``; FailedPrecondition
    naming every reason when neither is possible. ``allow_local`` None = the platform policy."""
    allow = local_commands_allowed() if allow_local is None else allow_local
    reasons = []
    if reg.run_image:
        reason = podman_reason()
        if reason is None:
            return "podman"
        reasons.append(f"its image cannot run: {reason}")
    else:
        reasons.append("it has no image")
    if reg.manifest.local_command and reg.source_key:
        if allow:
            return "local"
        reasons.append("local commands are disabled on this platform "
                       "(TINYFORGE_BLOCKS_LOCAL_COMMANDS)")
    else:
        reasons.append("it has no local command with a stored source")
    raise FailedPrecondition(f"block {reg.name!r} v{reg.version} cannot run here: "
                             + "; ".join(reasons), field="block")


def resolved_block(reg: RegisteredBlock, objects: Any, engine: str) -> ResolvedBlock:
    """What :func:`tinyforge.blocks.run.run_block` runs for ``engine`` (from
    :func:`choose_engine`): the pinned image, or the unpacked source with its local command."""
    from tinyforge.blocks.run import ResolvedBlock

    if engine == "podman":
        return ResolvedBlock(reg.manifest, None, reg.run_image)
    return ResolvedBlock(reg.manifest, source_dir(objects, reg), None)
