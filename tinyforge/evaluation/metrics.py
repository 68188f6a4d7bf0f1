"""Evaluation metrics in NumPy: classification (with an "uncertain" outcome), regression,
anomaly ROC-AUC and score distributions.

Classification follows Edge Impulse's convention: a prediction whose top score is below the
confidence ``threshold`` is *uncertain*; it counts as wrong for accuracy and recall and is not
a prediction of any class for precision. With ``threshold = 0`` nothing is uncertain and the
numbers equal scikit-learn's ``accuracy_score``/``precision_recall_fscore_support``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyforge.errors import InvalidArgument

UNCERTAIN = -1  # predicted index of an uncertain sample


def predictions(scores: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """``(predicted index or UNCERTAIN, confidence)`` per row of ``scores`` ``[N, C]``."""
    if not 0.0 <= threshold <= 1.0:
        raise InvalidArgument(f"confidence threshold must be in 0..1, got {threshold}",
                              field="threshold")
    scores = np.asarray(scores)
    pred = scores.argmax(axis=1)
    conf = scores.max(axis=1)
    return np.where(conf >= threshold, pred, UNCERTAIN), conf


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``[C, C + 1]``: row = true class, column = predicted class, last = uncertain."""
    cm = np.zeros((n_classes, n_classes + 1), dtype=np.int64)
    cols = np.where(y_pred == UNCERTAIN, n_classes, y_pred)
    np.add.at(cm, (np.asarray(y_true), cols), 1)
    return cm


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b > 0)


@dataclass
class ClassificationMetrics:
    """Metrics of one model on one labelled set (see the module docstring)."""

    labels: list[str]
    threshold: float
    accuracy: float  # confident and correct / all
    argmax_accuracy: float  # top score correct / all, threshold ignored
    uncertain: int
    confusion: np.ndarray  # [C, C + 1]
    precision: np.ndarray  # [C]
    recall: np.ndarray  # [C]
    f1: np.ndarray  # [C]
    support: np.ndarray  # [C]

    @property
    def macro_f1(self) -> float:
        return float(self.f1.mean())

    @property
    def weighted_f1(self) -> float:
        return float((self.f1 * self.support).sum() / max(1, self.support.sum()))

    def to_json(self) -> dict[str, Any]:
        return {
            "labels": self.labels, "threshold": self.threshold, "accuracy": self.accuracy,
            "argmax_accuracy": self.argmax_accuracy, "uncertain": self.uncertain,
            "confusion_matrix": self.confusion.tolist(),
            "confusion_columns": [*self.labels, "uncertain"],
            "per_class": {
                lab: {"precision": float(self.precision[i]), "recall": float(self.recall[i]),
                      "f1": float(self.f1[i]), "support": int(self.support[i])}
                for i, lab in enumerate(self.labels)
            },
            "macro_f1": self.macro_f1, "weighted_f1": self.weighted_f1,
        }  # fmt: skip


