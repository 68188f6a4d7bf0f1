"""The learning-block contract shared by every block in :mod:`tinyforge.learn`.

A block turns training features ``X`` ``[N, *feature_shape]`` (or flattened ``[N, F]``) and
targets into a :class:`TrainedModel`:

- ``classification`` (classifier, classical): labels are class names; ``predict`` gives class
  probabilities ``[N, classes]`` in the order of ``TrainedModel.labels``;
- ``regression``: targets ``[N]`` or ``[N, outputs]``; ``predict`` gives ``[N, outputs]``;
- ``anomaly``: no labels; ``predict`` gives one anomaly score per window ``[N]`` (higher = more
  anomalous) and ``extra["threshold"]`` is the suggested decision threshold.

Keras models always take the flattened float32 features ``[N, F]`` and reshape inside (as the
C SDK hands the model a flat feature buffer); :meth:`TrainedModel.export_keras` gives the same
model with a fixed batch size of 1 for TFLite conversion.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyforge.dsp.params import ParamSpec, validate_params
from tinyforge.errors import InvalidArgument
from tinyforge.learn.checks import (
    TrainOptions,
    check_features,
    check_labels,
    class_labels,
    encode_labels,
    resolve_feature_layout,
)
from tinyforge.learn.split import stratified_split

TASKS = ("classification", "regression", "anomaly")

#: ``on_epoch(epoch, metrics)``: called after each epoch (1-based) with e.g.
#: ``{"loss": .., "accuracy": .., "val_loss": .., "val_accuracy": ..}``. Raising from it (for
#: example :class:`~tinyforge.errors.Cancelled`) aborts training.
EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass
class TrainContext:
    """What a block's ``_train`` gets besides the data: layout, params, options, callback."""

    feature_shape: tuple[int, ...]
    feature_kind: str
    params: dict[str, Any]
    options: TrainOptions
    on_epoch: EpochCallback | None = None
    #: class names (classification) or output names (regression); set before ``_train``
    labels: list[str] = field(default_factory=list)


