"""Float32 vs int8 evaluation of the two TFLite forms of one model on the same test features.

Classification: accuracy of each (argmax), the difference in percentage points, how often the
two forms agree, and the largest score difference. Regression: MAE of each and the largest
output difference.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tinyforge.learn.base import TrainedModel
from tinyforge.learn.checks import check_labels, check_targets, encode_labels
from tinyforge.quantize.convert import ConvertedModels
from tinyforge.quantize.runner import TFLiteModel

#: a feature whose values span fewer int8 input steps than this keeps little information
COARSE_STEPS = 16


def coarse_features(x: np.ndarray, input_scale: float) -> np.ndarray:
    """Indices of features of ``x`` ``[N, F]`` whose range is under COARSE_STEPS input steps.

    The int8 input has one scale for all features: when features differ in scale by orders
    of magnitude (e.g. RMS in mg next to log spectra) the small ones are quantized to a few
    levels. Scale them in the DSP block (e.g. spectral analysis ``scale_axes``).
    """
    span = x.max(axis=0) - x.min(axis=0)
    return np.flatnonzero((span > 0) & (span / input_scale < COARSE_STEPS))


@dataclass(frozen=True)
class QuantizationReport:
    """Float32 vs int8 on one test set. Accuracies are fractions; ``accuracy_difference`` is
    ``(int8 - float) * 100`` percentage points (None for regression)."""

    float32_bytes: int
    int8_bytes: int
    float32_seconds: float
    int8_seconds: float
    max_output_difference: float
    float_accuracy: float | None = None
    int8_accuracy: float | None = None
    accuracy_difference: float | None = None
    agreement: float | None = None
    float_mae: float | None = None
    int8_mae: float | None = None
    #: features whose test-set range spans fewer than COARSE_STEPS int8 input steps
    coarse_input_features: int = 0
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def compare_float_int8(
    trained: TrainedModel, converted: ConvertedModels, x_test: Any, y_test: Any
) -> QuantizationReport:
    """Run both TFLite forms on ``x_test`` and compare them (see the module docstring)."""
    x = trained.check_input(x_test, "X_test")
    out_f = TFLiteModel(converted.float32).predict(x)
    q_model = TFLiteModel(converted.int8)
    out_q = q_model.predict(x)
    coarse = coarse_features(x, float(q_model._in["quantization"][0]))
    warns = ()
    if coarse.size:
        warns = (f"{coarse.size} of {x.shape[1]} features span fewer than {COARSE_STEPS} int8 "
                 f"input steps (first: index {int(coarse[0])}); features differ in scale, "
                 "scale them in the processing block to keep int8 accuracy",)
    base = dict(
        coarse_input_features=int(coarse.size), warnings=warns,
        float32_bytes=len(converted.float32), int8_bytes=len(converted.int8),
        float32_seconds=converted.float32_seconds, int8_seconds=converted.int8_seconds,
        max_output_difference=float(np.abs(out_f - out_q).max()),
    )  # fmt: skip
    if trained.task == "classification":
        y = encode_labels(check_labels(y_test, len(x), "y_test"), trained.labels, "y_test")
        pf, pq = out_f.argmax(1), out_q.argmax(1)
        acc_f, acc_q = float((pf == y).mean()), float((pq == y).mean())
        return QuantizationReport(
            **base, float_accuracy=acc_f, int8_accuracy=acc_q,
            accuracy_difference=(acc_q - acc_f) * 100, agreement=float((pf == pq).mean()),
        )  # fmt: skip
    y = check_targets(y_test, len(x), "y_test")
    return QuantizationReport(
        **base, float_mae=float(np.abs(out_f - y).mean()), int8_mae=float(np.abs(out_q - y).mean())
    )
