"""The data a learning block trains and is tested on, read from published features.

A learning block of an impulse names the processing blocks feeding it (``inputs``). Their
feature matrices (:func:`tinyforge.features.store.load_features`) cover the same windows in
the same order; one block's features keep their shape (a spectrogram stays 2-D, so the
classifier picks a convolution), several are flattened and concatenated per window in the
order of ``inputs`` — the flat buffer the deployed DSP hands the model.

The validation split is by *sample*: all windows of a sample land on the same side (windows
of one recording overlap, so a per-window split would leak), stratified by the sample's most
common window label, stable per seed and sample id (:func:`tinyforge.learn.split`).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select

from tinyforge.blocks.custom_dsp import project_resolver
from tinyforge.blocks.registered import is_custom
from tinyforge.errors import FailedPrecondition, InvalidArgument
from tinyforge.features.store import FeatureMatrix, load_features, read_manifest
from tinyforge.impulse import Impulse, LearningBlockDef, block_hash
from tinyforge.learn.split import stratified_split
from tinyforge.store.db import Database
from tinyforge.store.models import FeatureSet, Sample
from tinyforge.store.objects import ObjectStore

#: impulse learning-block ``type`` spellings accepted besides the registry names
TYPE_ALIASES = {
    "keras": "classifier", "keras-classifier": "classifier", "classification": "classifier",
    "keras-regression": "regression", "anomaly": "anomaly_kmeans",
    "kmeans": "anomaly_kmeans", "anomaly-kmeans": "anomaly_kmeans", "gmm": "anomaly_gmm",
    "anomaly-gmm": "anomaly_gmm",
}


def block_type_name(type_: str) -> str:
    """The registered learning block for an impulse learning block's ``type``."""
    return TYPE_ALIASES.get(type_, type_)


def learning_block(impulse: Impulse, name: str, impulse_id: int, version: int
                   ) -> LearningBlockDef:
    """The learning block ``name`` ("" = the first) of an impulse version."""
    if not impulse.learning:
        raise FailedPrecondition(
            f"impulse {impulse_id} version {version} has no learning block: add one (e.g. "
            '{"name": "nn", "type": "classifier", "inputs": [...]}) with UpdateImpulse',
            field="learn_block")
    if not name:
        return impulse.learning[0]
    for lb in impulse.learning:
        if lb.name == name:
            return lb
    raise InvalidArgument(
        f"impulse {impulse_id} version {version} has no learning block {name!r} (learning "
        f"blocks: {', '.join(b.name for b in impulse.learning)})", field="learn_block")


@dataclass
class BlockFeatures:
    """Features of a learning block's inputs over every window of the dataset.

    ``X`` float32 ``[N, *feature_shape]``; ``labels`` per window (None = unlabeled);
    ``sample_ids``, ``window_index`` int ``[N]``; ``category`` names per window;
    ``manifests``: the feature manifest of each input block.
    """

    X: np.ndarray
    labels: list[str | None]
    sample_ids: np.ndarray
    window_index: np.ndarray
    category: np.ndarray  # str [N]
    feature_shape: tuple[int, ...]
    feature_kind: str
    manifests: dict[str, dict[str, Any]]

    def mask(self, *categories: str) -> np.ndarray:
        """Boolean ``[N]``: windows whose sample is in one of ``categories``."""
        return np.isin(self.category, list(categories))


def _versions_with_features(db: Database, impulse_id: int, block: str) -> list[int]:
    with db.session() as s:
        return sorted(s.scalars(select(FeatureSet.version).where(
            FeatureSet.impulse_id == impulse_id, FeatureSet.block == block)))


def missing_features_error(db: Database, impulse_id: int, version: int, block: str
                           ) -> FailedPrecondition:
    """The error for features of ``block`` missing at ``version``, naming the versions that
    have them (features of another impulse version are never used)."""
    others = [v for v in _versions_with_features(db, impulse_id, block) if v != version]
    if others:
        return FailedPrecondition(
            f"features of block {block!r} were generated for impulse {impulse_id} version(s) "
            f"{', '.join(map(str, others))}, but the impulse is now at version {version} (the "
            f"version being used): run GenerateFeatures for version {version}", field="version")
    return FailedPrecondition(
        f"no features generated for block {block!r} of impulse {impulse_id} version {version}: "
        "run GenerateFeatures first", field="version")


def check_features_present(db: Database, impulse_id: int, version: int,
                           blocks: list[str]) -> None:
    """FailedPrecondition (see :func:`missing_features_error`) unless every block has
    published features for ``version``."""
    with db.session() as s:
        have = set(s.scalars(select(FeatureSet.block).where(
            FeatureSet.impulse_id == impulse_id, FeatureSet.version == version)))
    for b in blocks:
        if b not in have:
            raise missing_features_error(db, impulse_id, version, b)


def feature_layout(objects: ObjectStore, project_id: int, impulse_id: int, version: int,
                   blocks: list[str]) -> tuple[tuple[int, ...], str]:
    """Per-window feature shape and kind the model will see (from the manifests only)."""
    outs = [read_manifest(objects, project_id, impulse_id, version, b)["output"] for b in blocks]
    if len(outs) == 1:
        shape = tuple(int(d) for d in outs[0]["shape"])
        kind = outs[0]["type"]
        return shape, (kind if len(shape) == {"flat": 1, "spectrogram": 2, "image": 3}.get(
            kind, 0) else "flat")
    return (int(sum(int(np.prod(o["shape"])) for o in outs)),), "flat"


