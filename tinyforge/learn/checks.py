"""Input checks shared by every learning block: features, labels, hyper-parameters.

Every failure is an :class:`~tinyforge.errors.InvalidArgument` naming the field at fault and
what a valid value looks like, so a training job can fail with a reason a user can act on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyforge.errors import InvalidArgument

FEATURE_KINDS = ("flat", "spectrogram", "image")

# Hyper-parameter bounds: wide enough for any real use, tight enough to catch typos.
MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 65_536
MAX_LEARNING_RATE = 10.0


@dataclass(frozen=True)
class TrainOptions:
    """Training hyper-parameters common to all blocks.

    ``epochs``: passes over the training set (Keras blocks; ignored by scikit-learn blocks but
    still validated). ``learning_rate``: Adam step size. ``batch_size``: samples per step.
    ``seed``: makes the validation split, weight init, shuffling and augmentation repeatable.
    ``early_stopping``: stop when validation loss has not improved for ``patience`` epochs and
    keep the best weights. ``validation_fraction``: share of the training set held out for
    validation when no explicit validation set is given (0 disables validation).
    """

    epochs: int = 30
    learning_rate: float = 0.005
    batch_size: int = 32
    seed: int = 0
    early_stopping: bool = False
    patience: int = 5
    validation_fraction: float = 0.2

    def validate(self) -> TrainOptions:
        """Raise InvalidArgument for the first out-of-range value; return self."""
        _check_int("epochs", self.epochs, 1, MAX_EPOCHS)
        _check_int("batch_size", self.batch_size, 1, MAX_BATCH_SIZE)
        _check_int("patience", self.patience, 1, MAX_EPOCHS)
        _check_int("seed", self.seed, 0, 2**32 - 1)
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not np.isfinite(lr) \
                or not 0 < lr <= MAX_LEARNING_RATE:
            raise InvalidArgument(
                f"learning_rate must be a number in (0, {MAX_LEARNING_RATE:g}], got {lr!r}",
                field="learning_rate",
            )
        vf = self.validation_fraction
        if isinstance(vf, bool) or not isinstance(vf, int | float) or not 0 <= vf < 0.9:
            raise InvalidArgument(
                f"validation_fraction must be in [0, 0.9), got {vf!r}", field="validation_fraction"
            )
        if not isinstance(self.early_stopping, bool):
            raise InvalidArgument("early_stopping must be true or false", field="early_stopping")
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs, "learning_rate": self.learning_rate,
            "batch_size": self.batch_size, "seed": self.seed,
            "early_stopping": self.early_stopping, "patience": self.patience,
            "validation_fraction": self.validation_fraction,
        }  # fmt: skip


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not lo <= value <= hi:
        raise InvalidArgument(f"{name} must be an integer in {lo}..{hi}, got {value!r}", field=name)


def resolve_feature_layout(
    x: np.ndarray, feature_shape: Sequence[int] | None, feature_kind: str | None, field: str
) -> tuple[tuple[int, ...], str]:
    """Per-sample feature shape and kind for a batch ``x`` ``[N, ...]``.

    ``feature_shape`` defaults to ``x.shape[1:]``; ``feature_kind`` defaults to ``flat`` for 1-D,
    ``spectrogram`` for 2-D and ``image`` for 3-D shapes. ``x`` may also be flattened
    ``[N, prod(feature_shape)]``.
    """
    if feature_shape is None:
        shape = tuple(int(d) for d in x.shape[1:])
    else:
        shape = tuple(int(d) for d in feature_shape)
    if not shape or any(d < 1 for d in shape) or len(shape) > 3:
        raise InvalidArgument(
            f"feature_shape must have 1 to 3 positive dimensions, got {shape}",
            field="feature_shape",
        )
    if feature_kind is None:
        feature_kind = FEATURE_KINDS[len(shape) - 1]
    if feature_kind not in FEATURE_KINDS:
        raise InvalidArgument(
            f"feature_kind must be one of {', '.join(FEATURE_KINDS)}, got {feature_kind!r}",
            field="feature_kind",
        )
    want = {"flat": (1,), "spectrogram": (2,), "image": (3,)}[feature_kind]
    if len(shape) not in want:
        raise InvalidArgument(
            f"feature_kind {feature_kind!r} needs a {want[0]}-D feature_shape, got {shape}",
            field="feature_shape",
        )
    check_features(x, shape, field)
    return shape, feature_kind


def check_features(x: Any, feature_shape: tuple[int, ...], field: str) -> np.ndarray:
    """Validate a feature batch and return it as float32 ``[N, prod(feature_shape)]``.

    Accepts ``[N, *feature_shape]`` or flattened ``[N, F]``. Raises InvalidArgument for an empty
    batch, a shape that does not match, non-numeric values, NaN or Inf (naming the first sample).
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise InvalidArgument(f"{field} must be a real numeric array, got dtype {x.dtype}",
                              field=field)
    if x.ndim == 0 or x.shape[0] == 0:
        raise InvalidArgument(f"{field} is empty: no samples to work with", field=field)
    size = int(np.prod(feature_shape))
    per_sample = tuple(x.shape[1:])
    if per_sample != tuple(feature_shape) and per_sample != (size,):
        raise InvalidArgument(
            f"{field} has samples of shape {per_sample}, expected {tuple(feature_shape)} "
            f"(or {size} flattened values)",
            field=field,
        )
    flat = x.reshape(x.shape[0], size).astype(np.float32, copy=False)
    finite = np.isfinite(flat)
    if not finite.all():
        bad_rows = np.flatnonzero(~finite.all(axis=1))
        raise InvalidArgument(
            f"{field} contains NaN or infinite values in {bad_rows.size} sample(s), the first "
            f"at index {int(bad_rows[0])}",
            field=field,
        )
    return flat


