"""Feature generation: every enabled sample of a project through an impulse version.

Steps (:func:`generate_features`):

1. Load the impulse version and the project's enabled, ready samples (all categories).
2. Check the dataset against the impulse before any work: sample kinds match the input block
   (time series/audio vs images); without zero padding, the window is not longer than every
   sample (with it, short samples give one zero-padded window, as in Edge Impulse).
3. For each processing block, look the samples up in the block's feature cache, keyed by
   ``(sample content key, block hash)``: the content key is the sha256 of the sample's bytes
   plus what parsing added (interval, axis names); the block hash
   (:func:`tinyforge.impulse.block_hash`) covers the block type, its implementation version,
   validated params, axes and the input block. Only samples missing from the cache are
   windowed (:mod:`tinyforge.data.windowing`) and run through the block's batch form, many
   samples per call; their features go to one new cache pack per block.
4. Assemble, per block, the feature matrix over all samples in sample-id order (windows in
   time order), with labels computed now from the sample's current label / structured labels
   (so relabelling needs no recomputation), and publish it as described in
   :mod:`tinyforge.features.store` (files first, manifests last).

Any error (bad sample, axis missing, NaN, ...) raises a domain error naming the sample; nothing
new becomes visible. Cache packs are content-addressed and only ever read through their
index, so a pack written by a run that failed later is still valid.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from tinyforge.blocks.custom_dsp import project_resolver
from tinyforge.blocks.errors import BlockRunError
from tinyforge.data.canonical import TimeSeries
from tinyforge.data.images import image_pixels
from tinyforge.data.windowing import StructuredLabel, prepare_image, window_label, window_sample
from tinyforge.dsp.base import ProcessingBlock
from tinyforge.dsp.registry import get_block
from tinyforge.errors import FailedPrecondition, InvalidArgument, TinyForgeError
from tinyforge.features.store import (
    ARRAYS,
    CATEGORIES,
    MANIFEST_FORMAT,
    cache_prefix,
    features_prefix,
    manifest_key,
    npy_bytes,
)
from tinyforge.impulse import BlockResolver, ImageInput, Impulse, TimeSeriesInput, block_hash
from tinyforge.impulse_store import get_impulse
from tinyforge.jobs.reporter import QuietReporter, Reporter
from tinyforge.store.db import Database
from tinyforge.store.models import FeatureSet
from tinyforge.store.objects import ObjectStore

#: signal values (estimated from sample durations) loaded and run through the blocks per batch
BATCH_VALUES = 1 << 22
#: threads loading and windowing samples
LOAD_THREADS = 4
PACK_CONTENT_TYPE = "application/x-tinyforge-feature-pack+npz"

if TYPE_CHECKING:
    from tinyforge.features.custom_steps import CustomStep


@dataclass
class SampleRef:
    """What feature generation needs to know about one sample (detached from the DB)."""

    id: int
    filename: str
    kind: str
    category: str
    label: str | None
    structured: list[StructuredLabel]
    interval_ms: float
    duration_ms: float
    object_key: str  # canonical .npz for series, the original file for images
    content_key: str


def _content_key(row: Any) -> str:
    axes = [a.get("name") if isinstance(a, dict) else str(a) for a in (row.axes or [])]
    text = json.dumps([row.sha256, row.kind, float(row.interval_ms or 0.0), axes])
    return hashlib.sha256(text.encode()).hexdigest()


def dataset_samples(db: Database, objects: ObjectStore, project_id: int) -> list[SampleRef]:
    """Enabled, ready samples of a project in id order (all categories)."""
    from tinyforge.data.samples import SampleStore

    return [sample_ref(row) for row in SampleStore(db, objects).iter_all(project_id,
                                                                          enabled=True)]


def sample_ref(row: Any) -> SampleRef:
    """A :class:`SampleRef` of a sample row (:class:`tinyforge.store.models.Sample`)."""
    interval = float(row.interval_ms or 0.0)
    structured = [
        StructuredLabel(int(s["startIndex"]) * interval, (int(s["endIndex"]) + 1) * interval,
                        str(s["label"]))
        for s in (row.structured_labels or [])
    ]
    return SampleRef(
        id=row.id, filename=row.filename, kind=row.kind, category=row.category,
        label=row.label, structured=structured, interval_ms=interval,
        duration_ms=float(row.duration_ms or 0.0),
        object_key=row.canonical_key if row.kind != "image" else row.raw_key,
        content_key=_content_key(row))


def _blame(ref: SampleRef, exc: TinyForgeError) -> TinyForgeError:
    """The same error, its message prefixed with the sample it is about."""
    return type(exc)(f"sample {ref.id} ({ref.filename}): {exc.message}", field=exc.field)


def load_windows(objects: ObjectStore, ref: SampleRef, impulse: Impulse
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Windows of one sample per the impulse's input block: ``(data, start_ms)``.

    Time series: ``data`` float32 ``[N, W, input axes]``; images: ``[1, H, W, C]``.
    Errors name the sample.
    """
    try:
        data = objects.get_bytes(ref.object_key)
        if isinstance(impulse.input, ImageInput):
            img = prepare_image(image_pixels(data, "RGB"), impulse.input)
            return img[None], np.zeros(1, np.float32)
        ts = TimeSeries.from_bytes(data)
        w = window_sample(ts.values, ts.interval_ms, impulse.input, sample_axes=list(ts.axes))
        return w.data, w.start_ms.astype(np.float32)
    except TinyForgeError as exc:
        raise _blame(ref, exc) from exc


