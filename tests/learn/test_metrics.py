"""Evaluation metrics against scikit-learn, the "uncertain" rule, and the PNG plots."""

from __future__ import annotations

import io

import numpy as np
import pytest
from sklearn import metrics as skm

from tinyforge.errors import InvalidArgument
from tinyforge.evaluation import metrics, plots


def _scores(n=300, c=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c)) + 2.0 * np.eye(c)[y] * rng.random((n, 1))
    p = np.exp(logits)
    return y, p / p.sum(1, keepdims=True)


def test_classification_matches_sklearn_without_threshold():
    y, p = _scores()
    labels = ["a", "b", "c", "d"]
    m = metrics.classification_metrics(y, p, labels, threshold=0.0)
    pred = p.argmax(1)
    assert m.accuracy == pytest.approx(skm.accuracy_score(y, pred))
    assert m.uncertain == 0
    assert np.array_equal(m.confusion[:, :4], skm.confusion_matrix(y, pred))
    pr, rc, f1, sup = skm.precision_recall_fscore_support(y, pred, zero_division=0)
    np.testing.assert_allclose(m.precision, pr)
    np.testing.assert_allclose(m.recall, rc)
    np.testing.assert_allclose(m.f1, f1)
    assert m.support.tolist() == sup.tolist()
    assert m.macro_f1 == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m.weighted_f1 == pytest.approx(skm.f1_score(y, pred, average="weighted"))


def test_uncertain_below_threshold_hand_checked():
    scores = np.array([[0.9, 0.1], [0.55, 0.45], [0.2, 0.8], [0.7, 0.3]])
    y = np.array([0, 0, 1, 1])
    m = metrics.classification_metrics(y, scores, ["x", "y"], threshold=0.6)
    # sample 1 is uncertain (0.55 < 0.6); sample 3 is confidently wrong
    assert m.confusion.tolist() == [[1, 0, 1], [1, 1, 0]]
    assert m.uncertain == 1
    assert m.accuracy == pytest.approx(2 / 4)
    assert m.argmax_accuracy == pytest.approx(3 / 4)
    assert m.precision.tolist() == pytest.approx([0.5, 1.0])
    assert m.recall.tolist() == pytest.approx([0.5, 0.5])
    js = m.to_json()
    assert js["confusion_columns"] == ["x", "y", "uncertain"]
    assert js["per_class"]["y"]["support"] == 2


def test_threshold_out_of_range():
    with pytest.raises(InvalidArgument, match="threshold must be in 0..1"):
        metrics.classification_metrics(np.array([0]), np.array([[1.0, 0.0]]), ["a", "b"], 1.5)


def test_regression_matches_sklearn():
    rng = np.random.default_rng(1)
    yt = rng.normal(size=(200, 3)) * [1, 10, 100]
    yp = yt + rng.normal(size=(200, 3)) * [0.5, 2, 30]
    r = metrics.regression_metrics(yt, yp)
    assert r["mae"] == pytest.approx(skm.mean_absolute_error(yt, yp))
    assert r["rmse"] == pytest.approx(skm.root_mean_squared_error(yt, yp))
    assert r["r2"] == pytest.approx(skm.r2_score(yt, yp))
    for i, out in enumerate(r["per_output"]):
        assert out["r2"] == pytest.approx(skm.r2_score(yt[:, i], yp[:, i]))
    single = metrics.regression_metrics(yt[:, 0], yp[:, 0])
    assert single["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(yt[:, 0], yp[:, 0])))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_auc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    truth = rng.random(500) < 0.3
    scores = np.round(rng.normal(size=500) + truth * 1.2, 1)  # rounding creates ties
    assert metrics.roc_auc(truth, scores) == pytest.approx(skm.roc_auc_score(truth, scores))


def test_roc_auc_needs_both_classes():
    with pytest.raises(InvalidArgument, match="got 3 normal, 0 anomalous"):
        metrics.roc_auc(np.zeros(3, bool), np.arange(3.0))


def test_anomaly_metrics_counts_and_distribution():
    truth = np.array([0, 0, 0, 1, 1], bool)
    scores = np.array([0.1, 0.2, 0.9, 0.8, 0.05])
    r = metrics.anomaly_metrics(scores, truth, threshold=0.5, bins=4)
    assert (r["true_positives"], r["false_positives"], r["false_negatives"],
            r["true_negatives"]) == (1, 1, 1, 2)
    d = r["distribution"]
    assert len(d["edges"]) == 5
    assert sum(d["normal"]) == 3 and sum(d["anomalous"]) == 2


def _png_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.size


def test_plots_are_decodable_pngs():
    cm = np.array([[5, 1, 0], [2, 7, 1]])
    a = plots.confusion_matrix_png(cm, ["up", "down"])
    w, h = _png_size(a)
    assert w >= 300 and h >= 300
    assert a != plots.confusion_matrix_png(np.array([[6, 0, 0], [0, 10, 0]]), ["up", "down"])
    hist = [{"epoch": i + 1, "loss": 1 / (i + 1), "accuracy": i / 10, "val_loss": 1.2 / (i + 1),
             "val_accuracy": i / 12} for i in range(10)]
    assert _png_size(plots.training_curves_png(hist))[0] >= 600
    assert _png_size(plots.training_curves_png([{"epoch": 1, "loss": 1.0, "mae": 2.0}]))
    rng = np.random.default_rng(0)
    s = np.r_[rng.normal(size=100), rng.normal(3, 1, size=20)]
    assert _png_size(plots.anomaly_histogram_png(s, np.r_[np.zeros(100), np.ones(20)], 1.5))
