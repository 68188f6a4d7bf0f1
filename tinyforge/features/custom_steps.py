"""Custom DSP blocks as steps of their own in the feature pipeline.

In the cluster a pipeline step cannot start containers, so a registered DSP block
(``custom:NAME[@V]``) cannot run inside ``features-shard`` as it does in-process. The feature
pipeline (``hera_workflows/features.py``) runs it from its own image instead, like the
transformation pipeline runs its block:

1. ``features-plan`` (:func:`plan_features`) outputs, next to the shards, one
   :class:`CustomStep` per (shard, custom block with samples still to compute in that shard):
   the block's image, the pod spec patch carrying its DSP-contract argv (``--in
   /block/in/X.npy --out /block/out/features.npy --params JSON``, validated params) and
   resources, and staging keys.
2. ``features-shard`` computes the built-in blocks as usual and, for each of its steps, writes
   the block's input windows to ``in-key/X.npy`` and which samples they are to ``index-key``
   (:func:`write_inputs`).
3. ``custom-dsp`` (one step per item) runs the block: ``X.npy`` downloaded to ``/block/in``,
   ``/block/out`` uploaded to ``out-key``.
4. ``features-publish`` reads each step's ``features.npy`` back (:func:`ingest_outputs`),
   checks it exactly as an in-process run's output (one row per window, finite numbers, the
   same per-window shape throughout), adds it to the feature cache, and publishes as the
   in-process path does.

Staging keys live under :func:`staging_prefix` (per job): removed by the publish step on
success, by the pipeline's exit handler whatever happened, by a retried plan, and by the next
plan of the project once the job has finished (:func:`sweep_staging`: for pipelines whose exit
handler does not clean up).

Layout (``P`` project, ``J`` job, ``I`` position of the block in the impulse, ``S`` shard)::

    projects/P/features-staging/J/bI-sS/in/X.npy      float32 [rows, *window] (block input)
    projects/P/features-staging/J/bI-sS/index.npz     content_keys, counts, start_ms, rows
    projects/P/features-staging/J/bI-sS/out/...       what the block wrote (features.npy)
"""

from __future__ import annotations

import io
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyforge.errors import FailedPrecondition, InvalidArgument, TinyForgeError
from tinyforge.features.generate import (
    _blame,
    _BlockPlan,
    _Cached,
    _plan,
    _Staged,
    check_dataset,
    check_shape,
    dataset_samples,
    shard_of,
)
from tinyforge.features.store import npy_bytes
from tinyforge.jobs.reporter import Reporter
from tinyforge.store.db import Database
from tinyforge.store.objects import ObjectStore

#: Fields of a step item (a ``withParam`` item of the ``custom-dsp`` task).
ITEM_FIELDS = ("shard", "block", "block-name", "block-type", "block-hash", "image",
               "pod-spec-patch", "in-key", "out-key", "index-key")
INPUT_FILE = "X.npy"


def staging_prefix(project_id: int, job_id: int) -> str:
    """The folder (ending in ``/``) of a feature job's staged block inputs and outputs."""
    return f"projects/{project_id}/features-staging/{job_id}/"


def cleanup_staging(objects: ObjectStore, project_id: int, job_id: int) -> int:
    """Delete a job's staging keys; returns how many objects went."""
    return int(objects.delete_prefix(staging_prefix(project_id, job_id)))


def sweep_staging(db: Database, objects: ObjectStore, project_id: int, job_id: int) -> int:
    """Delete the staging keys of the project's feature jobs other than ``job_id`` that have
    finished (or no longer exist): a safety net for pipelines whose exit handler does not
    clean up. Returns how many objects went."""
    from sqlalchemy import select

    from tinyforge.store.models import Job

    root = f"projects/{project_id}/features-staging/"
    jobs = {info.key[len(root):].split("/", 1)[0] for info in objects.list(root)}
    ids = {int(j) for j in jobs if j.isdigit() and int(j) != job_id}
    if not ids:
        return 0
    with db.session() as s:
        active = {row.id for row in s.scalars(select(Job).where(Job.id.in_(ids)))
                  if not row.status.finished}
    return sum(cleanup_staging(objects, project_id, j) for j in ids - active)