def load_block_features(db: Database, objects: ObjectStore, project_id: int, impulse_id: int,
                        version: int, impulse: Impulse, lb: LearningBlockDef) -> BlockFeatures:
    """Features of ``lb``'s input blocks at ``version``, concatenated per window.

    FailedPrecondition when features are missing (naming the versions that have them), when
    they were made with other block settings, or when the blocks' windows disagree.
    """
    mats: list[FeatureMatrix] = []
    resolver = None
    if any(is_custom(impulse.processing_block(n).block) for n in lb.inputs):
        # a custom block's hash includes its registered version's contents
        resolver = project_resolver(db, objects, project_id)
    for name in lb.inputs:
        try:
            fm = load_features(objects, project_id, impulse_id, version, name)
        except FailedPrecondition as exc:
            if "GenerateFeatures" in exc.message and "changed after" not in exc.message:
                raise missing_features_error(db, impulse_id, version, name) from None
            raise
        m = fm.manifest
        if m.get("impulse_version") != version or m.get("block_hash") != block_hash(
                impulse, name, resolver):
            raise FailedPrecondition(
                f"the features of block {name!r} (impulse version {m.get('impulse_version')}) "
                f"do not match impulse {impulse_id} version {version}: run GenerateFeatures "
                f"for version {version}", field="version")
        mats.append(fm)
    first = mats[0]
    for name, fm in zip(lb.inputs[1:], mats[1:], strict=True):
        if not (np.array_equal(fm.sample_ids, first.sample_ids)
                and np.array_equal(fm.window_index, first.window_index)):
            raise FailedPrecondition(
                f"the features of blocks {lb.inputs[0]!r} and {name!r} cover different windows "
                "(generated from different datasets): run GenerateFeatures again",
                field="version")
    if len(mats) == 1:
        X = first.X.astype(np.float32, copy=False)
        shape = tuple(int(d) for d in X.shape[1:])
        kind = first.manifest["output"]["type"]
    else:
        X = np.concatenate([fm.X.reshape(len(fm.X), -1) for fm in mats], axis=1)
        X = X.astype(np.float32, copy=False)
        shape, kind = (int(X.shape[1]),), "flat"
    if kind == "image" and len(shape) != 3:
        kind = "flat"
    cats = np.array(first.categories)[first.category.astype(int)] if len(first.category) \
        else np.zeros(0, dtype=str)
    return BlockFeatures(X=X, labels=first.labels, sample_ids=first.sample_ids.astype(np.int64),
                         window_index=first.window_index.astype(np.int64), category=cats,
                         feature_shape=shape, feature_kind=kind,
                         manifests={n: fm.manifest for n, fm in zip(lb.inputs, mats,
                                                                     strict=True)})


def check_finite(X: np.ndarray, sample_ids: np.ndarray, window_index: np.ndarray,
                 what: str) -> None:
    """InvalidArgument naming the first sample/window whose features hold NaN or Inf."""
    bad = ~np.isfinite(X.reshape(len(X), -1)).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidArgument(
            f"the {what} features contain NaN or infinite values in {int(bad.sum())} window(s); "
            f"the first is window {int(window_index[i])} of sample {int(sample_ids[i])}: check "
            "that sample and the processing block parameters, then generate features again",
            field="features")


def split_by_sample(sample_ids: np.ndarray, labels: list[str | None], fraction: float,
                    seed: int, keys: dict[int, str] | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Window indices ``(train, validation)``: whole samples go to validation, stratified by
    each sample's most common label and stable per ``seed`` and sample key (``keys``: sample
    id -> e.g. its content sha256, so the same data splits the same way in any project;
    default the sample id)."""
    uniq = sorted(set(sample_ids.tolist()))
    if fraction <= 0 or not uniq:
        return np.arange(len(sample_ids)), np.arange(0)
    per: dict[int, Counter] = {sid: Counter() for sid in uniq}
    for sid, lab in zip(sample_ids.tolist(), labels, strict=True):
        per[sid][lab or ""] += 1
    strata = np.array([per[sid].most_common(1)[0][0] for sid in uniq])
    names = [keys.get(s, str(s)) if keys else str(s) for s in uniq]
    _tr, va = stratified_split(strata, fraction, seed, names)
    val_samples = {uniq[i] for i in va.tolist()}
    in_val = np.isin(sample_ids, list(val_samples))
    return np.flatnonzero(~in_val), np.flatnonzero(in_val)


def sample_hashes(db: Database, project_id: int, sample_ids: np.ndarray) -> dict[int, str]:
    """Content sha256 of each sample id (the stable key of the validation split)."""
    ids = sorted(set(int(i) for i in sample_ids.tolist()))
    out: dict[int, str] = {}
    with db.session() as s:
        for chunk in range(0, len(ids), 500):
            part = ids[chunk:chunk + 500]
            out.update(s.execute(select(Sample.id, Sample.sha256).where(
                Sample.project_id == project_id, Sample.id.in_(part))).tuples().all())
    return out


def dataset_hash(db: Database, project_id: int, sample_ids: np.ndarray) -> str:
    """sha256 over the (content sha256, label, structured labels) of the samples used,
    sorted — the same data gives the same hash whatever the sample ids."""
    ids = sorted(set(int(i) for i in sample_ids.tolist()))
    rows: list[list[Any]] = []
    with db.session() as s:
        for chunk in range(0, len(ids), 500):
            part = ids[chunk:chunk + 500]
            for r in s.execute(select(Sample.sha256, Sample.label, Sample.structured_labels)
                               .where(Sample.project_id == project_id, Sample.id.in_(part))):
                rows.append([r[0], r[1], r[2] or []])
    text = json.dumps(sorted(rows, key=lambda r: json.dumps(r)), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
