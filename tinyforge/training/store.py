"""Where trained models live in the object store and the metadata DB, and how to read them.

Object layout (``P`` = project id, ``M`` = model id, ``T`` = test-run id)::

    projects/P/models/M/model_int8.tflite       full-int8 TFLite (int8 in/out, batch 1)
    projects/P/models/M/model_float32.tflite    float32 TFLite of the same network
    projects/P/models/M/learn/metadata.json     TrainedModel.metadata(): the learning block's
    projects/P/models/M/learn/model.keras       own save format (tinyforge.learn.base.save);
    projects/P/models/M/learn/model.pkl         .keras for networks, .pkl for scikit-learn
    projects/P/models/M/learn/export.json       blocks without a network form (K-means, GMM,
                                                random forest): parameters for on-device code
    projects/P/models/M/training_curves.png     loss / accuracy per epoch (Keras blocks)
    projects/P/models/M/metadata.json           the model manifest, written LAST
    projects/P/models/M/tests/T/results.json    per-window and per-sample results of a test
    projects/P/models/M/tests/T/*.png           confusion matrices, anomaly score histogram
    projects/P/models/M/tests/T/summary.json    the test run's summary, written LAST

The TFLite files exist only for blocks with a neural-network form. ``metadata.json`` names
every other file (``files``: name -> key, size, sha256, content type) and carries all a
deployment needs without the DB: ``impulse`` (the full impulse definition of the trained
version, so the DSP can be rebuilt), ``impulse_id``/``impulse_version``, ``learn_block``,
``block_type``, ``task``, ``labels``, ``input_blocks`` (processing blocks feeding the model, in
the order their features are concatenated), ``feature_shape`` / ``feature_kind`` (the model
reads the flat concatenation, ``prod(feature_shape)`` floats), ``quantization`` (int8 input /
output scale and zero point), ``dataset_hash``, ``code_version``, ``options``, ``params``,
``metrics`` and ``created_at``.

Visibility: a model row (:class:`tinyforge.store.models.Model`) is created ``pending`` to
reserve its id, every file is stored, ``metadata.json`` last, and only then is the row set
``ready``. Any failure deletes the objects and the row, so a half-written model is never
visible: lookups and listings here only see ready rows, and :func:`load_model_files` only
trusts files named by ``metadata.json`` whose sha256 matches.

Consumers (deployment builder, live classification) call :func:`load_model_files`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinyforge.errors import FailedPrecondition, InvalidArgument, NotFound
from tinyforge.store.models import Model, ModelTestRun
from tinyforge.store.objects import ObjectStore

READY, PENDING = "ready", "pending"
INT8_FILE = "model_int8.tflite"
FLOAT32_FILE = "model_float32.tflite"
METADATA_FILE = "metadata.json"
CURVES_FILE = "training_curves.png"
LEARN_DIR = "learn/"
CONTENT_TYPES = {".tflite": "application/x-tflite", ".json": "application/json",
                 ".png": "image/png", ".keras": "application/zip",
                 ".pkl": "application/x-python-pickle"}


def model_prefix(project_id: int, model_id: int) -> str:
    """Folder (ending in ``/``) of one model's files."""
    return f"projects/{project_id}/models/{model_id}/"


def test_prefix(project_id: int, model_id: int, test_id: int) -> str:
    """Folder (ending in ``/``) of one test run's files."""
    return f"{model_prefix(project_id, model_id)}tests/{test_id}/"


def content_type(name: str) -> str:
    """Content type of a model file by its extension."""
    for ext, ctype in CONTENT_TYPES.items():
        if name.endswith(ext):
            return ctype
    return "application/octet-stream"


# -- reading ------------------------------------------------------------------------------------
@dataclass
class ModelFiles:
    """A stored model read back: its manifest and the bytes of its files.

    ``metadata``: the parsed ``metadata.json`` (see the module docstring). ``files``: file name
    (relative to the model folder, e.g. ``model_int8.tflite``, ``learn/model.keras``) -> bytes,
    each checked against the sha256 the manifest records.
    """

    project_id: int
    model_id: int
    metadata: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def int8(self) -> bytes | None:
        """The full-int8 TFLite model (None for blocks without a network form)."""
        return self.files.get(INT8_FILE)

    @property
    def float32(self) -> bytes | None:
        """The float32 TFLite model (None for blocks without a network form)."""
        return self.files.get(FLOAT32_FILE)

    @property
    def labels(self) -> list[str]:
        return list(self.metadata.get("labels", []))

    def trained(self) -> Any:
        """The :class:`tinyforge.learn.base.TrainedModel` (Keras or scikit-learn form)."""
        import tempfile
        from pathlib import Path

        from tinyforge.learn.base import load_trained

        with tempfile.TemporaryDirectory(prefix="tinyforge-model-") as tmp:
            d = Path(tmp) / "learn"
            d.mkdir()
            for name, data in self.files.items():
                if name.startswith(LEARN_DIR):
                    (d / name[len(LEARN_DIR):]).write_bytes(data)
            return load_trained(d)


