"""Real-data acceptance: real DSP blocks + learning blocks on the shared public datasets.

Default suite: STM32 HAR spectral features + dense classifier (end-to-end training, int8,
model test), BasicMotions, HAR anomaly detection. ``slow``: FSDD MFCC + conv classifier.
Each test skips with a message when ../shared/datasets is absent.
"""

from __future__ import annotations

import pytest

from tests.learn import realdata as rd
from tinyforge.dsp.registry import get_block as dsp_block
from tinyforge.evaluation.testing import evaluate_model
from tinyforge.learn.registry import get_block
from tinyforge.quantize.compare import compare_float_int8
from tinyforge.quantize.convert import quantize_trained

HAR_WINDOW = 52  # 2 s at 26 Hz
HAR_STRIDE = 26


@pytest.fixture(scope="module")
def har(request):
    """HAR spectral features, split by file: (f_train, y_train, f_test, y_test)."""
    root = request.getfixturevalue("shared_datasets")
    files = rd.har_files(root)
    train, test = rd.har_file_split(files)
    assert not {f[0] for f in train} & {f[0] for f in test}
    sa = dsp_block("spectral_analysis")
    xtr, ytr, _ = rd.windows(train, HAR_WINDOW, HAR_STRIDE)
    xte, yte, _ = rd.windows(test, HAR_WINDOW, HAR_STRIDE)
    ftr = sa.features_batch(xtr, rd.HAR_RATE, {})
    return ftr, ytr, sa.features_batch(xte, rd.HAR_RATE, {}), yte


def test_har_spectral_dense_held_out_files(har):
    ftr, ytr, fte, yte = har
    m = get_block("classifier").train(ftr, ytr, epochs=30, seed=0)
    assert m.extra["architecture"]["arch"] == "dense"
    conv = quantize_trained(m, ftr)
    report = evaluate_model(m, fte, yte, tflite_int8=conv.int8, threshold=0.0)
    acc = report.forms["float"]["accuracy"]
    assert acc >= 0.95, f"HAR float test accuracy {acc:.3f} < 0.95"
    assert set(report.plots) == {"confusion_matrix_float", "confusion_matrix_int8",
                                 "training_curves"}
    assert len(report.samples) == len(yte)
    q = compare_float_int8(m, conv, fte, yte)
    if q.accuracy_difference < -5:
        # mg-scale RMS next to log spectra: the single int8 input scale must say so
        assert q.coarse_input_features > 0 and q.warnings
    print(f"HAR: {q.warnings}")
    print(f"HAR: float {acc:.4f}, int8 {report.forms['int8']['accuracy']:.4f}, "
          f"difference {report.accuracy_difference:+.2f} points")


def test_har_anomaly_kmeans_and_gmm_flag_unseen_class(har):
    ftr, ytr, fte, yte = har
    normal = ytr != "running"
    for block, params in (("anomaly_kmeans", {"clusters": 16}),
                          ("anomaly_gmm", {"components": 4, "covariance_type": "diag"})):
        m = get_block(block).train(ftr[normal], params=params, seed=0)
        report = evaluate_model(m, fte, yte == "running")
        auc = report.forms["float"]["roc_auc"]
        assert auc >= 0.9, f"{block}: ROC-AUC {auc:.3f} < 0.9 for 'running' as the anomaly"
        assert "anomaly_scores" in report.plots


def test_basicmotions_own_split(shared_datasets):
    xtr, ytr, xte, yte = rd.basicmotions(shared_datasets)
    assert xtr.shape == (40, 100, 6) and xte.shape == (40, 100, 6)
    sa = dsp_block("spectral_analysis")
    ftr = sa.features_batch(xtr, rd.BASICMOTIONS_RATE, {})
    fte = sa.features_batch(xte, rd.BASICMOTIONS_RATE, {})
    m = get_block("classifier").train(ftr, ytr, epochs=60, batch_size=8, seed=0,
                                      validation_fraction=0.0)
    report = evaluate_model(m, fte, yte, threshold=0.0, with_plots=False)
    acc = report.forms["float"]["accuracy"]
    assert acc >= 0.90, f"BasicMotions test accuracy {acc:.3f} < 0.90"


@pytest.mark.slow
def test_fsdd_mfcc_conv_float_and_int8(shared_datasets):
    xtr, ytr, xte, yte = rd.fsdd_windows(shared_datasets)
    mfcc = dsp_block("mfcc")
    ftr = mfcc.features_batch(xtr, rd.FSDD_RATE, {})
    fte = mfcc.features_batch(xte, rd.FSDD_RATE, {})
    m = get_block("classifier").train(ftr, ytr, epochs=80, seed=0,
                                      params={"conv_filters": "16,32", "augmentation": True})
    assert m.extra["architecture"]["arch"] == "conv1d"
    conv = quantize_trained(m, ftr)
    report = evaluate_model(m, fte, yte, tflite_int8=conv.int8, threshold=0.0)
    f, q = report.forms["float"]["accuracy"], report.forms["int8"]["accuracy"]
    print(f"FSDD: float {f:.4f}, int8 {q:.4f}, model {len(conv.int8)} bytes int8")
    assert f >= 0.95, f"FSDD float test accuracy {f:.3f} < 0.95"
    assert abs(report.accuracy_difference) <= 1.0, \
        f"int8 {q:.3f} is more than 1 point from float {f:.3f}"
