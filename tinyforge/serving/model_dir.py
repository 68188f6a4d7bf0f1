"""The served model directory: what the ``kserve`` deployment format writes, what the predictor
loads (KServe's storage initializer copies it to ``/mnt/models``).

Files (all at the top level):

- ``impulse.json``: the impulse (:meth:`tinyforge.impulse.Impulse.to_json`);
- ``labels.json``: JSON list of class names, in model output order;
- ``model_int8.tflite``: full-int8 model (int8 in/out, batch 1) — the default;
- ``model_float32.tflite``: float32 model (optional);
- ``anomaly.json``: optional k-means anomaly scorer (see :class:`AnomalyScorer`);
- ``tinyforge-model.json``: format version, name and feature count (informational);
- ``README.md`` and ``inferenceservice.yaml`` (ignored by the loader).

:func:`load_model_source` reads a directory, the artifact ``.zip`` itself, or a directory
holding exactly one such zip.
"""

from __future__ import annotations

import contextlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyforge.errors import InvalidArgument, NotFound
from tinyforge.impulse import Impulse

IMPULSE_FILE = "impulse.json"
LABELS_FILE = "labels.json"
INT8_FILE = "model_int8.tflite"
FLOAT_FILE = "model_float32.tflite"
ANOMALY_FILE = "anomaly.json"
INFO_FILE = "tinyforge-model.json"
#: bump when the directory layout changes incompatibly
LAYOUT_VERSION = 1
MODEL_TYPES = ("int8", "float32")


@dataclass(frozen=True)
class AnomalyScorer:
    """K-means anomaly scoring (as :class:`tinyforge.learn.anomaly_kmeans.KMeansScorer`).

    ``inputs``: processing blocks whose features (concatenated in this order) it reads;
    ``selected_features`` indexes that vector; ``z = (x[sel] - mean) / std``; the score of a
    window is ``min_k(|z - centers[k]| - radii[k])`` (higher = more anomalous).
    """

    inputs: tuple[str, ...]
    selected_features: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    centers: np.ndarray
    radii: np.ndarray
    threshold: float | None = None

    @classmethod
    def from_dict(cls, d: Any) -> AnomalyScorer:
        """Parse ``anomaly.json``; InvalidArgument naming the bad key."""
        if not isinstance(d, dict) or d.get("type", "kmeans") != "kmeans":
            raise InvalidArgument("anomaly.json must be an object with type 'kmeans'",
                                  field=ANOMALY_FILE)
        try:
            sel = np.asarray(d["selected_features"], dtype=np.int64)
            mean = np.asarray(d["mean"], dtype=np.float64)
            std = np.asarray(d["std"], dtype=np.float64)
            centers = np.asarray(d["centers"], dtype=np.float64)
            radii = np.asarray(d["radii"], dtype=np.float64)
            inputs = tuple(str(x) for x in d["inputs"])
            threshold = d.get("threshold")
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidArgument(f"anomaly.json is malformed: {e}", field=ANOMALY_FILE) from None
        f = sel.shape[0] if sel.ndim == 1 else -1
        if (f < 1 or mean.shape != (f,) or std.shape != (f,) or centers.ndim != 2
                or centers.shape[1] != f or radii.shape != (centers.shape[0],) or not inputs):
            raise InvalidArgument(
                "anomaly.json: selected_features, mean, std ([F]), centers ([K, F]) and radii "
                "([K]) disagree in shape, or inputs is empty", field=ANOMALY_FILE)
        return cls(inputs, sel, mean, std, centers, radii,
                   None if threshold is None else float(threshold))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "kmeans", "inputs": list(self.inputs),
                "selected_features": self.selected_features.tolist(), "mean": self.mean.tolist(),
                "std": self.std.tolist(), "centers": self.centers.tolist(),
                "radii": self.radii.tolist(), "threshold": self.threshold}

    def score(self, x: np.ndarray) -> np.ndarray:
        """Anomaly scores ``[N]`` (float32) of flat features ``[N, F_in]``."""
        if x.shape[1] <= int(self.selected_features.max()):
            raise InvalidArgument(
                f"anomaly scorer selects feature {int(self.selected_features.max())} but the "
                f"blocks {', '.join(self.inputs)} give {x.shape[1]}", field=ANOMALY_FILE)
        z = (x[:, self.selected_features].astype(np.float64) - self.mean) / self.std
        d2 = ((z[:, None, :] - self.centers[None, :, :]) ** 2).sum(-1)
        return (np.sqrt(d2) - self.radii[None, :]).min(axis=1).astype(np.float32)


