"""Bad input to the learning blocks: precise InvalidArgument errors (no TensorFlow needed:
every one of these is rejected before training starts)."""

from __future__ import annotations

import numpy as np
import pytest

from tinyforge.errors import InvalidArgument, NotFound
from tinyforge.learn.registry import get_block, schemas


def _data(n=40, f=6, classes=("a", "b")):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, f)).astype(np.float32)
    y = np.array([classes[i % len(classes)] for i in range(n)])
    return x, y


@pytest.mark.parametrize(
    ("kwargs", "field", "text"),
    [
        ({"epochs": 0}, "epochs", "epochs must be an integer in 1..10000, got 0"),
        ({"epochs": -3}, "epochs", "got -3"),
        ({"epochs": 2.5}, "epochs", "got 2.5"),
        ({"learning_rate": 0.0}, "learning_rate", "learning_rate must be a number in (0, 10]"),
        ({"learning_rate": -0.01}, "learning_rate", "got -0.01"),
        ({"learning_rate": float("nan")}, "learning_rate", "got nan"),
        ({"batch_size": 0}, "batch_size", "batch_size must be an integer in 1..65536, got 0"),
        ({"validation_fraction": 0.95}, "validation_fraction", "[0, 0.9)"),
    ],
)
def test_bad_hyper_parameters(kwargs, field, text):
    x, y = _data()
    with pytest.raises(InvalidArgument) as e:
        get_block("classifier").train(x, y, **kwargs)
    assert e.value.field == field
    assert text in e.value.message


def test_unknown_architecture_names_valid_choices():
    x, y = _data()
    with pytest.raises(InvalidArgument) as e:
        get_block("classifier").train(x, y, params={"architecture": "transformer"})
    assert e.value.field == "architecture"
    assert "'transformer'" in e.value.message and "'conv1d'" in e.value.message


def test_unknown_parameter_and_bad_layer_list():
    x, y = _data()
    with pytest.raises(InvalidArgument, match="unknown parameter 'neurons'"):
        get_block("classifier").train(x, y, params={"neurons": 3})
    with pytest.raises(InvalidArgument, match="comma-separated integers") as e:
        get_block("classifier").train(x, y, params={"dense_layers": "20,ten"})
    assert e.value.field == "dense_layers"
    with pytest.raises(InvalidArgument, match="outside 1..4096"):
        get_block("regression").train(x, x[:, 0], params={"dense_layers": "0"})
    with pytest.raises(InvalidArgument, match="conv2d' needs spectrogram or image"):
        get_block("classifier").train(x, y, params={"architecture": "conv2d"})


def test_one_class_only():
    x, _ = _data()
    with pytest.raises(InvalidArgument) as e:
        get_block("classifier").train(x, np.array(["idle"] * len(x)))
    assert e.value.field == "labels"
    assert "only one class ('idle')" in e.value.message


@pytest.mark.parametrize("x", [np.zeros((0, 6), np.float32), np.array([])])
def test_empty_dataset(x):
    with pytest.raises(InvalidArgument, match="empty") as e:
        get_block("classical").train(x, np.array([]))
    assert e.value.field == "X_train"


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_features_names_the_sample(bad):
    x, y = _data()
    x[7, 2] = bad
    x[9, 0] = bad
    with pytest.raises(InvalidArgument) as e:
        get_block("classifier").train(x, y)
    assert e.value.field == "X_train"
    assert "2 sample(s), the first at index 7" in e.value.message


def test_labels_count_mismatch_and_validation_label_unknown():
    x, y = _data()
    with pytest.raises(InvalidArgument, match="40 feature rows"):
        get_block("classical").train(x, y[:-1])
    with pytest.raises(InvalidArgument) as e:
        get_block("classical").train(x, y, x[:4], np.array(["a", "b", "zebra", "a"]))
    assert e.value.field == "y_val"
    assert "'zebra'" in e.value.message and "training labels: a, b" in e.value.message


def test_feature_shape_mismatch_between_train_and_validation():
    x, y = _data()
    msg = r"X_val has samples of shape \(5,\), expected \(6,\)"
    with pytest.raises(InvalidArgument, match=msg):
        get_block("classical").train(x, y, x[:4, :5], y[:4])


def test_anomaly_params_checked_against_features():
    x, _ = _data(f=4)
    with pytest.raises(InvalidArgument, match="index 7 is outside 0..3") as e:
        get_block("anomaly_kmeans").train(x, params={"selected_features": "0,7"})
    assert e.value.field == "selected_features"
    with pytest.raises(InvalidArgument, match="more than the 40 training windows"):
        get_block("anomaly_gmm").train(x, params={"components": 41}, validation_fraction=0.0)


def test_registry_lists_schemas_and_rejects_unknown_block():
    names = [s["info"]["name"] for s in schemas()]
    assert names == ["classifier", "regression", "anomaly_kmeans", "anomaly_gmm", "classical"]
    for s in schemas():
        assert s["type"] == "learn" and s["parameters"]
    with pytest.raises(NotFound, match="valid blocks: classifier"):
        get_block("svm")


def test_registry_import_does_not_load_tensorflow():
    import subprocess
    import sys

    code = ("import sys, tinyforge.learn.registry, tinyforge.learn.contract, "
            "tinyforge.evaluation.testing, tinyforge.quantize.compare; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules, "
            "'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]
