"""What a deployment build starts from: the impulse, labels, model files and verification set.

:class:`DeployBundle` is frozen plain data. :func:`check_bundle` validates it (names, model
bytes, shapes of the test windows against the impulse, label/prediction counts) and raises
InvalidArgument naming the field, before any toolchain runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from tinyforge.errors import InvalidArgument
from tinyforge.impulse import Impulse

_C_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class DeployBundle:
    """One trained impulse ready to deploy.

    ``test_windows``: raw signal windows ``[N, T, axes]`` (images ``[N, H, W, C]``) in the units
    the DSP blocks take; ``platform_int8_predictions``: the platform's int8 predicted class index
    per test window (Python DSP + LiteRT int8), which the on-target run must reproduce.
    """

    impulse: Impulse
    labels: tuple[str, ...]
    model_int8: bytes
    model_float32: bytes | None
    test_windows: np.ndarray | None
    test_labels: tuple[str, ...] | None
    platform_int8_predictions: tuple[int, ...] | None
    name: str = "impulse"


def _is_tflite(data: bytes | None) -> bool:
    return isinstance(data, bytes | bytearray) and len(data) >= 8 and data[4:8] == b"TFL3"


def check_bundle(bundle: DeployBundle) -> None:
    """Validate ``bundle``; InvalidArgument naming the bad field and what is expected."""
    if not isinstance(bundle, DeployBundle):
        raise InvalidArgument("bundle must be a DeployBundle", field="bundle")
    if not isinstance(bundle.name, str) or not _C_NAME.match(bundle.name):
        raise InvalidArgument(f"name {bundle.name!r} must be a C identifier (letters, digits, "
                              "'_', not starting with a digit, at most 63 characters)",
                              field="name")
    if not isinstance(bundle.impulse, Impulse):
        raise InvalidArgument("impulse must be a tinyforge.impulse.Impulse", field="impulse")
    bundle.impulse.validate()
    labels = bundle.labels
    if not labels or not all(isinstance(s, str) and s for s in labels):
        raise InvalidArgument("labels must be a non-empty list of non-empty strings",
                              field="labels")
    if len(set(labels)) != len(labels):
        raise InvalidArgument("labels must not repeat", field="labels")
    if not _is_tflite(bundle.model_int8):
        raise InvalidArgument("model_int8 is not a TFLite flatbuffer (no TFL3 identifier)",
                              field="model_int8")
    if bundle.model_float32 is not None and not _is_tflite(bundle.model_float32):
        raise InvalidArgument("model_float32 is not a TFLite flatbuffer (no TFL3 identifier)",
                              field="model_float32")
    x = bundle.test_windows
    if x is None:
        if bundle.platform_int8_predictions is not None or bundle.test_labels is not None:
            raise InvalidArgument("test labels/predictions given without test_windows",
                                  field="test_windows")
        return
    shape = tuple(bundle.impulse.input.window_shape())
    arr = np.asarray(x)
    if arr.ndim != len(shape) + 1 or tuple(arr.shape[1:]) != shape or len(arr) == 0:
        raise InvalidArgument(f"test_windows have shape {arr.shape}, expected [N, "
                              f"{', '.join(map(str, shape))}] with N >= 1 for this impulse",
                              field="test_windows")
    if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)):
        raise InvalidArgument("test_windows must be finite numbers", field="test_windows")
    n = len(arr)
    if bundle.test_labels is not None:
        if len(bundle.test_labels) != n:
            raise InvalidArgument(f"{len(bundle.test_labels)} test labels for {n} windows",
                                  field="test_labels")
        bad = [s for s in bundle.test_labels if s not in labels]
        if bad:
            raise InvalidArgument(f"test label {bad[0]!r} is not one of {', '.join(labels)}",
                                  field="test_labels")
    preds = bundle.platform_int8_predictions
    if preds is not None:
        if len(preds) != n:
            raise InvalidArgument(f"{len(preds)} platform predictions for {n} windows",
                                  field="platform_int8_predictions")
        if not all(isinstance(p, int | np.integer) and 0 <= p < len(labels) for p in preds):
            raise InvalidArgument("platform predictions must be class indices "
                                  f"0..{len(labels) - 1}",
                                  field="platform_int8_predictions")