@dataclass(frozen=True)
class ModelFiles:
    """The parsed content of a model directory (models as bytes, not yet loaded)."""

    impulse: Impulse
    labels: tuple[str, ...]
    model_int8: bytes | None
    model_float32: bytes | None
    anomaly: AnomalyScorer | None = None
    name: str = "impulse"

    def model_bytes(self, model_type: str) -> bytes:
        """The ``.tflite`` for ``model_type`` (``int8`` | ``float32``); NotFound if absent."""
        if model_type not in MODEL_TYPES:
            raise InvalidArgument(f"model_type {model_type!r} must be one of "
                                  f"{', '.join(MODEL_TYPES)}", field="model_type")
        data = self.model_int8 if model_type == "int8" else self.model_float32
        if data is None:
            raise NotFound(f"this deployment has no {model_type} model", field="model_type")
        return data


def model_dir_files(impulse: Impulse, labels: tuple[str, ...] | list[str], model_int8: bytes,
                    model_float32: bytes | None = None, *, anomaly: AnomalyScorer | None = None,
                    name: str = "impulse", feature_count: int | None = None) -> dict[str, bytes]:
    """File name -> content of a model directory (what the builder uploads under
    ``projects/{id}/builds/{build_id}/model/`` and what the artifact zip holds)."""
    files = {
        IMPULSE_FILE: impulse.to_json().encode(),
        LABELS_FILE: json.dumps(list(labels)).encode(),
        INT8_FILE: bytes(model_int8),
    }
    if model_float32 is not None:
        files[FLOAT_FILE] = bytes(model_float32)
    if anomaly is not None:
        files[ANOMALY_FILE] = json.dumps(anomaly.to_dict()).encode()
    info = {"layout_version": LAYOUT_VERSION, "name": name, "labels": len(labels),
            "feature_count": feature_count, "models": [k for k, v in
                                                       (("int8", model_int8),
                                                        ("float32", model_float32)) if v]}
    files[INFO_FILE] = json.dumps(info, indent=2).encode()
    return files


def _read_members(path: Path) -> dict[str, bytes]:
    """Top-level files of a directory or zip (only the ones the loader reads)."""
    wanted = (IMPULSE_FILE, LABELS_FILE, INT8_FILE, FLOAT_FILE, ANOMALY_FILE, INFO_FILE)
    if path.is_dir():
        if not (path / IMPULSE_FILE).is_file():
            zips = sorted(path.glob("*.zip"))
            if len(zips) == 1:
                return _read_members(zips[0])
            raise NotFound(f"{path} holds no {IMPULSE_FILE} (nor exactly one artifact .zip)",
                           field="model")
        return {n: (path / n).read_bytes() for n in wanted if (path / n).is_file()}
    if not path.is_file():
        raise NotFound(f"model path {path} does not exist", field="model")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            prefix = ""
            if IMPULSE_FILE not in names:  # a zip of a folder: members under one directory
                tops = [n for n in names if n.endswith("/" + IMPULSE_FILE) and n.count("/") == 1]
                prefix = tops[0][: -len(IMPULSE_FILE)] if len(tops) == 1 else ""
            return {n: zf.read(prefix + n) for n in wanted if prefix + n in names}
    except (zipfile.BadZipFile, OSError) as e:
        raise InvalidArgument(f"{path} is neither a model directory nor a readable zip: {e}",
                              field="model") from None


def load_model_source(path: str | Path) -> ModelFiles:
    """Read a model directory or artifact zip; InvalidArgument/NotFound naming the file at
    fault. The impulse is validated; labels must be a non-empty list of distinct strings."""
    path = Path(path)
    m = _read_members(path)
    if IMPULSE_FILE not in m:
        raise NotFound(f"{path} holds no {IMPULSE_FILE}", field="model")
    impulse = Impulse.from_json(m[IMPULSE_FILE]).validate()
    if LABELS_FILE not in m:
        raise NotFound(f"{path} holds no {LABELS_FILE}", field="model")
    try:
        labels = json.loads(m[LABELS_FILE])
    except ValueError as e:
        raise InvalidArgument(f"{LABELS_FILE} is not JSON: {e}", field=LABELS_FILE) from None
    if (not isinstance(labels, list) or not labels
            or not all(isinstance(x, str) and x for x in labels)
            or len(set(labels)) != len(labels)):
        raise InvalidArgument(f"{LABELS_FILE} must be a non-empty list of distinct strings",
                              field=LABELS_FILE)
    if INT8_FILE not in m and FLOAT_FILE not in m:
        raise NotFound(f"{path} holds neither {INT8_FILE} nor {FLOAT_FILE}", field="model")
    anomaly = None
    if ANOMALY_FILE in m:
        try:
            anomaly = AnomalyScorer.from_dict(json.loads(m[ANOMALY_FILE]))
        except ValueError as e:
            raise InvalidArgument(f"{ANOMALY_FILE} is not JSON: {e}", field=ANOMALY_FILE) from None
    name = "impulse"
    if INFO_FILE in m:
        with contextlib.suppress(ValueError, AttributeError):  # informational only
            name = str(json.loads(m[INFO_FILE]).get("name") or name)
    return ModelFiles(impulse, tuple(labels), m.get(INT8_FILE), m.get(FLOAT_FILE), anomaly, name)
