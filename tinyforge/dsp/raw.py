"""Raw data block: the window itself, optionally scaled.

``features = scale_axes * x`` flattened in sample-major order (x0 of every axis, then x1, ...:
``[T * axes]``), as Edge Impulse's raw block (implementation version 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyforge.dsp.base import ProcessingBlock
from tinyforge.dsp.params import ParamSpec


class RawBlock(ProcessingBlock):
    name = "raw"
    title = "Raw data"
    description = "Uses the raw window as features, optionally multiplied by a scale factor."
    implementation_version = 1
    output_kind = "flat"
    params = (
        ParamSpec("scale_axes", "Scale axes", "float", 1.0, "Multiplies all axes by this number",
                  minimum=-1e9, maximum=1e9),
    )  # fmt: skip

    def _check(self, p, fs, window_shape, field_prefix) -> tuple[int, ...]:
        return (window_shape[0] * window_shape[1],)

    def _run(self, x: np.ndarray, fs: float, p: dict[str, Any]) -> np.ndarray:
        scale = np.float32(p["scale_axes"])
        out = x * scale if scale != 1 else x
        return out.reshape(x.shape[0], -1)


BLOCK = RawBlock()


def raw(signal: np.ndarray, fs: float, params: dict[str, Any] | None = None) -> np.ndarray:
    """Raw features of one window ``[T, axes]`` → ``[T * axes]``."""
    return BLOCK.features(signal, fs, params)
