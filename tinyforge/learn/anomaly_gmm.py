"""Gaussian-mixture anomaly block (scikit-learn).

Fits a GMM to the (selected, standardized) training windows; a window's score is its negative
log-likelihood under the mixture, so rare windows score high. Epochs and learning rate do not
apply.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyforge.dsp.params import ParamSpec
from tinyforge.errors import InvalidArgument
from tinyforge.learn.anomaly import COMMON_PARAMS, Preprocess, anomaly_extra, parse_selection
from tinyforge.learn.base import LearnBlock, TrainContext, TrainedModel


class GmmScorer:
    """Picklable scorer: preprocess, then ``-log p(z)`` under the fitted mixture."""

    def __init__(self, pre: Preprocess, gmm: Any) -> None:
        self.pre, self.gmm = pre, gmm

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Anomaly score ``[N]`` of flat features ``[N, F]``."""
        return (-self.gmm.score_samples(self.pre(x))).astype(np.float32)

    def to_keras(self) -> None:
        return None

    def export(self) -> dict[str, Any]:
        """Mixture parameters for an on-device implementation (standardized units)."""
        g = self.gmm
        return {**self.pre.to_json(), "weights": g.weights_.tolist(), "means": g.means_.tolist(),
                "precisions_cholesky": np.asarray(g.precisions_cholesky_).tolist(),
                "covariance_type": g.covariance_type}


class GmmAnomalyBlock(LearnBlock):
    name = "anomaly_gmm"
    title = "Anomaly detection (GMM)"
    description = "Flags windows that are unlikely under a Gaussian mixture of normal windows."
    task = "anomaly"
    uses_keras = False
    params = (
        ParamSpec("components", "Components", "int", 8, "Number of Gaussian components",
                  minimum=1, maximum=256),
        ParamSpec("covariance_type", "Covariance", "select", "full",
                  "Shape of each component's covariance",
                  valid=("full", "diag", "tied", "spherical")),
    ) + COMMON_PARAMS  # fmt: skip

    def _check_params(self, ctx: TrainContext) -> None:
        parse_selection(ctx.params["selected_features"], int(np.prod(ctx.feature_shape)))

    def _train(self, ctx, x_train, y_train, x_val, y_val) -> TrainedModel:
        from sklearn.mixture import GaussianMixture

        p = ctx.params
        if p["components"] > len(x_train):
            raise InvalidArgument(
                f"components = {p['components']} is more than the {len(x_train)} training "
                "windows",
                field="components",
            )
        pre = Preprocess(x_train, parse_selection(p["selected_features"], x_train.shape[1]),
                         p["standardize"])
        gmm = GaussianMixture(
            n_components=p["components"], covariance_type=p["covariance_type"],
            reg_covar=1e-4, random_state=ctx.options.seed, n_init=1,
        ).fit(pre(x_train))  # fmt: skip
        scorer = GmmScorer(pre, gmm)
        train_scores = scorer.predict(x_train)
        val_scores = None if x_val is None else scorer.predict(x_val)
        return TrainedModel(
            block=self.name, task=self.task, labels=[], feature_shape=ctx.feature_shape,
            feature_kind=ctx.feature_kind, params=p, options=ctx.options, history=[],
            model=scorer, extra=anomaly_extra(train_scores, val_scores, p, pre),
        )  # fmt: skip


BLOCK = GmmAnomalyBlock()
