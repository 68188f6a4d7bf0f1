"""Model testing: run a trained model (Keras/scikit-learn float, TFLite float32, TFLite int8)
over a labelled test set and report per-sample results, metrics and plots.

- classification: per-sample prediction/confidence ("uncertain" below the threshold),
  confusion matrix, per-class precision/recall/F1, accuracy for each model form, and the
  int8 - float accuracy difference in percentage points;
- regression: MAE/RMSE/R² per form;
- anomaly: ROC-AUC, outcome counts at the model's threshold and the score distribution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinyforge.errors import InvalidArgument
from tinyforge.evaluation import metrics, plots
from tinyforge.learn.base import TrainedModel
from tinyforge.learn.checks import check_labels, check_targets, encode_labels

DEFAULT_THRESHOLD = 0.6  # Edge Impulse's default minimum confidence


@dataclass
class ModelTestReport:
    """Outcome of :func:`evaluate_model`. ``forms`` maps ``float`` / ``int8`` to its metrics
    (JSON-safe dicts); ``samples`` holds one dict per test sample; ``plots`` PNG bytes."""

    task: str
    forms: dict[str, dict[str, Any]]
    samples: list[dict[str, Any]]
    accuracy_difference: float | None = None  # int8 - float, percentage points
    plots: dict[str, bytes] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "forms": self.forms, "samples": self.samples,
                "accuracy_difference": self.accuracy_difference,
                "plots": sorted(self.plots)}


def _outputs(trained: TrainedModel, x: np.ndarray, tflite: bytes | None) -> np.ndarray:
    if tflite is None:
        return trained.predict(x)
    from tinyforge.quantize.runner import TFLiteModel

    return TFLiteModel(tflite).predict(x)


def evaluate_model(
    trained: TrainedModel,
    x_test: Any,
    y_test: Any,
    *,
    tflite_float: bytes | None = None,
    tflite_int8: bytes | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    sample_ids: list[str] | None = None,
    with_plots: bool = True,
) -> ModelTestReport:
    """Test ``trained`` on ``x_test`` ``[N, *feature_shape]``.

    ``y_test``: class labels (classification; every label must be one the model knows),
    targets (regression) or booleans / 0-1 "is anomalous" (anomaly). The ``float`` form is
    ``tflite_float`` when given, else the trained model itself; ``int8`` is tested when
    ``tflite_int8`` is given. Raises InvalidArgument for a wrong feature shape, NaN features,
    unknown labels.
    """
    x = trained.check_input(x_test, "X_test")
    n = len(x)
    if sample_ids is not None and len(sample_ids) != n:
        raise InvalidArgument(f"{len(sample_ids)} sample ids for {n} samples", field="sample_ids")
    ids = sample_ids or [str(i) for i in range(n)]
    forms = {"float": tflite_float}
    if tflite_int8 is not None:
        forms["int8"] = tflite_int8
    outs = {name: _outputs(trained, x, b) for name, b in forms.items()}
    if trained.task == "classification":
        return _test_classification(trained, y_test, outs, threshold, ids, with_plots)
    if trained.task == "regression":
        y = check_targets(y_test, n, "y_test")
        res = {k: metrics.regression_metrics(y, v) for k, v in outs.items()}
        samples = [{"sample_id": ids[i], "target": y[i].tolist(),
                    **{k: v[i].tolist() for k, v in outs.items()}} for i in range(n)]
        report = ModelTestReport("regression", res, samples)
        if with_plots and trained.history:
            report.plots["training_curves"] = plots.training_curves_png(trained.history)
        return report
    return _test_anomaly(trained, y_test, outs["float"], ids, with_plots)


def _test_classification(
    trained: TrainedModel,
    y_test: Any,
    outs: dict[str, np.ndarray],
    threshold: float,
    ids: list[str],
    with_plots: bool,
) -> ModelTestReport:
    labels = trained.labels
    y_str = check_labels(y_test, len(ids), "y_test")
    y = encode_labels(y_str, labels, "y_test")
    res: dict[str, dict[str, Any]] = {}
    per_form: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    report_plots: dict[str, bytes] = {}
    for name, scores in outs.items():
        m = metrics.classification_metrics(y, scores, labels, threshold)
        res[name] = m.to_json()
        per_form[name] = metrics.predictions(scores, threshold)
        if with_plots:
            report_plots[f"confusion_matrix_{name}"] = plots.confusion_matrix_png(
                m.confusion, labels, f"Confusion matrix ({name}), accuracy "
                f"{m.accuracy * 100:.1f}%")
    samples = []
    for i, sid in enumerate(ids):
        row: dict[str, Any] = {"sample_id": sid, "label": labels[y[i]]}
        for name, (pred, conf) in per_form.items():
            row[name] = {
                "predicted": "uncertain" if pred[i] == metrics.UNCERTAIN else labels[pred[i]],
                "confidence": float(conf[i]),
                "scores": [float(v) for v in outs[name][i]],
            }
        samples.append(row)
    diff = None
    if "int8" in res:
        diff = (res["int8"]["accuracy"] - res["float"]["accuracy"]) * 100
    if with_plots and trained.history:
        report_plots["training_curves"] = plots.training_curves_png(trained.history)
    return ModelTestReport("classification", res, samples, diff, report_plots)


def _test_anomaly(
    trained: TrainedModel, y_test: Any, scores: np.ndarray, ids: list[str], with_plots: bool
) -> ModelTestReport:
    y = np.asarray(y_test)
    if y.shape != (len(ids),) or not (y.dtype == bool or np.isin(y, (0, 1)).all()):
        raise InvalidArgument(
            "y_test for an anomaly model must be one boolean (or 0/1) 'is anomalous' per "
            f"sample, got shape {y.shape} dtype {y.dtype}",
            field="y_test",
        )
    pos = y.astype(bool)
    s = scores.reshape(-1)
    thr = float(trained.extra.get("threshold", 0.0))
    res = {"float": metrics.anomaly_metrics(s, pos, thr)}
    samples = [{"sample_id": sid, "anomalous": bool(pos[i]), "score": float(s[i]),
                "flagged": bool(s[i] > thr)} for i, sid in enumerate(ids)]
    report = ModelTestReport("anomaly", res, samples)
    if with_plots:
        report.plots["anomaly_scores"] = plots.anomaly_histogram_png(s, pos, thr)
    return report