def classification_metrics(
    y_true: np.ndarray, scores: np.ndarray, labels: list[str], threshold: float = 0.0
) -> ClassificationMetrics:
    """Metrics for true class indices ``y_true`` ``[N]`` and class scores ``[N, C]``."""
    scores = np.asarray(scores, dtype=np.float64)
    y_true = np.asarray(y_true)
    c = len(labels)
    if scores.ndim != 2 or scores.shape[1] != c or scores.shape[0] != y_true.shape[0]:
        raise InvalidArgument(
            f"scores must be [N, {c}] with N = {y_true.shape[0]}, got {scores.shape}",
            field="scores",
        )
    if y_true.size == 0:
        raise InvalidArgument("no samples to evaluate", field="y_test")
    pred, _ = predictions(scores, threshold)
    cm = confusion_matrix(y_true, pred, c)
    tp = np.diag(cm[:, :c]).astype(np.float64)
    predicted = cm[:, :c].sum(axis=0).astype(np.float64)
    support = cm.sum(axis=1)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support.astype(np.float64))
    f1 = _safe_div(2 * precision * recall, precision + recall)
    return ClassificationMetrics(
        labels=list(labels), threshold=float(threshold),
        accuracy=float(tp.sum() / y_true.size),
        argmax_accuracy=float((scores.argmax(axis=1) == y_true).mean()),
        uncertain=int(cm[:, c].sum()), confusion=cm, precision=precision, recall=recall, f1=f1,
        support=support,
    )  # fmt: skip


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """MAE, RMSE, R² per output and averaged over outputs (scikit-learn's
    ``uniform_average``). R² of a constant target is 1 for a perfect fit, else 0."""
    yt = np.asarray(y_true, dtype=np.float64)
    yp = np.asarray(y_pred, dtype=np.float64)
    if yt.ndim == 1:
        yt = yt[:, None]
    if yp.ndim == 1:
        yp = yp[:, None]
    if yt.shape != yp.shape or yt.shape[0] == 0:
        raise InvalidArgument(f"predictions {yp.shape} do not match targets {yt.shape}",
                              field="y_test")
    err = yp - yt
    mae = np.abs(err).mean(axis=0)
    rmse = np.sqrt((err**2).mean(axis=0))
    ss_res = (err**2).sum(axis=0)
    ss_tot = ((yt - yt.mean(axis=0)) ** 2).sum(axis=0)
    r2 = np.where(ss_tot > 0, 1 - _safe_div(ss_res, ss_tot), np.where(ss_res == 0, 1.0, 0.0))
    return {
        "mae": float(mae.mean()), "rmse": float(rmse.mean()), "r2": float(r2.mean()),
        "per_output": [{"mae": float(a), "rmse": float(b), "r2": float(c)}
                       for a, b, c in zip(mae, rmse, r2, strict=True)],
    }  # fmt: skip


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their mean rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], len(x)]
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = (s + 1 + e) / 2.0
    return ranks


def roc_auc(is_anomaly: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` (higher = anomalous) for boolean truth.

    Computed as the Mann-Whitney statistic (probability that a random anomalous window scores
    above a random normal one, ties counting half).
    """
    pos = np.asarray(is_anomaly, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise InvalidArgument(
            f"ROC-AUC needs both normal and anomalous samples; got {n_neg} normal, "
            f"{n_pos} anomalous",
            field="y_test",
        )
    r = _average_ranks(s)
    return float((r[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def score_distribution(
    scores: np.ndarray, is_anomaly: np.ndarray, bins: int = 30
) -> dict[str, list[float]]:
    """Histogram of scores on shared bin ``edges`` for normal and anomalous samples."""
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(is_anomaly, dtype=bool)
    edges = np.histogram_bin_edges(s, bins=bins)
    return {
        "edges": edges.tolist(),
        "normal": np.histogram(s[~pos], bins=edges)[0].astype(float).tolist(),
        "anomalous": np.histogram(s[pos], bins=edges)[0].astype(float).tolist(),
    }


def anomaly_metrics(
    scores: np.ndarray, is_anomaly: np.ndarray, threshold: float, bins: int = 30
) -> dict[str, Any]:
    """ROC-AUC, outcome counts at ``threshold`` (score > threshold = anomalous), distribution."""
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(is_anomaly, dtype=bool)
    flagged = s > threshold
    tp = int((flagged & pos).sum())
    fp = int((flagged & ~pos).sum())
    fn = int((~flagged & pos).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return {
        "roc_auc": roc_auc(pos, s), "threshold": float(threshold),
        "accuracy": float((flagged == pos).mean()), "precision": prec, "recall": rec,
        "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
        "true_positives": tp, "false_positives": fp, "false_negatives": fn,
        "true_negatives": int((~flagged & ~pos).sum()),
        "distribution": score_distribution(s, pos, bins),
    }  # fmt: skip