@dataclass(frozen=True)
class CustomStep:
    """One run of a custom DSP block as a step: block ``block_name`` of the impulse over the
    samples of shard ``shard`` that it still needs (see the module docstring)."""

    shard: int
    block_name: str  # the processing block's name in the impulse
    block_type: str  # custom:NAME@VERSION
    block_hash: str  # the block hash the plan saw (the publish step checks it is unchanged)
    image: str
    pod_spec_patch: str
    in_key: str  # folder: in_key/X.npy
    out_key: str  # folder the block's /block/out is uploaded to
    index_key: str

    @property
    def label(self) -> str:
        """``NAME (custom:BLOCK@V), shard S``: what messages and the item call this step."""
        return f"{self.block_name} ({self.block_type}), shard {self.shard}"

    def to_item(self) -> dict[str, Any]:
        """The ``withParam`` item (``block`` first when keys are sorted: it names the item)."""
        return {
            "shard": self.shard,
            "block": self.label,
            "block-name": self.block_name,
            "block-type": self.block_type,
            "block-hash": self.block_hash,
            "image": self.image,
            "pod-spec-patch": self.pod_spec_patch,
            "in-key": self.in_key,
            "out-key": self.out_key,
            "index-key": self.index_key,
        }

    @classmethod
    def from_item(cls, item: Any) -> CustomStep:
        """Parse an item of :meth:`to_item` (InvalidArgument naming ``custom-steps``)."""
        missing = [k for k in ITEM_FIELDS if not isinstance(item, dict) or k not in item]
        if missing:
            raise InvalidArgument(f"custom-steps item {str(item)[:200]!r} lacks "
                                  f"{', '.join(missing)}", field="custom-steps")
        try:
            shard = int(item["shard"])
        except (TypeError, ValueError):
            raise InvalidArgument(f"custom-steps item shard {item['shard']!r} is not an "
                                  "integer", field="custom-steps") from None
        return cls(shard, str(item["block-name"]), str(item["block-type"]),
                   str(item["block-hash"]),
                   str(item["image"]), str(item["pod-spec-patch"]), str(item["in-key"]),
                   str(item["out-key"]), str(item["index-key"]))


def parse_steps(value: Any) -> list[CustomStep]:
    """The steps of a ``custom-steps`` argument (a JSON list of items, already decoded)."""
    if not isinstance(value, list):
        raise InvalidArgument(f"custom-steps must be a JSON list, got {str(value)[:200]!r}",
                              field="custom-steps")
    return [CustomStep.from_item(item) for item in value]


@dataclass(frozen=True)
class FeaturePlan:
    """What ``features-plan`` outputs: samples to compute, shard count, custom block steps."""

    todo: int
    shards: int
    steps: list[CustomStep]


def _step_keys(project_id: int, job_id: int, position: int, shard: int) -> tuple[str, str, str]:
    base = f"{staging_prefix(project_id, job_id)}b{position}-s{shard}/"
    return base + "in", base + "out", base + "index.npz"


def plan_features(db: Database, objects: ObjectStore, project_id: int, impulse_id: int,
                  version: int, job_id: int, *, max_shards: int, per_shard: int) -> FeaturePlan:
    """Validate the impulse and the dataset, split the samples still to compute into up to
    ``max_shards`` shards of about ``per_shard`` samples, and plan a :class:`CustomStep` per
    shard and custom block with samples to compute there. Clears the job's staging keys (a
    retried plan starts clean). FailedPrecondition when a custom block cannot run as a step
    (no image, and no local command allowed here). Also sweeps the staging keys finished jobs
    left behind (:func:`sweep_staging`)."""
    from tinyforge.blocks.contract import IN_MOUNT, OUT_MOUNT, block_args
    from tinyforge.blocks.custom_dsp import project_resolver
    from tinyforge.blocks.step import block_step_image, pod_spec_patch
    from tinyforge.impulse_store import get_impulse

    if max_shards < 1 or per_shard < 1:
        raise InvalidArgument("max-shards and min-samples-per-shard must be >= 1", field="shards")
    with db.session() as s:
        stored = get_impulse(s, project_id, impulse_id, version)
    resolver = project_resolver(db, objects, project_id)
    impulse = stored.impulse.validate(resolver)
    samples = dataset_samples(db, objects, project_id)
    check_dataset(impulse, samples)
    plans = _plan(impulse, objects, project_id, resolver)
    keys = {r.content_key for r in samples}
    todo = {ck for ck in keys if any(ck not in p.cached for p in plans)}
    count = max(1, min(max_shards, math.ceil(len(todo) / per_shard)))
    cleanup_staging(objects, project_id, job_id)
    sweep_staging(db, objects, project_id, job_id)
    steps = []
    for p in plans:
        if not p.is_custom:
            continue
        shards = sorted({shard_of(ck, count) for ck in keys if ck not in p.cached})
        if not shards:
            continue
        reg = p.block.registered  # type: ignore[attr-defined]
        where = f"processing[{p.position}].block"
        args = block_args(reg.manifest, in_path=f"{IN_MOUNT}/{INPUT_FILE}", in_is_file=True,
                          out_dir=OUT_MOUNT, params=p.params)
        image = block_step_image(reg, field=where)
        patch = pod_spec_patch(args, reg)
        block_type = f"{p.block.name}@{p.block.implementation_version}"
        for k in shards:
            in_key, out_key, index_key = _step_keys(project_id, job_id, p.position, k)
            steps.append(CustomStep(k, p.name, block_type, p.bhash, image, patch, in_key,
                                    out_key, index_key))
    return FeaturePlan(len(todo), count, steps)


