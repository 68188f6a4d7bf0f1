"""Training-time data augmentation as Keras layers on flat feature batches.

Augmentation sits in front of the network only in the training graph; the exported model is
the bare network, so no augmentation op ever reaches a device. All randomness comes from
seeded ``keras.random`` generators, so a run is repeatable for a given seed.

- spectrogram ``[frames, bins]``: additive Gaussian noise, one time mask (up to ``time_mask``
  consecutive frames set to 0) and one frequency mask (up to ``freq_mask`` bins), SpecAugment
  style;
- image ``[H, W, C]``: horizontal flip, random crop (zoom in by up to ``crop`` of the size,
  resized back) and brightness shift (up to ``brightness`` of the data range).

Imports Keras at module level: import this module lazily.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops


class SpectrogramAugment(keras.layers.Layer):
    """Noise + time/frequency masking on flat ``[N, frames * bins]`` features."""

    def __init__(
        self,
        frames: int,
        bins: int,
        noise_std: float = 0.0,
        time_mask: int = 0,
        freq_mask: int = 0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.frames, self.bins = int(frames), int(bins)
        self.noise_std = float(noise_std)
        self.time_mask = int(min(time_mask, frames))
        self.freq_mask = int(min(freq_mask, bins))
        self.seed = seed
        self.seed_gen = keras.random.SeedGenerator(seed)

    def _mask(self, x: Any, n: Any, size: int, width: int, axis: int) -> Any:
        t0 = keras.random.randint((n, 1, 1), 0, size, seed=self.seed_gen)
        w = keras.random.randint((n, 1, 1), 0, width + 1, seed=self.seed_gen)
        shape = (1, size, 1) if axis == 1 else (1, 1, size)
        pos = ops.reshape(ops.arange(size, dtype="int32"), shape)
        hit = ops.logical_and(pos >= ops.cast(t0, "int32"), pos < ops.cast(t0 + w, "int32"))
        return ops.where(hit, ops.zeros_like(x), x)

    def call(self, x: Any, training: bool = False) -> Any:
        if not training:
            return x
        n = ops.shape(x)[0]
        x3 = ops.reshape(x, (-1, self.frames, self.bins))
        if self.noise_std > 0:
            x3 = x3 + keras.random.normal(ops.shape(x3), stddev=self.noise_std,
                                          seed=self.seed_gen)
        if self.time_mask > 0:
            x3 = self._mask(x3, n, self.frames, self.time_mask, 1)
        if self.freq_mask > 0:
            x3 = self._mask(x3, n, self.bins, self.freq_mask, 2)
        return ops.reshape(x3, (-1, self.frames * self.bins))

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.update(frames=self.frames, bins=self.bins, noise_std=self.noise_std,
                   time_mask=self.time_mask, freq_mask=self.freq_mask, seed=self.seed)
        return cfg


def build_augmenter(
    feature_shape: tuple[int, ...], kind: str, p: dict[str, Any], x_train: np.ndarray, seed: int
) -> keras.layers.Layer | None:
    """Augmentation layer on flat features for ``kind`` and the classifier params, or None.

    ``x_train`` (flat float32) sets the noise scale (``aug_noise_std`` x feature std) and the
    image value range for brightness.
    """
    if not p.get("augmentation"):
        return None
    if kind == "spectrogram":
        frames, bins = feature_shape
        std = float(np.std(x_train)) or 1.0
        return SpectrogramAugment(frames, bins, p["aug_noise_std"] * std, p["aug_time_mask"],
                                  p["aug_freq_mask"], seed=seed, name="augment")
    if kind == "image":
        h, w, c = feature_shape
        lo, hi = float(np.min(x_train)), float(np.max(x_train))
        if hi <= lo:
            hi = lo + 1.0
        layers: list[keras.layers.Layer] = [keras.layers.Reshape((h, w, c))]
        if p["aug_flip"]:
            layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
        if p["aug_crop"] > 0:
            layers.append(keras.layers.RandomZoom((-p["aug_crop"], 0.0), fill_mode="reflect",
                                                  seed=seed + 1))
        if p["aug_brightness"] > 0:
            layers.append(keras.layers.RandomBrightness(p["aug_brightness"], value_range=(lo, hi),
                                                        seed=seed + 2))
        layers.append(keras.layers.Reshape((h * w * c,)))
        return keras.Sequential(layers, name="augment")
    return None