@dataclass
class TrainedModel:
    """A trained learning block.

    ``model``: a ``keras.Model`` on flat features ``[N, F]`` (Keras blocks), or a scikit-learn
    based scorer with ``predict(x_flat)`` and ``to_keras()``. ``history``: one dict per epoch
    (``epoch`` plus the Keras metrics). ``extra``: JSON-safe block details (anomaly threshold,
    score statistics, chosen architecture...).
    """

    block: str
    task: str
    labels: list[str]
    feature_shape: tuple[int, ...]
    feature_kind: str
    params: dict[str, Any]
    options: TrainOptions
    history: list[dict[str, float]]
    model: Any
    extra: dict[str, Any] = field(default_factory=dict)
    train_seconds: float = 0.0

    @property
    def feature_size(self) -> int:
        """Number of feature values per sample (the model's flat input length)."""
        return int(np.prod(self.feature_shape))

    @property
    def is_keras(self) -> bool:
        return not hasattr(self.model, "to_keras")

    def check_input(self, x: Any, field: str = "features") -> np.ndarray:
        """``x`` validated against the model's feature shape, as float32 ``[N, F]``."""
        return check_features(x, self.feature_shape, field)

    def predict(self, x: Any, batch_size: int = 1024) -> np.ndarray:
        """Float outputs for ``x`` ``[N, *feature_shape]`` (see the module docstring)."""
        flat = self.check_input(x)
        if self.is_keras:
            out = self.model.predict(flat, batch_size=batch_size, verbose=0)
        else:
            out = self.model.predict(flat)
        return np.asarray(out, dtype=np.float32)

    def export_keras(self) -> Any | None:
        """The model as a Keras model with input ``[1, F]`` (for TFLite), or None when the
        block has no neural-network form (random forest, K-means, GMM)."""
        if not self.is_keras:
            return self.model.to_keras()
        from tinyforge.learn.keras_models import batch1_model

        return batch1_model(self.model, self.feature_size)

    def metadata(self) -> dict[str, Any]:
        """JSON-safe description: block, task, labels, shapes, params, options, history."""
        return {
            "block": self.block, "task": self.task, "labels": list(self.labels),
            "feature_shape": list(self.feature_shape), "feature_kind": self.feature_kind,
            "params": self.params, "options": self.options.to_json(), "history": self.history,
            "extra": self.extra, "train_seconds": self.train_seconds,
            "format": "keras" if self.is_keras else "pickle",
        }  # fmt: skip

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``metadata.json`` + ``model.keras`` (or ``model.pkl``) into a new directory.

        The directory appears complete or not at all (written beside it, then renamed).
        """
        target = Path(directory)
        if target.exists():
            raise InvalidArgument(f"{target} already exists", field="directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            if self.is_keras:
                self.model.save(tmp / "model.keras")
            else:
                with open(tmp / "model.pkl", "wb") as f:
                    pickle.dump(self.model, f)
            (tmp / "metadata.json").write_text(json.dumps(self.metadata(), indent=1))
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target


def load_trained(directory: str | os.PathLike[str]) -> TrainedModel:
    """Read a model written by :meth:`TrainedModel.save` (only load directories you wrote:
    the scikit-learn form is a pickle)."""
    d = Path(directory)
    meta_path = d / "metadata.json"
    if not meta_path.is_file():
        raise InvalidArgument(f"{d} holds no saved model (metadata.json missing)",
                              field="directory")
    meta = json.loads(meta_path.read_text())
    if meta["format"] == "keras":
        import keras

        model = keras.models.load_model(d / "model.keras", compile=False)
    else:
        with open(d / "model.pkl", "rb") as f:
            model = pickle.load(f)  # noqa: S301 - our own file
    return TrainedModel(
        block=meta["block"], task=meta["task"], labels=meta["labels"],
        feature_shape=tuple(meta["feature_shape"]), feature_kind=meta["feature_kind"],
        params=meta["params"], options=TrainOptions(**meta["options"]), history=meta["history"],
        model=model, extra=meta["extra"], train_seconds=meta["train_seconds"],
    )  # fmt: skip


class LearnBlock:
    """Base class; subclasses set the class attributes and implement :meth:`_train`."""

    name: str = ""
    title: str = ""
    description: str = ""
    task: str = "classification"
    params: tuple[ParamSpec, ...] = ()
    #: True when the block trains a Keras network (epochs/learning rate/batch size apply)
    uses_keras: bool = True

    def validate(self, params: dict[str, Any] | None, field_prefix: str = "") -> dict[str, Any]:
        """Type/range-check ``params``; return the complete dict with defaults."""
        return validate_params(self.params, params, field_prefix)

    def schema(self) -> dict[str, Any]:
        """``parameters.json``-style description (``type: learn``)."""
        return {
            "version": 1,
            "type": "learn",
            "info": {
                "name": self.name, "title": self.title, "description": self.description,
                "task": self.task, "usesKeras": self.uses_keras,
            },
            "parameters": [s.to_json() for s in self.params],
        }  # fmt: skip

    def train(
        self,
        x_train: Any,
        y_train: Any = None,
        x_val: Any = None,
        y_val: Any = None,
        *,
        feature_shape: Sequence[int] | None = None,
        feature_kind: str | None = None,
        params: dict[str, Any] | None = None,
        seed: int = 0,
        epochs: int = 30,
        learning_rate: float = 0.005,
        batch_size: int = 32,
        early_stopping: bool = False,
        patience: int = 5,
        validation_fraction: float = 0.2,
        on_epoch: EpochCallback | None = None,
        sample_keys: Sequence[str] | None = None,
    ) -> TrainedModel:
        """Train on ``x_train`` ``[N, *feature_shape]`` (or ``[N, F]``) and ``y_train``.

        Without ``x_val`` a stratified validation split of ``validation_fraction`` is taken
        from the training set (stable per ``seed`` and ``sample_keys``). Raises InvalidArgument
        for bad hyper-parameters, empty or non-finite features, a single class, labels of the
        validation set unknown to training.
        """
        import time

        options = TrainOptions(
            epochs=epochs, learning_rate=learning_rate, batch_size=batch_size, seed=seed,
            early_stopping=early_stopping, patience=patience,
            validation_fraction=validation_fraction,
        ).validate()  # fmt: skip
        p = self.validate(params)
        x_arr = np.asarray(x_train)
        if x_arr.ndim == 0 or x_arr.size == 0:
            raise InvalidArgument("X_train is empty: no training samples", field="X_train")
        shape, kind = resolve_feature_layout(x_arr, feature_shape, feature_kind, "X_train")
        ctx = TrainContext(shape, kind, p, options, on_epoch)
        self._check_params(ctx)
        xtr = check_features(x_arr, shape, "X_train")
        xva = None if x_val is None else check_features(x_val, shape, "X_val")
        if self.task == "anomaly":
            if xva is None and options.validation_fraction > 0:
                # held-out normal windows: their scores show how the threshold generalises
                tr, va = stratified_split(np.zeros(len(xtr)), options.validation_fraction, seed,
                                          sample_keys)
                if va.size:
                    xtr, xva = xtr[tr], xtr[va]
            t0 = time.perf_counter()
            tm = self._train(ctx, xtr, None, xva, None)
        else:
            if y_train is None:
                raise InvalidArgument("y_train is required for this block", field="y_train")
            ytr, yva, labels = self._targets(xtr, y_train, xva, y_val)
            ctx.labels = labels
            if xva is None and options.validation_fraction > 0:
                strata = ytr if self.task == "classification" else np.zeros(len(xtr))
                tr, va = stratified_split(strata, options.validation_fraction, seed, sample_keys)
                if va.size:
                    xtr, xva, ytr, yva = xtr[tr], xtr[va], ytr[tr], ytr[va]
            t0 = time.perf_counter()
            tm = self._train(ctx, xtr, ytr, xva, yva)
            tm.labels = labels
        tm.train_seconds = time.perf_counter() - t0
        return tm

    def _targets(
        self, xtr: np.ndarray, y_train: Any, xva: np.ndarray | None, y_val: Any
    ) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
        """Encoded targets for train/validation and the label (or output) names."""
        ytr_s = check_labels(y_train, len(xtr), "y_train")
        labels = class_labels(ytr_s)
        ytr = encode_labels(ytr_s, labels, "y_train")
        yva = None
        if xva is not None:
            if y_val is None:
                raise InvalidArgument("y_val is required with X_val", field="y_val")
            yva = encode_labels(check_labels(y_val, len(xva), "y_val"), labels, "y_val")
        return ytr, yva, labels

    def _check_params(self, ctx: TrainContext) -> None:
        """Checks of params that depend on the feature layout (override when needed)."""

    def _train(
        self,
        ctx: TrainContext,
        x_train: np.ndarray,
        y_train: np.ndarray | None,
        x_val: np.ndarray | None,
        y_val: np.ndarray | None,
    ) -> TrainedModel:
        raise NotImplementedError