def check_dataset(impulse: Impulse, samples: list[SampleRef]) -> None:
    """Refuse a dataset the impulse cannot process, before any work (InvalidArgument)."""
    if not samples:
        raise FailedPrecondition("the project has no enabled samples: upload data first",
                                 field="project_id")
    is_image = isinstance(impulse.input, ImageInput)
    for ref in samples:
        if (ref.kind == "image") != is_image:
            want = "an image" if is_image else "a time-series"
            raise InvalidArgument(
                f"sample {ref.id} ({ref.filename}) is {ref.kind.replace('_', ' ')} data but the "
                f"impulse has {want} input block: disable the sample or use another project",
                field="input.type")
    if isinstance(impulse.input, TimeSeriesInput) and not impulse.input.zero_pad:
        # without zero padding such a dataset yields no window at all
        longest = max(samples, key=lambda r: r.duration_ms)
        if impulse.input.window_size_ms > longest.duration_ms + 1e-6:
            raise InvalidArgument(
                f"the window ({impulse.input.window_size_ms:g} ms) is longer than every sample "
                f"(the longest, sample {longest.id}, lasts {longest.duration_ms:g} ms) and "
                "zero padding is off: shorten the window or enable zero_pad",
                field="input.window_size_ms")


# -- the per-block cache ------------------------------------------------------------------------
@dataclass
class _Cached:
    features: np.ndarray  # [n, *shape]
    start_ms: np.ndarray  # [n]


def _read_packs(objects: ObjectStore, project_id: int, bhash: str) -> dict[str, _Cached]:
    out: dict[str, _Cached] = {}
    for info in objects.list(cache_prefix(project_id, bhash)):
        if not info.key.endswith(".npz"):
            continue
        with np.load(io.BytesIO(objects.get_bytes(info.key)), allow_pickle=False) as z:
            feats, starts = z["features"], z["start_ms"]
            keys, counts = z["content_keys"].tolist(), z["counts"]
        offsets = np.concatenate([[0], np.cumsum(counts)])
        for i, ck in enumerate(keys):
            a, b = int(offsets[i]), int(offsets[i + 1])
            out[ck] = _Cached(feats[a:b], starts[a:b])
    return out


def _write_pack(objects: ObjectStore, project_id: int, bhash: str, shape: tuple[int, ...],
                entries: dict[str, _Cached]) -> None:
    if not entries:
        return
    keys = list(entries)
    feats = [entries[k].features for k in keys]
    buf = io.BytesIO()
    np.savez(buf, content_keys=np.array(keys, dtype="U64"),
             counts=np.array([len(f) for f in feats], dtype=np.int64),
             features=(np.concatenate(feats) if feats else np.zeros((0, *shape), np.float32)),
             start_ms=np.concatenate([entries[k].start_ms for k in keys]))
    key = cache_prefix(project_id, bhash) + f"pack-{int(time.time())}-{uuid.uuid4().hex[:12]}.npz"
    objects.put_bytes(key, buf.getvalue(), content_type=PACK_CONTENT_TYPE)


