"""Shared parts of the anomaly blocks: feature selection, standardization, threshold.

An anomaly block learns what normal windows look like and gives every window a score (higher
= more anomalous). The suggested threshold is a percentile of the training windows' scores:
with the default 99 about 1 % of normal windows would be flagged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyforge.dsp.params import ParamSpec
from tinyforge.errors import InvalidArgument

COMMON_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("selected_features", "Features", "string", "",
              "Feature indices to use, comma separated, ranges allowed ('0-2,5'); '' = all"),
    ParamSpec("standardize", "Standardize features", "boolean", True,
              "Scale every feature to zero mean, unit variance before scoring"),
    ParamSpec("threshold_percentile", "Threshold percentile", "float", 99.0,
              "Suggested threshold = this percentile of the training scores",
              minimum=50.0, maximum=100.0),
)  # fmt: skip


def parse_selection(text: str, n_features: int) -> np.ndarray:
    """Feature indices from ``"0-2,5"`` (``""`` = all) checked against ``n_features``."""
    text = text.strip()
    if not text:
        return np.arange(n_features)
    idx: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError
                idx.extend(range(lo, hi + 1))
            else:
                idx.append(int(part))
        except ValueError:
            raise InvalidArgument(
                f"selected_features {text!r} is invalid: expected indices or ranges like '0-2,5'",
                field="selected_features",
            ) from None
    bad = [i for i in idx if not 0 <= i < n_features]
    if bad:
        raise InvalidArgument(
            f"selected_features: index {bad[0]} is outside 0..{n_features - 1} "
            f"(the features have {n_features} values)",
            field="selected_features",
        )
    return np.array(sorted(set(idx)), dtype=np.int64)


class Preprocess:
    """Feature selection + optional standardization fitted on the training windows."""

    def __init__(self, x: np.ndarray, selection: np.ndarray, standardize: bool) -> None:
        self.selection = selection
        sel = x[:, selection].astype(np.float64)
        self.mean = sel.mean(axis=0) if standardize else np.zeros(sel.shape[1])
        std = sel.std(axis=0) if standardize else np.ones(sel.shape[1])
        std[std < 1e-12] = 1.0
        self.std = std

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x[:, self.selection].astype(np.float64) - self.mean) / self.std

    def to_json(self) -> dict[str, Any]:
        return {"selected_features": self.selection.tolist(), "mean": self.mean.tolist(),
                "std": self.std.tolist()}


def score_summary(scores: np.ndarray) -> dict[str, float]:
    """Mean, std, min, max and percentiles of a score vector (JSON-safe floats)."""
    q = np.percentile(scores, [50, 90, 95, 99])
    return {
        "mean": float(scores.mean()), "std": float(scores.std()), "min": float(scores.min()),
        "max": float(scores.max()), "p50": float(q[0]), "p90": float(q[1]), "p95": float(q[2]),
        "p99": float(q[3]),
    }  # fmt: skip


def anomaly_extra(
    train_scores: np.ndarray, val_scores: np.ndarray | None, p: dict[str, Any], pre: Preprocess
) -> dict[str, Any]:
    """The ``extra`` dict of an anomaly model: threshold, score statistics, selection."""
    extra: dict[str, Any] = {
        "threshold": float(np.percentile(train_scores, p["threshold_percentile"])),
        "threshold_percentile": p["threshold_percentile"],
        "train_scores": score_summary(train_scores),
        "selected_features": pre.selection.tolist(),
    }
    if val_scores is not None and len(val_scores):
        extra["validation_scores"] = score_summary(val_scores)
    return extra
