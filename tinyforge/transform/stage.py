"""Plan a transformation: resolve the block, check its parameters, stage the input.

:func:`plan_transform` is the ``transform-plan`` step's work. It produces everything the
``run-block`` step needs: the image to run, the pod spec patch carrying the block's exact
arguments (the contract's argv with the input at ``/block/in`` and the output at
``/block/out``) and its resources, and the object keys of the staged input and of the output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tinyforge.blocks.contract import IN_MOUNT, OUT_MOUNT, block_args
from tinyforge.blocks.registry_store import RegisteredBlock, get_registered_block
from tinyforge.blocks.step import block_step_image, pod_spec_patch
from tinyforge.errors import InvalidArgument, NotFound
from tinyforge.transform.source import (
    Source,
    TransformRequest,
    encode_segment,
    in_key,
    list_keys,
    out_key,
    staging_prefix,
)

#: The most input files one job stages.
MAX_INPUT_FILES = 100_000


@dataclass(frozen=True)
class TransformPlan:
    """What the ``run-block`` and ``ingest`` steps need (see the module docstring)."""

    block: RegisteredBlock
    params: dict[str, Any]
    args: list[str]
    image: str
    pod_spec_patch: str
    in_key: str
    out_key: str
    inputs: int

    @property
    def block_ref(self) -> str:
        """``NAME@VERSION`` of the block version that runs."""
        return f"{self.block.name}@{self.block.version}"


def resolve_transform_block(db: Any, project_id: int, name: str, version: int) -> RegisteredBlock:
    """Version ``version`` (0 = latest) of transform block ``name`` of the project's org."""
    from tinyforge.accounts.projects import get_project

    with db.session() as s:
        org_id = get_project(s, project_id).org_id
        try:
            reg = get_registered_block(s, org_id, name, version)
        except (InvalidArgument, NotFound) as exc:
            raise type(exc)(exc.message, field="block") from None
    if reg.type != "transform":
        raise InvalidArgument(
            f"block {name!r} is a {reg.type} block; a transformation needs a transform block",
            field="block",
        )
    return reg


def _stage_dataset(db: Any, objects: Any, project_id: int, source: Source, dest: str) -> int:
    from tinyforge.data.samples import SampleStore

    store = SampleStore(db, objects)
    used: set[str] = set()
    n = 0
    for sample in store.iter_all(project_id, category=source.category, label=source.label):
        folder = f"{encode_segment(sample.label)}/" if sample.label else ""
        name = encode_segment(sample.filename)
        rel = folder + name
        if rel in used:  # equal file names within one label: keep both
            rel = f"{folder}{sample.id}-{name}"
        used.add(rel)
        objects.put_stream(f"{dest}/{rel}", objects.iter_chunks(sample.raw_key), overwrite=True)
        n += 1
        if n > MAX_INPUT_FILES:
            raise InvalidArgument(
                f"source {source.text!r} holds over {MAX_INPUT_FILES} samples; narrow it with "
                "dataset:CATEGORY/LABEL",
                field="source",
            )
    if n == 0:
        raise InvalidArgument(
            f"source {source.text!r}: no samples of project {project_id} match", field="source"
        )
    return n


def plan_transform(
    db: Any, objects: Any, project_id: int, job_id: int, request: TransformRequest
) -> TransformPlan:
    """Resolve and check everything, then stage the input (a dataset's sample files are copied
    under :func:`in_key`; a ``prefix:`` source is used where it is). Raises InvalidArgument
    (naming ``block``, ``parameters.<key>``, ``source``), NotFound, FailedPrecondition."""
    reg = resolve_transform_block(db, project_id, request.block, request.version)
    try:
        args = block_args(
            reg.manifest,
            in_path=IN_MOUNT,
            in_is_file=False,
            out_dir=OUT_MOUNT,
            params=request.params,
        )
    except InvalidArgument as exc:  # name the parameter in the message: steps print only it
        where = exc.field or "parameters"
        raise InvalidArgument(f"{where}: {exc.message}", field=where) from None
    image = block_step_image(reg, field="block")
    values = reg.manifest.validate_values(request.params)
    source = request.source
    if source.kind == "prefix":
        count = len(list_keys(objects, source.prefix))
        if count == 0:
            raise InvalidArgument(
                f"source {source.text!r}: no objects under {source.prefix!r}", field="source"
            )
        staged = source.prefix.rstrip("/")
    else:
        staged = in_key(project_id, job_id)
        objects.delete_prefix(staged + "/")  # a retried plan starts clean
        try:
            count = _stage_dataset(db, objects, project_id, source, staged)
        except BaseException:
            objects.delete_prefix(staging_prefix(project_id, job_id))
            raise
    return TransformPlan(
        block=reg,
        params=values,
        args=args,
        image=image,
        pod_spec_patch=pod_spec_patch(args, reg),
        in_key=staged,
        out_key=out_key(project_id, job_id),
        inputs=count,
    )