def write_inputs(objects: ObjectStore, plans: list[_BlockPlan], stage: dict[str, _Staged],
                 log: Reporter) -> None:
    """Write each staged custom block's input (``X.npy``, checked as a run of the block checks
    it: errors name the sample) and index. A step whose samples all became cached meanwhile,
    or give no window, gets one zero window: the block still runs, and its output shape is
    learned."""
    by_name = {p.name: p for p in plans}
    for name, st in stage.items():
        p = by_name[name]
        rows = sum(len(x) for x in st.parts)
        X = np.concatenate(st.parts) if rows else np.zeros((1, *p.window_shape), np.float32)
        try:
            x, _params = p.block.batch_input(X, p.fs, p.params)  # type: ignore[attr-defined]
        except TinyForgeError:
            for ref, part in zip(st.refs, st.parts, strict=True):  # find the sample at fault
                try:
                    p.block.batch_input(part, p.fs, p.params)  # type: ignore[attr-defined]
                except TinyForgeError as exc:
                    raise _blame(ref, exc) from exc
            raise
        buf = io.BytesIO()
        np.savez(buf, content_keys=np.array([r.content_key for r in st.refs], dtype="U64"),
                 counts=np.array([len(x) for x in st.parts], dtype=np.int64),
                 start_ms=(np.concatenate(st.starts).astype(np.float32) if st.starts
                           else np.zeros(0, np.float32)),
                 rows=np.array(rows, dtype=np.int64))
        # input first, index last: the index says the input is complete
        objects.put_bytes(f"{st.step.in_key}/{INPUT_FILE}", npy_bytes(x),
                          content_type="application/x-npy", overwrite=True)
        objects.put_bytes(st.step.index_key, buf.getvalue(),
                          content_type="application/x-npz", overwrite=True)
        log.log(f"block {name} ({p.block.name}): staged {rows} window(s) of {len(st.refs)} "
                f"sample(s) for its step (shard {st.step.shard}) at {st.step.in_key}")


def _read_index(objects: ObjectStore, step: CustomStep) -> tuple[list[str], np.ndarray,
                                                                 np.ndarray, int]:
    if not objects.exists(step.index_key):
        raise FailedPrecondition(
            f"block {step.label}: its input was never staged "
            f"({step.index_key} missing): did the shard step run?", field="block")
    with np.load(io.BytesIO(objects.get_bytes(step.index_key)), allow_pickle=False) as z:
        return (z["content_keys"].tolist(), z["counts"], z["start_ms"], int(z["rows"]))


def ingest_outputs(objects: ObjectStore, plans: list[_BlockPlan], steps: Sequence[CustomStep],
                   log: Reporter) -> None:
    """Read each step's ``features.npy`` (checked: one row per staged window, finite numbers,
    one per-window shape for the block) into the new features of its block's plan, so they
    are published and cached like features computed here. Errors name the block and shard."""
    by_name = {p.name: p for p in plans}
    for step in steps:
        p = by_name.get(step.block_name)
        if p is None or not p.is_custom:
            raise FailedPrecondition(f"the impulse has no custom block {step.block_name!r} any "
                                     "more: it changed while features were generated",
                                     field="block")
        if p.bhash != step.block_hash:
            raise FailedPrecondition(
                f"block {step.block_name!r} ({p.block.name}) changed while features were "
                "generated (a new version registered?): generate again", field="block")
        keys, counts, starts, rows = _read_index(objects, step)
        where = f"block {step.label}"
        with tempfile.TemporaryDirectory(prefix="tf-custom-dsp-out-") as tmp:
            out = Path(tmp)
            prefix = step.out_key.rstrip("/") + "/"
            for info in objects.list(prefix):
                dest = out / info.key[len(prefix):]
                dest.parent.mkdir(parents=True, exist_ok=True)
                objects.download_to(info.key, dest)
            feats = p.block.load_output(  # type: ignore[attr-defined]
                out, max(rows, 1), p.params, p.window_shape,
                where=f"{where} (its output is in the job log, step custom-dsp)")[:rows]
            try:
                check_shape(p, feats)
            except FailedPrecondition as exc:
                raise FailedPrecondition(f"{where}: {exc.message}", field="block") from None
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(int)
        for i, ck in enumerate(keys):
            a, b = int(offsets[i]), int(offsets[i + 1])
            p.new[ck] = _Cached(feats[a:b], starts[a:b])
        log.log(f"{where}: {rows} window(s) of {len(keys)} sample(s) computed by its step")


__all__ = ["CustomStep", "FeaturePlan", "cleanup_staging", "ingest_outputs",
           "parse_steps", "plan_features", "staging_prefix", "sweep_staging",
           "write_inputs"]
