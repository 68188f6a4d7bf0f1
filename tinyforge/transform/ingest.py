"""Ingest a transform block's output as samples of the project: all or nothing.

Every output file is read and parsed first (the normal ingest formats: CSV, JSON acquisition,
WAV, images, ...): a file that does not parse fails the job naming it, before anything is
stored. Then each file is ingested through :class:`~tinyforge.data.samples.SampleStore`; if one
fails, the samples stored so far are deleted again. Samples carry ``upload_source =
transform:JOB`` so a retried step first removes what an interrupted attempt stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from tinyforge.blocks.errors import BlockFailed
from tinyforge.data.formats import parse_upload
from tinyforge.data.labels import validate_label
from tinyforge.data.samples import READY, SampleStore, UploadOptions, check_options
from tinyforge.errors import TinyForgeError
from tinyforge.store.models import Sample
from tinyforge.transform.source import (
    TransformRequest,
    decode_segment,
    describe,
    list_keys,
    read_bytes,
    staging_prefix,
)


def upload_tag(job_id: int) -> str:
    """``upload_source`` of the samples a job ingests."""
    return f"transform:{job_id}"


@dataclass(frozen=True)
class _Output:
    key: str
    rel: str
    opts: UploadOptions


def _outputs(
    objects: Any, prefix: str, request: TransformRequest, block_ref: str, job_id: int
) -> list[_Output]:
    out = []
    for key in list_keys(objects, prefix):
        rel = key[len(prefix) :]
        parts = rel.split("/")
        name, folder = parts[-1], (parts[-2] if len(parts) > 1 else "")
        if request.source.encoded_names:
            name, folder = decode_segment(name), decode_segment(folder)
        label = request.label or folder or None
        opts = UploadOptions(
            category=request.category,
            label=label,
            filename=name,
            metadata={"transform_block": block_ref, "transform_job": str(job_id)},
            upload_source=upload_tag(job_id),
            frequency_hz=request.frequency_hz,
        )
        out.append(_Output(key, rel, opts))
    return out


def _earlier_attempt(db: Any, project_id: int, job_id: int) -> list[int]:
    with db.session() as s:
        return list(
            s.scalars(
                select(Sample.id).where(
                    Sample.project_id == project_id,
                    Sample.upload_source == upload_tag(job_id),
                    Sample.state == READY,
                )
            )
        )


def ingest_outputs(
    db: Any,
    objects: Any,
    project_id: int,
    job_id: int,
    request: TransformRequest,
    *,
    output_key: str,
    block_ref: str,
    inputs: int,
    log_tail: Sequence[str] = (),
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Ingest every object under ``output_key/`` (the block's output); returns the job summary.

    Raises :class:`BlockFailed` (with ``log_tail``, the block's last output lines) when the block
    wrote nothing or a file cannot be ingested; nothing is stored then.
    """
    log = log or (lambda _line: None)
    store = SampleStore(db, objects)
    prefix = output_key.rstrip("/") + "/"
    outputs = _outputs(objects, prefix, request, block_ref, job_id)
    if not outputs:
        raise BlockFailed(
            f"block {block_ref!r}: the block exited successfully but wrote no output",
            log_tail=log_tail,
        )
    for o in outputs:  # parse and check everything before storing anything
        try:
            if o.opts.label is not None:
                validate_label(o.opts.label)
            check_options(o.opts)
            parse_upload(
                read_bytes(objects, o.key),
                o.opts.filename,
                None,
                allow_unsigned=True,
                frequency_hz=o.opts.frequency_hz,
                max_bytes=store.max_upload_bytes,
            )
        except TinyForgeError as exc:
            raise BlockFailed(
                f"block {block_ref!r}: output file {o.rel!r} cannot be ingested: {exc.message}",
                log_tail=log_tail,
            ) from None
    log(f"{len(outputs)} output file(s) parsed; ingesting")
    earlier = _earlier_attempt(db, project_id, job_id)
    if earlier:
        log(f"removing {len(earlier)} sample(s) of an interrupted earlier attempt")
        store.delete(project_id, earlier)
    stored = []
    try:
        for o in outputs:
            try:
                stored.append(store.ingest_bytes(project_id, read_bytes(objects, o.key), o.opts))
            except TinyForgeError as exc:
                raise type(exc)(
                    f"output file {o.rel!r} could not be ingested: {exc.message}", field="output"
                ) from None
    except BaseException as exc:
        if stored:
            log(f"ingest failed ({describe(exc)}); removing the {len(stored)} sample(s) stored")
            store.delete(project_id, [s.id for s in stored])
        raise
    return {
        "block": block_ref,
        "source": request.source.text,
        "input_files": inputs,
        "output_files": len(outputs),
        "samples": len(stored),
        "sample_ids": [s.id for s in stored],
        "categories": dict(sorted(Counter(s.category for s in stored).items())),
        "labels": dict(sorted(Counter(s.label or "" for s in stored).items())),
    }


def cleanup_staging(objects: Any, project_id: int, job_id: int) -> int:
    """Delete the job's staged input and block output; returns how many objects went."""
    return int(objects.delete_prefix(staging_prefix(project_id, job_id)))