# -- generation ---------------------------------------------------------------------------------
@dataclass
class _BlockPlan:
    name: str
    block: ProcessingBlock
    params: dict[str, Any]
    axes: list[str]
    axis_index: list[int]
    bhash: str
    fs: float
    shape: tuple[int, ...] | None  # None: a custom block's, until it ran
    kind: str
    cached: dict[str, _Cached] = field(default_factory=dict)
    new: dict[str, _Cached] = field(default_factory=dict)
    todo: set[str] = field(default_factory=set)
    pending: set[str] = field(default_factory=set)  # to do, not computed nor ingested yet
    position: int = 0  # index in the impulse's processing blocks
    window_shape: tuple[int, ...] = ()  # one window as the block gets it

    @property
    def is_custom(self) -> bool:
        """A registered custom block (its output shape is learned; it may run as a step)."""
        return bool(getattr(self.block, "dynamic_output", False))


def _plan(impulse: Impulse, objects: ObjectStore, project_id: int,
          resolver: BlockResolver | None = None) -> list[_BlockPlan]:
    resolver = resolver or get_block
    plans = []
    for i, b in enumerate(impulse.processing):
        block = resolver(b.block)
        axes = impulse.block_axes(b)
        is_image = isinstance(impulse.input, ImageInput)
        fs = 0.0 if is_image else float(impulse.input.frequency_hz)
        params, spec = block.check(b.params, fs, impulse.input.window_shape(axes),
                                   field_prefix=f"processing[{i}].params.")
        bhash = block_hash(impulse, b.name, resolver)
        index = [] if is_image else [impulse.input.axes.index(a) for a in axes]
        cached = _read_packs(objects, project_id, bhash)
        shape: tuple[int, ...] | None = spec.shape
        if getattr(block, "dynamic_output", False):
            # a custom block's output shape is learned from its output (cached or computed)
            shape = next((c.features.shape[1:] for c in cached.values()), None)
        plans.append(_BlockPlan(b.name, block, params, axes, index, bhash, fs, shape,
                                spec.kind, cached=cached, position=i,
                                window_shape=tuple(impulse.input.window_shape(axes))))
    return plans


def _bind(plans: list[_BlockPlan], rep: Reporter) -> None:
    """Let custom blocks stream their output into the job log and stop on cancellation."""
    def cancelled() -> bool:
        try:
            rep.check_cancelled()
        except TinyForgeError:
            return True
        return False

    for p in plans:
        bound = getattr(p.block, "bound", None)
        if bound is not None:
            p.block = bound(log=lambda line, name=p.name: rep.log(f"[{name}] {line}"),
                            cancelled=cancelled)


