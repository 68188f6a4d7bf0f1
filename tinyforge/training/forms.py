"""Evaluating a stored model in the forms it really has (validation in training, TestModel).

Built-in blocks always have a float form (the float32 TFLite, or the Keras / scikit-learn
model itself) and, for networks, an int8 form. A custom learn block may give only one TFLite
form (:mod:`tinyforge.learn.custom`): an int8-only model is reported as ``int8`` alone — never
as a "float" result that was really computed with int8 kernels — and the summary lists the
missing forms.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyforge.evaluation.testing import ModelTestReport, evaluate_model
from tinyforge.learn.base import TrainedModel


def evaluate_forms(trained: TrainedModel, x: Any, y: Any, *, float32: bytes | None,
                   int8: bytes | None, **kwargs: Any) -> ModelTestReport:
    """:func:`tinyforge.evaluation.testing.evaluate_model` over the forms that exist.

    ``float32`` / ``int8``: the stored TFLite forms (None when absent). Without float32 but
    with int8 and no float model of its own (a custom block's int8-only model), the report
    holds the ``int8`` form only. ``kwargs`` go to ``evaluate_model``.
    """
    from tinyforge.learn.custom import custom_models

    if not (float32 is None and int8 is not None and custom_models(trained) is not None):
        return evaluate_model(trained, x, y, tflite_float=float32, tflite_int8=int8, **kwargs)
    report = evaluate_model(trained, x, y, tflite_float=int8, tflite_int8=None, **kwargs)
    report.forms = {"int8": report.forms["float"]}
    for row in report.samples:
        if "float" in row:
            row["int8"] = row.pop("float")
    if "confusion_matrix_float" in report.plots:
        from tinyforge.evaluation import plots

        del report.plots["confusion_matrix_float"]
        m = report.forms["int8"]
        report.plots["confusion_matrix_int8"] = plots.confusion_matrix_png(
            np.asarray(m["confusion_matrix"]), m["labels"],
            f"Confusion matrix (int8), accuracy {m['accuracy'] * 100:.1f}%")
    report.accuracy_difference = None
    return report


def missing_forms(metadata: dict[str, Any]) -> list[str]:
    """The TFLite forms a stored model lacks, from its manifest (custom blocks only)."""
    return [str(f) for f in metadata.get("missing_forms") or []]
