"""K-means anomaly block (scikit-learn).

Clusters the (selected, standardized) training windows into ``clusters`` groups; each
cluster's radius is the largest distance of its own training windows to its centre. A window's
score is ``min_k (||z - c_k|| - r_k)``: negative inside a cluster, growing with the distance
outside the nearest one (Edge Impulse's definition: distance to the nearest cluster minus its
radius). Epochs and learning rate do not apply.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyforge.dsp.params import ParamSpec
from tinyforge.errors import InvalidArgument
from tinyforge.learn.anomaly import COMMON_PARAMS, Preprocess, anomaly_extra, parse_selection
from tinyforge.learn.base import LearnBlock, TrainContext, TrainedModel


class KMeansScorer:
    """Picklable scorer: preprocess, then distance to the nearest cluster minus its radius."""

    def __init__(self, pre: Preprocess, centers: np.ndarray, radii: np.ndarray) -> None:
        self.pre, self.centers, self.radii = pre, centers, radii

    def distances(self, x: np.ndarray) -> np.ndarray:
        z = self.pre(x)
        # |z|^2 - 2 z.c + |c|^2: no [N, K, F] temporary
        d2 = (z * z).sum(1)[:, None] - 2.0 * z @ self.centers.T \
            + (self.centers ** 2).sum(1)[None, :]
        return np.sqrt(np.maximum(d2, 0.0))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Anomaly score ``[N]`` of flat features ``[N, F]``."""
        return (self.distances(x) - self.radii[None, :]).min(axis=1).astype(np.float32)

    def to_keras(self) -> None:
        return None  # no neural-network form: the C SDK runs the centres from export()

    def export(self) -> dict[str, Any]:
        """Parameters for an on-device implementation (centres in standardized units)."""
        return {**self.pre.to_json(), "centers": self.centers.tolist(),
                "radii": self.radii.tolist()}


class KMeansAnomalyBlock(LearnBlock):
    name = "anomaly_kmeans"
    title = "Anomaly detection (K-means)"
    description = "Flags windows far from every cluster of normal training windows."
    task = "anomaly"
    uses_keras = False
    params = (
        ParamSpec("clusters", "Cluster count", "int", 32, "Number of K-means clusters",
                  minimum=1, maximum=1024),
    ) + COMMON_PARAMS  # fmt: skip

    def _check_params(self, ctx: TrainContext) -> None:
        parse_selection(ctx.params["selected_features"], int(np.prod(ctx.feature_shape)))

    def _train(self, ctx, x_train, y_train, x_val, y_val) -> TrainedModel:
        from sklearn.cluster import KMeans

        p = ctx.params
        if p["clusters"] > len(x_train):
            raise InvalidArgument(
                f"clusters = {p['clusters']} is more than the {len(x_train)} training windows",
                field="clusters",
            )
        pre = Preprocess(x_train, parse_selection(p["selected_features"], x_train.shape[1]),
                         p["standardize"])
        z = pre(x_train)
        km = KMeans(n_clusters=p["clusters"], n_init=4, random_state=ctx.options.seed).fit(z)
        centers = km.cluster_centers_
        d = np.sqrt(((z - centers[km.labels_]) ** 2).sum(-1))
        radii = np.zeros(len(centers))
        np.maximum.at(radii, km.labels_, d)
        scorer = KMeansScorer(pre, centers, radii)
        train_scores = scorer.predict(x_train)
        val_scores = None if x_val is None else scorer.predict(x_val)
        return TrainedModel(
            block=self.name, task=self.task, labels=[], feature_shape=ctx.feature_shape,
            feature_kind=ctx.feature_kind, params=p, options=ctx.options, history=[],
            model=scorer, extra=anomaly_extra(train_scores, val_scores, p, pre),
        )  # fmt: skip


BLOCK = KMeansAnomalyBlock()
