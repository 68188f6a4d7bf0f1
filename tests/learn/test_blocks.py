"""Learning blocks on small synthetic data: determinism, shapes, architectures, folding of
the feature/target scaling, anomaly scores, classical models, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from tinyforge.learn.base import load_trained
from tinyforge.learn.registry import get_block


def _blobs(n=240, f=8, classes=3, seed=0, scale=1.0, offset=0.0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centers = rng.normal(size=(classes, f)) * 3
    x = (centers[y] + rng.normal(size=(n, f))) * scale + offset
    return x.astype(np.float32), np.array([f"c{i}" for i in y])


def _weights(m):
    return [w.copy() for w in m.model.get_weights()]


def test_same_seed_same_model_other_seed_other_model():
    x, y = _blobs()
    blk = get_block("classifier")
    a = blk.train(x, y, epochs=3, seed=7)
    b = blk.train(x, y, epochs=3, seed=7)
    c = blk.train(x, y, epochs=3, seed=8)
    for wa, wb in zip(_weights(a), _weights(b), strict=True):
        assert np.array_equal(wa, wb)
    assert a.history == b.history
    assert not np.array_equal(_weights(a)[0], _weights(c)[0])


def test_dense_classifier_on_unscaled_features_learns_and_reports_epochs():
    # features around 5000 +- 300: training works only because standardization is folded in
    x, y = _blobs(scale=100.0, offset=5000.0)
    seen = []
    m = get_block("classifier").train(x, y, epochs=25, seed=1,
                                      on_epoch=lambda e, logs: seen.append((e, logs)))
    assert [e for e, _ in seen] == list(range(1, 26))
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(seen[-1][1])
    assert m.labels == ["c0", "c1", "c2"]
    assert m.extra["architecture"]["arch"] == "dense"
    assert m.extra["architecture"]["dense_layers"] == [20, 10]
    p = m.predict(x)
    assert p.shape == (len(x), 3)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    assert (p.argmax(1) == np.searchsorted(m.labels, y)).mean() > 0.95


def test_epoch_callback_can_abort_training():
    from tinyforge.errors import Cancelled

    x, y = _blobs(n=60)

    def stop(epoch, logs):
        if epoch == 2:
            raise Cancelled("stopped by user")

    with pytest.raises(Cancelled):
        get_block("classifier").train(x, y, epochs=10, on_epoch=stop)


def test_early_stopping_stops_before_epochs():
    x, y = _blobs(n=120)
    rng = np.random.default_rng(0)
    y = rng.permutation(y)  # noise labels: validation loss stops improving quickly
    m = get_block("classifier").train(x, y, epochs=200, early_stopping=True, patience=2,
                                      learning_rate=0.05)
    assert len(m.history) < 200


@pytest.mark.parametrize(
    ("shape", "kind", "params", "arch", "layer_types"),
    [
        ((12, 5), None, {}, "conv1d", {"Conv1D", "MaxPooling1D", "Dropout"}),
        ((12, 5), None, {"architecture": "conv2d"}, "conv2d", {"Conv2D", "MaxPooling2D"}),
        ((8, 8, 3), None, {}, "conv2d", {"Conv2D"}),
        ((20,), "flat", {"architecture": "conv1d", "conv_filters": "4"}, "conv1d", {"Conv1D"}),
    ],
)
def test_architecture_follows_feature_shape(shape, kind, params, arch, layer_types):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, *shape)).astype(np.float32)
    y = np.arange(48) % 2
    m = get_block("classifier").train(x, y, epochs=1, feature_kind=kind, params=params)
    assert m.extra["architecture"]["arch"] == arch
    assert m.feature_shape == shape
    names = {type(layer).__name__ for layer in m.model.layers}
    assert layer_types <= names
    assert m.predict(x).shape == (48, 2)
    # flattened input is accepted too
    assert m.predict(x.reshape(48, -1)).shape == (48, 2)


@pytest.mark.parametrize("shape", [(16, 6), (8, 8, 1)])
def test_augmentation_is_deterministic_and_training_only(shape):
    rng = np.random.default_rng(0)
    x = rng.random(size=(64, *shape)).astype(np.float32)
    y = np.arange(64) % 2
    blk = get_block("classifier")
    a = blk.train(x, y, epochs=2, params={"augmentation": True}, seed=3)
    b = blk.train(x, y, epochs=2, params={"augmentation": True}, seed=3)
    plain = blk.train(x, y, epochs=2, params={"augmentation": False}, seed=3)
    assert np.array_equal(_weights(a)[0], _weights(b)[0])
    assert not np.array_equal(_weights(a)[0], _weights(plain)[0])
    # the saved/exported network holds no augmentation layer
    assert "augment" not in [layer.name for layer in a.model.layers]


def test_class_weights_balance_minority():
    from tinyforge.learn.classifier import balanced_class_weights

    w = balanced_class_weights(np.array([0] * 90 + [1] * 10), 2)
    assert w[1] / w[0] == pytest.approx(9.0)
    assert 90 * w[0] == pytest.approx(10 * w[1])


def test_regression_multi_output_in_raw_units():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5)).astype(np.float32) * 20 + 100
    y = np.stack([3 * x[:, 0] - 2 * x[:, 1], 0.5 * x[:, 2] + 1000], axis=1)
    m = get_block("regression").train(x, y, epochs=60, learning_rate=0.01, seed=0)
    p = m.predict(x)
    assert p.shape == (400, 2)
    from sklearn.metrics import r2_score

    assert r2_score(y[:, 0], p[:, 0]) > 0.95
    assert r2_score(y[:, 1], p[:, 1]) > 0.9
    assert m.labels == ["value0", "value1"]
    single = get_block("regression").train(x, y[:, 0], epochs=2)
    assert single.predict(x).shape == (400, 1)


@pytest.mark.parametrize("block", ["anomaly_kmeans", "anomaly_gmm"])
def test_anomaly_blocks_score_outliers_high(block):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    normal = rng.normal(size=(300, 4)).astype(np.float32)
    outliers = (rng.normal(size=(40, 4)) * 0.5 + 6).astype(np.float32)
    params = {"clusters": 4} if block == "anomaly_kmeans" else {"components": 2}
    params["threshold_percentile"] = 95
    m = get_block(block).train(normal, params=params, seed=0, validation_fraction=0.0)
    test = np.vstack([normal[:100], outliers])
    s = m.predict(test)
    assert s.shape == (140,)
    assert roc_auc_score(np.r_[np.zeros(100), np.ones(40)], s) > 0.99
    train_scores = m.predict(normal)
    assert m.extra["threshold"] == pytest.approx(np.percentile(train_scores, 95), rel=1e-5)
    assert (s[100:] > m.extra["threshold"]).all()


def test_anomaly_holds_out_validation_windows():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 3)).astype(np.float32)
    m = get_block("anomaly_gmm").train(x, params={"components": 2}, validation_fraction=0.2)
    assert "validation_scores" in m.extra
    # 80 windows were fitted: the threshold is the percentile of their scores, not of all 100
    assert m.extra["threshold"] != pytest.approx(np.percentile(m.predict(x), 99), rel=1e-6)


def test_anomaly_feature_selection_uses_only_chosen_features():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    m = get_block("anomaly_kmeans").train(x, params={"clusters": 3, "selected_features": "0-1"})
    y = x.copy()
    y[:, 2] += 100.0  # a huge change in the ignored feature
    np.testing.assert_allclose(m.predict(x), m.predict(y))
    assert m.extra["selected_features"] == [0, 1]


@pytest.mark.parametrize("algorithm", ["random_forest", "logistic_regression"])
def test_classical_blocks(algorithm):
    x, y = _blobs(scale=50, offset=200)
    m = get_block("classical").train(x, y, params={"algorithm": algorithm}, seed=0)
    p = m.predict(x)
    assert p.shape == (len(x), 3)
    assert (p.argmax(1) == np.searchsorted(m.labels, y)).mean() > 0.95
    k = m.export_keras()
    if algorithm == "random_forest":
        assert k is None
    else:  # the one-layer network computes the same probabilities as scikit-learn
        np.testing.assert_allclose(k.predict(x[:20], batch_size=1, verbose=0), p[:20],
                                   atol=1e-4)


def test_save_and_load_round_trip(tmp_path):
    x, y = _blobs(n=90)
    for name in ("classifier", "classical"):
        m = get_block(name).train(x, y, epochs=2)
        d = m.save(tmp_path / name)
        back = load_trained(d)
        np.testing.assert_allclose(back.predict(x), m.predict(x), atol=1e-6)
        assert back.labels == m.labels and back.history == m.history
        with pytest.raises(Exception, match="already exists"):
            m.save(tmp_path / name)
