"""Flatten block: summary statistics per axis.

For each axis (in order) of the scaled window ``scale_axes * x``, the enabled statistics in the
order mean, min, max, rms, stdev, skewness, kurtosis (definitions in :mod:`tinyforge.dsp.stats`:
population stdev, biased skewness and Fisher kurtosis as scipy.stats' defaults; 0 for a constant
axis). Output ``[axes * enabled]``, as Edge Impulse's flatten block (implementation version 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyforge.dsp.base import ProcessingBlock
from tinyforge.dsp.params import ParamSpec
from tinyforge.dsp.stats import moments
from tinyforge.errors import InvalidArgument

STATS = ("average", "minimum", "maximum", "rms", "stdev", "skewness", "kurtosis")
_MOMENT_KEY = {"average": "mean", "minimum": "min", "maximum": "max", "rms": "rms",
               "stdev": "stdev", "skewness": "skewness", "kurtosis": "kurtosis"}  # fmt: skip


class FlattenBlock(ProcessingBlock):
    name = "flatten"
    title = "Flatten"
    description = "Summary statistics (mean, min, max, RMS, stdev, skewness, kurtosis) per axis."
    implementation_version = 1
    output_kind = "flat"
    params = (
        ParamSpec("scale_axes", "Scale axes", "float", 1.0, "Multiplies all axes by this number",
                  minimum=-1e9, maximum=1e9),
        *(ParamSpec(s, s.capitalize(), "boolean", True, f"Calculate the {s} of each axis")
          for s in STATS),
    )  # fmt: skip

    def _check(self, p, fs, window_shape, field_prefix) -> tuple[int, ...]:
        n = sum(bool(p[s]) for s in STATS)
        if n == 0:
            raise InvalidArgument(
                "enable at least one statistic (" + ", ".join(STATS) + ")",
                field=field_prefix + "average",
            )
        return (window_shape[1] * n,)

    def _run(self, x: np.ndarray, fs: float, p: dict[str, Any]) -> np.ndarray:
        x = x * np.float32(p["scale_axes"])
        m = moments(x, axis=1)  # each [N, axes]
        cols = [m[_MOMENT_KEY[s]] for s in STATS if p[s]]
        return np.stack(cols, axis=-1).reshape(x.shape[0], -1)  # axis-major, then statistic

    @staticmethod
    def feature_labels(p: dict[str, Any], axes: list[str]) -> list[str]:
        """Names of the features, e.g. ``accX RMS``."""
        return [f"{a} {s}" for a in axes for s in STATS if p[s]]


BLOCK = FlattenBlock()


def flatten(signal: np.ndarray, fs: float, params: dict[str, Any] | None = None) -> np.ndarray:
    """Flatten features of one window ``[T, axes]`` → ``[axes * enabled statistics]``."""
    return BLOCK.features(signal, fs, params)
