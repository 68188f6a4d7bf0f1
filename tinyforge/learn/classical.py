"""Classical classifier block (scikit-learn): random forest or logistic regression.

For the smallest MCUs, or when a neural network is overkill. Logistic regression converts to
a one-layer Keras model (``Dense + softmax``, standardization folded into the weights), so it
quantizes to int8 TFLite and compiles like any network; a random forest has no
neural-network form. Epochs and learning rate do not apply.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyforge.dsp.params import ParamSpec
from tinyforge.learn.base import LearnBlock, TrainedModel
from tinyforge.learn.classifier import balanced_class_weights, standardization


class ClassicalScorer:
    """Picklable wrapper: standardize, then the estimator's class probabilities."""

    def __init__(self, estimator: Any, mean: np.ndarray, std: np.ndarray, n_classes: int) -> None:
        self.estimator, self.mean, self.std, self.n_classes = estimator, mean, std, n_classes

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``[N, classes]`` of flat features ``[N, F]``."""
        proba = self.estimator.predict_proba((x - self.mean) / self.std)
        out = np.zeros((len(x), self.n_classes), dtype=np.float32)
        out[:, self.estimator.classes_] = proba
        return out

    def to_keras(self) -> Any | None:
        """Logistic regression as ``Dense(classes, softmax)`` on raw features, batch 1."""
        from sklearn.linear_model import LogisticRegression

        est = self.estimator
        if not isinstance(est, LogisticRegression):
            return None
        import keras

        coef = np.asarray(est.coef_, dtype=np.float64)
        icpt = np.asarray(est.intercept_, dtype=np.float64)
        if coef.shape[0] == 1:  # binary: p1 = sigmoid(z) = softmax([0, z])[1]
            coef = np.vstack([np.zeros_like(coef), coef])
            icpt = np.concatenate([[0.0], icpt])
        w = coef.T / self.std[:, None]
        b = icpt - (self.mean / self.std) @ coef.T
        inp = keras.Input((w.shape[0],), batch_size=1, name="features")
        dense = keras.layers.Dense(w.shape[1], activation="softmax", name="output")
        model = keras.Model(inp, dense(inp), name="logistic_regression_b1")
        dense.set_weights([w.astype(np.float32), b.astype(np.float32)])
        return model


class ClassicalBlock(LearnBlock):
    name = "classical"
    title = "Classical classifier (random forest / logistic regression)"
    description = "scikit-learn classifiers for tiny devices and small datasets."
    task = "classification"
    uses_keras = False
    params = (
        ParamSpec("algorithm", "Algorithm", "select", "random_forest", "Which classifier",
                  valid=("random_forest", "logistic_regression")),
        ParamSpec("n_estimators", "Trees", "int", 50, "Random forest: number of trees",
                  minimum=1, maximum=1000),
        ParamSpec("max_depth", "Max depth", "int", 8,
                  "Random forest: maximum tree depth (0 = unlimited)", minimum=0, maximum=64),
        ParamSpec("c", "Inverse regularization", "float", 1.0,
                  "Logistic regression: inverse L2 regularization strength",
                  minimum=1e-6, maximum=1e6),
        ParamSpec("class_weights", "Auto-balance classes", "boolean", True,
                  "Weight samples by inverse class frequency"),
    )  # fmt: skip

    def _train(self, ctx, x_train, y_train, x_val, y_val) -> TrainedModel:
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.linear_model import LogisticRegression

        assert y_train is not None
        p = ctx.params
        n_classes = len(ctx.labels)
        cw = balanced_class_weights(y_train, n_classes) if p["class_weights"] else None
        seed = ctx.options.seed
        if p["algorithm"] == "random_forest":
            est: Any = RandomForestClassifier(
                n_estimators=p["n_estimators"], max_depth=p["max_depth"] or None,
                class_weight=cw, random_state=seed, n_jobs=1,
            )  # fmt: skip
            mean = np.zeros(x_train.shape[1], np.float32)
            std = np.ones(x_train.shape[1], np.float32)
        else:
            est = LogisticRegression(C=p["c"], class_weight=cw, max_iter=2000, random_state=seed)
            mean, std = standardization(x_train)
        est.fit((x_train - mean) / std, y_train)
        scorer = ClassicalScorer(est, mean, std, n_classes)
        hist: dict[str, float] = {
            "epoch": 1,
            "accuracy": float((scorer.predict(x_train).argmax(1) == y_train).mean()),
        }
        if x_val is not None and y_val is not None and len(x_val):
            hist["val_accuracy"] = float((scorer.predict(x_val).argmax(1) == y_val).mean())
        return TrainedModel(
            block=self.name, task=self.task, labels=[], feature_shape=ctx.feature_shape,
            feature_kind=ctx.feature_kind, params=p, options=ctx.options, history=[hist],
            model=scorer, extra={"algorithm": p["algorithm"]},
        )  # fmt: skip


BLOCK = ClassicalBlock()