def check_labels(y: Any, n: int, field: str) -> np.ndarray:
    """Labels as a 1-D array of strings, one per sample (ints and strings are accepted)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise InvalidArgument(f"{field} must be one label per sample, got shape {y.shape}",
                              field=field)
    if y.shape[0] != n:
        raise InvalidArgument(
            f"{field} has {y.shape[0]} labels but there are {n} feature rows", field=field
        )
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise InvalidArgument(f"{field} contains NaN or infinite labels", field=field)
        if np.any(y != np.round(y)):
            raise InvalidArgument(f"{field} must hold class names or integer class ids",
                                  field=field)
        y = y.astype(np.int64)
    out = y.astype(str)
    if np.any(out == ""):
        raise InvalidArgument(f"{field} contains empty labels", field=field)
    return out


def class_labels(y_train: np.ndarray) -> list[str]:
    """Sorted distinct labels; InvalidArgument when there are fewer than two classes.

    Integer-like labels sort numerically (``"2"`` before ``"10"``).
    """
    labels = sorted(set(y_train.tolist()), key=_label_key)
    if len(labels) < 2:
        raise InvalidArgument(
            f"the training set has only one class ({labels[0]!r}); a classifier needs at "
            "least 2 classes",
            field="labels",
        )
    return labels


def _label_key(s: str) -> tuple[int, float, str]:
    try:
        return (0, float(int(s)), s)
    except ValueError:
        return (1, 0.0, s)


def encode_labels(y: np.ndarray, labels: list[str], field: str) -> np.ndarray:
    """Class indices (int32) of string labels ``y``; InvalidArgument for unknown labels."""
    index = {lab: i for i, lab in enumerate(labels)}
    unknown = sorted(set(y.tolist()) - set(index), key=_label_key)
    if unknown:
        raise InvalidArgument(
            f"{field} has label(s) {', '.join(repr(u) for u in unknown)} that do not occur in "
            f"the training set; training labels: {', '.join(labels)}",
            field=field,
        )
    return np.fromiter((index[v] for v in y.tolist()), dtype=np.int32, count=y.shape[0])


def check_targets(y: Any, n: int, field: str) -> np.ndarray:
    """Regression targets as float32 ``[N, outputs]``; InvalidArgument on NaN/shape."""
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.number):
        raise InvalidArgument(f"{field} must be numeric regression targets, got {y.dtype}",
                              field=field)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != n or y.shape[1] < 1:
        raise InvalidArgument(
            f"{field} must be [N] or [N, outputs] with N = {n}, got shape {y.shape}", field=field
        )
    y = y.astype(np.float32)
    if not np.isfinite(y).all():
        raise InvalidArgument(f"{field} contains NaN or infinite values", field=field)
    return y