def block_windows(plan: _BlockPlan, refs: list[SampleRef],
                  windows: dict[int, tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """The windows of each of ``refs`` as block ``plan`` takes them (its axes only)."""
    parts = [windows[r.id][0] for r in refs]
    if plan.axis_index:
        parts = [p[..., plan.axis_index] for p in parts]
    return parts


def check_shape(plan: _BlockPlan, feats: np.ndarray) -> None:
    """Learn a custom block's per-window output shape from ``feats``, or check it against
    what earlier windows (or the cache) gave: FailedPrecondition naming the block."""
    if plan.shape is None:
        plan.shape = tuple(int(d) for d in feats.shape[1:])
    elif tuple(feats.shape[1:]) != tuple(plan.shape):
        raise FailedPrecondition(
            f"block {plan.block.name!r} returned features of shape {tuple(feats.shape[1:])} "
            f"per window, earlier windows gave {tuple(plan.shape)}", field="block")


def _run_block(plan: _BlockPlan, refs: list[SampleRef],
               windows: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
    """Features of ``refs`` (windows already loaded) in one batch call; blame on error."""
    parts = block_windows(plan, refs, windows)
    counts = [len(p) for p in parts]
    try:
        if sum(counts):
            feats = plan.block.features_batch(np.concatenate(parts), plan.fs, plan.params)
        elif plan.shape is not None:
            feats = np.zeros((0, *plan.shape), np.float32)
        else:  # a custom block that has not run yet: one (discarded) window gives its shape
            probe = np.zeros((1, *windows[refs[0].id][0].shape[1:-1], len(plan.axes) or
                              windows[refs[0].id][0].shape[-1]), np.float32)
            feats = plan.block.features_batch(probe, plan.fs, plan.params)[:0]
        check_shape(plan, feats)
    except TinyForgeError as exc:
        # a custom block's own failure (exit code, timeout) is not bisected per sample: each
        # retry would run (and maybe time out) again; its message carries the block's log
        if len(refs) == 1 or isinstance(exc, BlockRunError):
            raise
        for r in refs:  # find the sample at fault
            try:
                _run_block(plan, [r], windows)
            except TinyForgeError as exc:
                raise _blame(r, exc) from exc
        raise
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(int)
    for i, r in enumerate(refs):
        plan.new[r.content_key] = _Cached(feats[offsets[i]:offsets[i + 1]],
                                          windows[r.id][1])


def _dataset_hash(samples: list[SampleRef]) -> str:
    text = json.dumps([[r.id, r.content_key, r.label, r.category,
                        [[s.start_ms, s.end_ms, s.label] for s in r.structured]]
                       for r in samples])
    return hashlib.sha256(text.encode()).hexdigest()


def generate_features(db: Database, objects: ObjectStore, project_id: int, impulse_id: int,
                      version: int = 0, *, reporter: Reporter | None = None,
                      job_id: int | None = None,
                      shard: tuple[int, int] | None = None,
                      custom_steps: Sequence[CustomStep] | None = None) -> dict[str, Any]:
    """Generate (incrementally) and publish the features of every processing block of an
    impulse version (0 = latest) over the project's enabled samples.

    ``shard=(i, n)`` computes only the samples of shard i of n (:func:`shard_of`) still to
    process, into the cache, and publishes nothing: the fan-out steps of the feature pipeline
    run one shard each, and a final unsharded call (which then finds everything cached)
    publishes.

    ``custom_steps`` (the feature pipeline's, :mod:`tinyforge.features.custom_steps`): custom
    blocks never run in this process but as steps of their own. A shard then stages, for each
    step of its shard, the block's input windows instead of running it; the publishing call
    reads every step's output (checked as an in-process run's) into the cache first, and fails
    if a custom block still lacks features. None: custom blocks run here.

    Returns a JSON-able summary: ``impulse_id``, ``version``, ``samples``, ``windows``,
    ``dropped_samples`` (shorter than a window without zero padding) and per block
    ``processed_samples`` (computed now), ``reused_samples`` (from the cache), ``windows``,
    ``shape``, ``type`` and ``manifest`` (key).
    """
    rep: Reporter = reporter or QuietReporter()
    with db.session() as s:
        stored = get_impulse(s, project_id, impulse_id, version)
    resolver = project_resolver(db, objects, project_id)
    impulse, version = stored.impulse.validate(resolver), stored.version
    samples = dataset_samples(db, objects, project_id)
    check_dataset(impulse, samples)
    plans = _plan(impulse, objects, project_id, resolver)
    _bind(plans, rep)
    for p in plans:
        p.todo = {r.content_key for r in samples if r.content_key not in p.cached}
    if custom_steps is not None and shard is None:
        from tinyforge.features.custom_steps import ingest_outputs

        ingest_outputs(objects, plans, custom_steps, rep)
    for p in plans:
        p.pending = p.todo - p.new.keys()
        rep.log(f"block {p.name} ({p.block.name}): {len({r.content_key for r in samples})} "
                f"samples, {len(p.todo)} to process, "
                f"{len({r.content_key for r in samples}) - len(p.todo)} reused from the cache")
    todo_refs: list[SampleRef] = []
    seen: set[str] = set()
    for r in samples:  # one computation per distinct content
        if r.content_key not in seen and any(r.content_key in p.pending for p in plans):
            todo_refs.append(r)
            seen.add(r.content_key)
    if shard is not None:
        index, count = shard
        if not 0 <= index < count:
            raise InvalidArgument(f"shard {index} of {count} is out of range", field="shard")
        # by content hash, not by position in the to-do list: shards running at the same time
        # see each other's results in the cache, so their to-do lists differ
        todo_refs = [r for r in todo_refs if shard_of(r.content_key, count) == index]
    stage: dict[str, _Staged] | None = None
    if custom_steps is not None:
        stage = _custom_stage(plans, custom_steps, shard, todo_refs)
    _compute(objects, impulse, plans, todo_refs, rep, stage)
    for p in plans:
        _write_pack(objects, project_id, p.bhash, p.shape, p.new)
    if stage is not None and shard is not None:
        from tinyforge.features.custom_steps import write_inputs

        write_inputs(objects, plans, stage, rep)
    if shard is not None:
        return {"shard": shard[0], "shards": shard[1], "processed_samples": len(todo_refs)}
    rep.progress(0.9, "assembling feature matrices")
    return _publish(db, objects, project_id, impulse_id, version, impulse, plans, samples,
                    rep, job_id)


@dataclass
class _Staged:
    """A custom block's windows collected for its step (instead of running it here)."""

    step: CustomStep
    refs: list[SampleRef] = field(default_factory=list)
    parts: list[np.ndarray] = field(default_factory=list)
    starts: list[np.ndarray] = field(default_factory=list)


def _custom_stage(plans: list[_BlockPlan], steps: Sequence[CustomStep],
                  shard: tuple[int, int] | None, todo: list[SampleRef]) -> dict[str, _Staged]:
    """Custom blocks run as steps: what this shard stages (block name → its step); in the
    publishing call (``shard`` None), FailedPrecondition if a custom block still lacks
    features of some sample (the dataset or the cache changed since the plan)."""
    stage: dict[str, _Staged] = {}
    mine = {s.block_name: s for s in steps if shard is not None and s.shard == shard[0]}
    for p in plans:
        if not p.is_custom:
            continue
        missing = {r.content_key for r in todo} & p.pending
        if p.name in mine:
            stage[p.name] = _Staged(mine[p.name])
        elif shard is None and missing:
            raise FailedPrecondition(
                f"block {p.name!r} ({p.block.name}): {len(missing)} sample(s) have no features "
                "(the dataset changed while the features were generated): generate again",
                field="block")
    return stage


def _compute(objects: ObjectStore, impulse: Impulse, plans: list[_BlockPlan],
             todo: list[SampleRef], rep: Reporter,
             stage: dict[str, _Staged] | None = None) -> None:
    """Run the blocks over the samples ``todo`` (those each block still needs). With
    ``stage`` (custom blocks run as steps) a custom block's windows are collected into its
    :class:`_Staged` instead (custom blocks without one are left alone)."""
    total = len(todo)
    if not total:
        rep.progress(0.9, "all features reused from the cache")
        return
    done = 0
    i = 0
    if isinstance(impulse.input, TimeSeriesInput):
        per_ms = impulse.input.frequency_hz / 1000.0 * len(impulse.input.axes)
    else:
        per_ms = 0.0
    # loading is object-store I/O + decoding: overlap it on a few threads
    with ThreadPoolExecutor(max_workers=LOAD_THREADS) as pool:
        while i < total:
            rep.check_cancelled()
            group: list[SampleRef] = []
            values = 0.0
            while i < total and (not group or values < BATCH_VALUES) and len(group) < 256:
                group.append(todo[i])
                values += max(todo[i].duration_ms * per_ms, 1.0)
                i += 1
            loaded = pool.map(lambda r: load_windows(objects, r, impulse), group)
            windows = {r.id: w for r, w in zip(group, loaded, strict=True)}
            for p in plans:
                refs = [r for r in group if r.content_key in p.pending]
                if not refs:
                    continue
                if stage is None or not p.is_custom:
                    _run_block(p, refs, windows)
                elif p.name in stage:
                    st = stage[p.name]
                    st.refs += refs
                    st.parts += block_windows(p, refs, windows)
                    st.starts += [windows[r.id][1] for r in refs]
            done += len(group)
            rep.progress(0.9 * done / total, f"processed {done}/{total} samples")


def _publish(db: Database, objects: ObjectStore, project_id: int, impulse_id: int, version: int,
             impulse: Impulse, plans: list[_BlockPlan], samples: list[SampleRef],
             rep: Reporter, job_id: int | None) -> dict[str, Any]:
    gen = datetime.now(UTC).strftime("g%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    # windows (and so labels) depend on the input block only: the same for every block
    first = plans[0]
    starts_of = {r.id: (first.cached.get(r.content_key) or first.new[r.content_key]).start_ms
                 for r in samples}
    if isinstance(impulse.input, TimeSeriesInput):
        win_ms = impulse.input.window_samples * 1000.0 / impulse.input.frequency_hz
    else:
        win_ms = 0.0
    labels: list[str | None] = []
    sample_ids, window_index, window_start, category = [], [], [], []
    dropped = 0
    for r in samples:
        starts = starts_of[r.id]
        if len(starts) == 0:
            dropped += 1
        for j, t in enumerate(starts.tolist()):
            labels.append(window_label(t, t + win_ms, r.label, r.structured))
            sample_ids.append(r.id)
            window_index.append(j)
            window_start.append(t)
            category.append(CATEGORIES.index(r.category) if r.category in CATEGORIES else 0)
    if not labels:
        raise InvalidArgument("no sample yields a window: enable zero padding or shorten the "
                              "window", field="input.window_size_ms")
    classes = sorted({lab for lab in labels if lab is not None})
    common = {
        "y": np.array([classes.index(lab) if lab is not None else -1 for lab in labels],
                      np.int32),
        "sample_ids": np.array(sample_ids, np.int64),
        "window_index": np.array(window_index, np.int32),
        "window_start_ms": np.array(window_start, np.float32),
        "category": np.array(category, np.int8),
    }
    common_bytes = {k: npy_bytes(v) for k, v in common.items()}
    dhash = _dataset_hash(samples)
    written: list[str] = []
    manifests: list[tuple[_BlockPlan, str, dict[str, Any]]] = []
    summary: dict[str, Any] = {}
    try:
        for p in plans:
            rep.check_cancelled()
            X = np.concatenate([(p.cached.get(r.content_key) or p.new[r.content_key]).features
                                for r in samples])
            prefix = features_prefix(project_id, impulse_id, version, p.name) + gen + "/"
            files = {}
            for name in ARRAYS:
                data = npy_bytes(X) if name == "X" else common_bytes[name]
                written.append(prefix)
                info = objects.put_bytes(prefix + f"{name}.npy", data,
                                         content_type="application/x-npy")
                files[name] = {"key": info.key, "sha256": info.sha256, "size": info.size}
            manifest = {
                "format": MANIFEST_FORMAT, "project_id": project_id, "impulse_id": impulse_id,
                "impulse_version": version, "block": p.name, "block_type": p.block.name,
                "implementation_version": p.block.implementation_version,
                "block_hash": p.bhash, "params": p.params, "axes": p.axes,
                "frequency_hz": p.fs, "input": impulse.to_dict()["input"],
                "output": {"type": p.kind, "shape": list(p.shape)}, "classes": classes,
                "categories": list(CATEGORIES), "windows": int(X.shape[0]),
                "samples": len(samples), "dataset_hash": dhash, "generation": gen,
                "files": files, "job_id": job_id,
                "created_at": datetime.now(UTC).isoformat(),
            }
            manifests.append((p, manifest_key(project_id, impulse_id, version, p.name),
                              manifest))
            processed = len({r.content_key for r in samples if r.content_key in p.todo})
            summary[p.name] = {
                "type": p.kind, "shape": list(p.shape), "windows": int(X.shape[0]),
                "processed_samples": processed,
                "reused_samples": len({r.content_key for r in samples}) - processed,
                "manifest": manifest_key(project_id, impulse_id, version, p.name),
            }
        rep.check_cancelled()
    except BaseException:
        for prefix in set(written):
            objects.delete_prefix(prefix)
        raise
    # publish: every file is in place; the manifests make them visible
    for _p, key, manifest in manifests:
        objects.put_bytes(key, json.dumps(manifest, indent=1).encode(),
                          content_type="application/json", overwrite=True)
    _record(db, project_id, impulse_id, version, manifests, len(samples), job_id)
    for p, _key, _m in manifests:
        _drop_old_generations(objects, features_prefix(project_id, impulse_id, version, p.name),
                              gen)
    n_windows = len(labels)
    rep.log(f"published {len(plans)} feature set(s): {n_windows} windows from "
            f"{len(samples)} samples ({dropped} too short, dropped), classes {classes}")
    return {"impulse_id": impulse_id, "version": version, "samples": len(samples),
            "windows": n_windows, "dropped_samples": dropped, "classes": classes,
            "dataset_hash": dhash, "blocks": summary}


def _record(db: Database, project_id: int, impulse_id: int, version: int,
            manifests: list[tuple[_BlockPlan, str, dict[str, Any]]], n_samples: int,
            job_id: int | None) -> None:
    with db.session() as s:
        for p, key, m in manifests:
            row = s.scalar(select(FeatureSet).where(
                FeatureSet.impulse_id == impulse_id, FeatureSet.version == version,
                FeatureSet.block == p.name))
            if row is None:
                row = FeatureSet(project_id=project_id, impulse_id=impulse_id, version=version,
                                 block=p.name)
                s.add(row)
            row.block_hash, row.manifest_key = p.bhash, key
            row.windows, row.samples = int(m["windows"]), n_samples
            row.feature_shape, row.job_id = list(p.shape), job_id
            row.created_at = datetime.now(UTC)


def _drop_old_generations(objects: ObjectStore, prefix: str, keep: str) -> None:
    stale = {info.key[len(prefix):].split("/", 1)[0] for info in objects.list(prefix)}
    for gen in stale - {keep, "manifest.json"}:
        objects.delete_prefix(prefix + gen + "/")


def shard_of(content_key: str, count: int) -> int:
    """The shard (0..count-1) a sample belongs to: stable, whatever else is cached."""
    return int(hashlib.sha256(content_key.encode()).hexdigest()[:8], 16) % count
