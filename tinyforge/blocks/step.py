"""A registered block version as a workflow step of its own (Argo or the local runner).

Pipelines run a custom block as a container of the block's image (see
``hera_workflows.common.block_step_template``): its input downloaded at ``/block/in``, its
output uploaded from ``/block/out`` (S3 artifacts by key), its exact argv and resources in the
step's ``podSpecPatch``. This module computes what a plan step hands that template: the image
(:func:`block_step_image`) and the patch (:func:`pod_spec_patch`).

A version registered without an image (a source archive with ``info.localCommand``) gets the
marker image :func:`local_block_image`; only the local runner can run it
(``hera_workflows/local.py``), and only where local commands are allowed.
"""

from __future__ import annotations

import json

from tinyforge.blocks.limits import limits_from_info
from tinyforge.blocks.registry_store import RegisteredBlock
from tinyforge.errors import FailedPrecondition

#: Image of a registered block version that has no image: ``tinyforge-local-block/ORG/NAME:vN``.
LOCAL_BLOCK_IMAGE = "tinyforge-local-block"


def local_block_image(reg: RegisteredBlock) -> str:
    """The :data:`LOCAL_BLOCK_IMAGE` reference of a version without an image."""
    return f"{LOCAL_BLOCK_IMAGE}/{reg.org_id}/{reg.name}:v{reg.version}"


def parse_local_block_image(image: str) -> tuple[int, str, int] | None:
    """(org id, name, version) of a :func:`local_block_image` reference, else None."""
    head, _s, rest = image.partition("/")
    if head != LOCAL_BLOCK_IMAGE:
        return None
    org, _s, name_v = rest.partition("/")
    name, _s, v = name_v.rpartition(":v")
    if not (org.isdigit() and name and v.isdigit()):
        return None
    return int(org), name, int(v)


def pod_spec_patch(args: list[str], reg: RegisteredBlock) -> str:
    """The ``podSpecPatch`` of a block step (JSON): the main container's args and resources
    (``info.resources`` of the block, platform defaults for the rest) and the pod deadline."""
    lim = limits_from_info(reg.manifest.info).resolved()
    assert lim.memory_mb is not None and lim.cpus is not None and lim.timeout_s is not None
    quantity = {"cpu": f"{lim.cpus:g}", "memory": f"{lim.memory_mb}Mi"}
    patch = {
        "containers": [
            {"name": "main", "args": args, "resources": {"requests": quantity, "limits": quantity}}
        ],
        "activeDeadlineSeconds": int(lim.timeout_s),
    }
    return json.dumps(patch, sort_keys=True)


def block_step_image(reg: RegisteredBlock, *, field: str = "block") -> str:
    """The image a block step runs: the pinned image, else the local-block marker when the
    version has a local command and local commands are allowed; FailedPrecondition (naming
    ``field``) else."""
    from tinyforge.blocks.registered import local_commands_allowed

    if reg.run_image:
        return reg.run_image
    if reg.manifest.local_command and reg.source_key and local_commands_allowed():
        return local_block_image(reg)
    raise FailedPrecondition(
        f"block {reg.name!r} v{reg.version} has no image"
        + (
            "; its local command is disabled on this platform (TINYFORGE_BLOCKS_LOCAL_COMMANDS)"
            if reg.manifest.local_command
            else " and no local command"
        ),
        field=field,
    )