def _objects_of(source: Any) -> ObjectStore:
    return source if isinstance(source, ObjectStore) else source.objects


def load_model_files(source: ObjectStore | Any, project_id: int, model_id: int, *,
                     names: Callable[[str], bool] | None = None) -> ModelFiles:
    """Read model ``model_id`` of a project from the object store.

    ``source``: an :class:`ObjectStore` or anything with ``.objects`` (a PlatformContext).
    ``names``: optional filter of the file names to read (default: every file).
    NotFound when the model has no manifest (never trained, failed, or still being written);
    FailedPrecondition when a file no longer matches the sha256 its manifest recorded.
    """
    objects = _objects_of(source)
    prefix = model_prefix(project_id, model_id)
    try:
        meta = json.loads(objects.get_bytes(prefix + METADATA_FILE))
    except NotFound:
        raise NotFound(f"model {model_id} does not exist in project {project_id}",
                       field="model_id") from None
    out = ModelFiles(project_id, model_id, meta)
    for name, info in meta.get("files", {}).items():
        if names is not None and not names(name):
            continue
        data = objects.get_bytes(info["key"])
        if hashlib.sha256(data).hexdigest() != info["sha256"]:
            raise FailedPrecondition(f"model {model_id} file {name} changed after the model was "
                                     "stored; train the model again", field="model_id")
        out.files[name] = data
    return out


# -- DB rows ------------------------------------------------------------------------------------
def get_model_row(s: Session, project_id: int, model_id: int) -> Model:
    """The ready model ``model_id`` of a project; NotFound otherwise (pending rows too)."""
    row = s.get(Model, model_id) if model_id > 0 else None
    if row is None or row.project_id != project_id or row.state != READY:
        raise NotFound(f"model {model_id} does not exist in project {project_id}",
                       field="model_id")
    return row


def latest_model_row(s: Session, project_id: int, impulse_id: int = 0) -> Model:
    """The newest ready model of a project (of one impulse when ``impulse_id``)."""
    q = select(Model).where(Model.project_id == project_id, Model.state == READY)
    if impulse_id:
        q = q.where(Model.impulse_id == impulse_id)
    row = s.scalar(q.order_by(Model.id.desc()).limit(1))
    if row is None:
        what = f"impulse {impulse_id}" if impulse_id else f"project {project_id}"
        raise NotFound(f"{what} has no trained model yet: run StartTraining first",
                       field="model_id")
    return row


def list_model_rows(s: Session, project_id: int, impulse_id: int = 0) -> list[Model]:
    """Ready models of a project, newest first (of one impulse when ``impulse_id``)."""
    q = select(Model).where(Model.project_id == project_id, Model.state == READY)
    if impulse_id:
        q = q.where(Model.impulse_id == impulse_id)
    return list(s.scalars(q.order_by(Model.id.desc())))


def get_test_row(s: Session, project_id: int, model_id: int, test_id: int = 0) -> ModelTestRun:
    """A ready test run of a model (``test_id`` 0 = the latest); NotFound otherwise."""
    get_model_row(s, project_id, model_id)
    if test_id < 0:
        raise InvalidArgument(f"test_id must be >= 0 (0 = latest), got {test_id}",
                              field="test_id")
    q = select(ModelTestRun).where(ModelTestRun.model_id == model_id,
                                   ModelTestRun.state == READY)
    if test_id:
        q = q.where(ModelTestRun.id == test_id)
    row = s.scalar(q.order_by(ModelTestRun.id.desc()).limit(1))
    if row is None:
        what = f"test run {test_id}" if test_id else "no test run yet (run TestModel)"
        raise NotFound(f"model {model_id}: {what}" + (" does not exist" if test_id else ""),
                       field="test_id")
    return row


def cleanup_stale_models(db: Any, objects: ObjectStore) -> int:
    """Delete pending model / test-run rows (and their objects) whose job is no longer running
    — left by a process that died while storing. Returns the number of rows removed."""
    from tinyforge.store.models import Job, JobStatus

    removed = 0
    with db.session() as s:
        for cls in (ModelTestRun, Model):
            for row in s.scalars(select(cls).where(cls.state == PENDING)):
                job = s.get(Job, row.job_id) if row.job_id else None
                if job is not None and job.status in (JobStatus.PENDING, JobStatus.RUNNING):
                    continue
                model_id = row.model_id if cls is ModelTestRun else row.id
                prefix = (test_prefix(row.project_id, model_id, row.id) if cls is ModelTestRun
                          else model_prefix(row.project_id, row.id))
                objects.delete_prefix(prefix)
                s.delete(row)
                removed += 1
    return removed
