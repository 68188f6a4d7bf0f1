"""Image block: pixels scaled to 0..1, RGB or grayscale (Edge Impulse implementation version 1).

Input: an image window ``[H, W, C]`` with 0..255 values (C = 3 for RGB; C = 1 for grayscale
input); resizing is the input block's job (:mod:`tinyforge.data.windowing`).
RGB: ``v = p / 255`` per channel, output ``[H, W, 3]``. Grayscale: ITU-R 601-2 luma
``v = (0.299 R + 0.587 G + 0.114 B) / 255`` (or ``p / 255`` for a 1-channel input), output
``[H, W, 1]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyforge.dsp.base import ProcessingBlock
from tinyforge.dsp.params import ParamSpec
from tinyforge.errors import InvalidArgument

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class ImageBlock(ProcessingBlock):
    name = "image"
    title = "Image"
    description = "Scales pixels to 0..1 as RGB or grayscale."
    implementation_version = 1
    output_kind = "image"
    image_input = True
    params = (
        ParamSpec("channels", "Color depth", "select", "RGB", "Output color depth",
                  valid=("RGB", "Grayscale")),
    )  # fmt: skip

    def _check(self, p, fs, window_shape, field_prefix) -> tuple[int, ...]:
        h, w, c = window_shape
        if h < 1 or w < 1:
            raise InvalidArgument(f"image must be at least 1x1, got {w}x{h}", field="signal")
        if p["channels"] == "RGB" and c != 3:
            raise InvalidArgument(
                f"RGB output needs a 3-channel image, got {c} channel(s)",
                field=field_prefix + "channels",
            )
        if p["channels"] == "Grayscale" and c not in (1, 3):
            raise InvalidArgument(
                f"grayscale output needs a 1- or 3-channel image, got {c} channels",
                field=field_prefix + "channels",
            )
        return (h, w, 3 if p["channels"] == "RGB" else 1)

    def _run(self, x: np.ndarray, fs: float, p: dict[str, Any]) -> np.ndarray:
        if p["channels"] == "Grayscale" and x.shape[-1] == 3:
            return ((x @ LUMA) * np.float32(1 / 255))[..., None]
        return x * np.float32(1 / 255)


BLOCK = ImageBlock()


def image(signal: np.ndarray, fs: float = 0.0, params: dict[str, Any] | None = None) -> np.ndarray:
    """Image features of one ``[H, W, C]`` window → ``[H, W, 3 or 1]`` in 0..1."""
    return BLOCK.features(signal, fs, params)
