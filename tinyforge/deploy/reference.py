"""The platform's (Python) side of an impulse, the reference every on-target run must equal.

:func:`impulse_features` runs the Python DSP blocks in the learning block's input order (each
on its own axes, features concatenated: the layout the C SDK's generated ``impulse.c`` uses);
:func:`platform_predictions` feeds them through LiteRT's int8 kernels
(:class:`tinyforge.quantize.runner.TFLiteModel`) and returns the predicted class per window.
"""

from __future__ import annotations

import numpy as np

from tinyforge.dsp.registry import get_block
from tinyforge.impulse import ImageInput, Impulse


def impulse_features(impulse: Impulse, windows: np.ndarray) -> np.ndarray:
    """Python DSP features ``[N, F]`` (float32) of raw windows ``[N, *window_shape]``."""
    inp = impulse.input
    order = list(impulse.learning[0].inputs) if impulse.learning else \
        [b.name for b in impulse.processing]
    fs = 0.0 if isinstance(inp, ImageInput) else float(inp.frequency_hz)
    x = np.asarray(windows, dtype=np.float32)
    parts = []
    for name in order:
        b = impulse.processing_block(name)
        xb = x
        if not isinstance(inp, ImageInput):
            idx = [inp.axes.index(a) for a in impulse.block_axes(b)]
            xb = x[..., idx]
        feats = get_block(b.block).features_batch(xb, fs, b.params)
        parts.append(feats.reshape(len(x), -1))
    return np.concatenate(parts, axis=1).astype(np.float32)


def platform_scores(impulse: Impulse, model: bytes, windows: np.ndarray) -> np.ndarray:
    """Dequantised model outputs ``[N, classes]`` of the platform path."""
    from tinyforge.quantize.runner import TFLiteModel

    return TFLiteModel(model).predict(impulse_features(impulse, windows))


def platform_predictions(impulse: Impulse, model: bytes, windows: np.ndarray) -> tuple[int, ...]:
    """Predicted class index per window (first maximum, as the C SDK's argmax)."""
    return tuple(int(i) for i in np.argmax(platform_scores(impulse, model, windows), axis=1))
