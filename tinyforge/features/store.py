"""Where generated features live in the object store, and how to read them back.

Layout (``P`` = project id, ``I`` = impulse id, ``V`` = impulse version, ``B`` = processing
block name, ``G`` = a generation id, unique per feature-generation run)::

    projects/P/features/I/vV/B/manifest.json        the published feature set (written LAST)
    projects/P/features/I/vV/B/G/X.npy              float32 [N, *block output shape]
    projects/P/features/I/vV/B/G/y.npy              int32 [N]: index into manifest "classes",
                                                    -1 for an unlabeled window
    projects/P/features/I/vV/B/G/sample_ids.npy     int64 [N]: sample id of each window
    projects/P/features/I/vV/B/G/window_index.npy   int32 [N]: window number inside its sample
    projects/P/features/I/vV/B/G/window_start_ms.npy float32 [N]: window start in the sample
    projects/P/features/I/vV/B/G/category.npy       int8 [N]: index into manifest "categories"
                                                    (training, testing, anomaly)
    projects/P/features/cache/H/pack-*.npz          per-sample feature cache of block hash H

Readers go through ``manifest.json`` only: it names the generation's files (key, sha256, size)
and is written after all of them, in one complete write; files of an unfinished or failed run
are never named by a manifest (and are deleted). A new run for the same impulse version
publishes a new generation and then removes the old one. All ``.npy`` files load with
``numpy.load(..., allow_pickle=False)``.

The manifest (JSON) holds: ``format`` (1), ``project_id``, ``impulse_id``, ``impulse_version``,
``block`` (name in the impulse), ``block_type`` (registered DSP block), ``block_hash``,
``params`` (validated), ``axes``, ``input`` (the impulse's input block), ``output``
(``{"type": flat|spectrogram|image, "shape": [...]}``), ``classes`` (sorted label names),
``categories``, ``windows``, ``samples``, ``generation``, ``files`` and ``created_at``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyforge.errors import FailedPrecondition, InvalidArgument, NotFound
from tinyforge.store.objects import ObjectStore

MANIFEST_FORMAT = 1
CATEGORIES = ("training", "testing", "anomaly")
ARRAYS = ("X", "y", "sample_ids", "window_index", "window_start_ms", "category")


def features_prefix(project_id: int, impulse_id: int, version: int, block: str) -> str:
    """Folder (ending in ``/``) of one block's features for one impulse version."""
    return f"projects/{project_id}/features/{impulse_id}/v{version}/{block}/"


def manifest_key(project_id: int, impulse_id: int, version: int, block: str) -> str:
    """Key of the manifest that publishes a block's features."""
    return features_prefix(project_id, impulse_id, version, block) + "manifest.json"


def cache_prefix(project_id: int, block_hash: str) -> str:
    """Folder of the per-sample feature cache of one block configuration."""
    return f"projects/{project_id}/features/cache/{block_hash}/"


def npy_bytes(a: np.ndarray) -> bytes:
    """``a`` serialised as a ``.npy`` file (no pickle)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def npy_load(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


@dataclass
class FeatureMatrix:
    """The features of one processing block over a whole dataset (one impulse version).

    ``X`` float32 ``[N, *shape]``; ``y`` int32 ``[N]`` (index into ``classes``, -1 unlabeled);
    ``sample_ids`` int64 ``[N]``; ``window_index`` int32 ``[N]``; ``window_start_ms`` float32
    ``[N]``; ``category`` int8 ``[N]`` (index into ``categories``); ``manifest`` the JSON.
    """

    X: np.ndarray
    y: np.ndarray
    sample_ids: np.ndarray
    window_index: np.ndarray
    window_start_ms: np.ndarray
    category: np.ndarray
    classes: list[str]
    categories: list[str]
    manifest: dict[str, Any]

    @property
    def labels(self) -> list[str | None]:
        """Label name per window (None for unlabeled windows)."""
        return [self.classes[i] if i >= 0 else None for i in self.y.tolist()]

    def split(self, category: str) -> np.ndarray:
        """Boolean mask of the windows of ``category`` (training/testing/anomaly)."""
        if category not in self.categories:
            raise InvalidArgument(f"category must be one of {', '.join(self.categories)}",
                                  field="category")
        return self.category == self.categories.index(category)


def read_manifest(objects: ObjectStore, project_id: int, impulse_id: int, version: int,
                  block: str) -> dict[str, Any]:
    """The published manifest of a block's features; FailedPrecondition when none exists."""
    key = manifest_key(project_id, impulse_id, version, block)
    try:
        data = objects.get_bytes(key)
    except NotFound:
        raise FailedPrecondition(
            f"no features generated yet for block {block!r} of impulse {impulse_id} version "
            f"{version}: run GenerateFeatures first", field="block") from None
    return json.loads(data)


def load_features(objects: ObjectStore, project_id: int, impulse_id: int, version: int,
                  block: str) -> FeatureMatrix:
    """Load the published features of ``block`` for impulse ``impulse_id`` version ``version``.

    This is the entry point for consumers (training, the feature explorer). Every file is
    checked against the sha256 the manifest records, so a reader never mixes generations.
    FailedPrecondition when the features were never generated.
    """
    m = read_manifest(objects, project_id, impulse_id, version, block)
    arrays: dict[str, np.ndarray] = {}
    for name in ARRAYS:
        meta = m["files"][name]
        info = objects.stat(meta["key"])
        if info.sha256 != meta["sha256"]:
            raise FailedPrecondition(
                f"feature file {meta['key']} changed after its manifest was written; "
                "generate the features again", field="block")
        arrays[name] = npy_load(objects.get_bytes(meta["key"]))
    return FeatureMatrix(X=arrays["X"], y=arrays["y"], sample_ids=arrays["sample_ids"],
                         window_index=arrays["window_index"],
                         window_start_ms=arrays["window_start_ms"], category=arrays["category"],
                         classes=list(m["classes"]), categories=list(m["categories"]),
                         manifest=m)
