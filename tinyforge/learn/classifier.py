"""Classifier block: a small neural network (dense, 1-D conv or 2-D conv) with softmax output.

The architecture follows the feature shape unless set (see :mod:`.architecture`). Options:
class weights (inverse class frequency, so minority classes count as much as majority ones)
and training-time augmentation (:mod:`.augment`) for spectrogram and image features.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyforge.dsp.params import ParamSpec
from tinyforge.learn import architecture
from tinyforge.learn.base import LearnBlock, TrainContext, TrainedModel


def balanced_class_weights(y: np.ndarray, n_classes: int) -> dict[int, float]:
    """``n / (classes * count_c)`` per class present in ``y`` (scikit-learn's 'balanced')."""
    counts = np.bincount(y, minlength=n_classes)
    n = float(len(y))
    return {c: n / (n_classes * counts[c]) for c in range(n_classes) if counts[c] > 0}


def standardization(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std of ``x`` ``[N, F]`` (std 1 where a feature is constant)."""
    mean = x.mean(axis=0, dtype=np.float64)
    std = x.std(axis=0, dtype=np.float64)
    std[std < 1e-8] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


class ClassifierBlock(LearnBlock):
    name = "classifier"
    title = "Classification (neural network)"
    description = ("Learns patterns from features and assigns them to classes: a dense network "
                   "for flat features, convolutions for spectrograms and images.")
    task = "classification"
    params = architecture.ARCH_PARAMS + (
        ParamSpec("class_weights", "Auto-balance classes", "boolean", True,
                  "Weight the loss by inverse class frequency"),
        ParamSpec("augmentation", "Data augmentation", "boolean", False,
                  "Spectrograms: noise + time/frequency masks; images: flip, crop, brightness"),
        ParamSpec("aug_noise_std", "Noise", "float", 0.1,
                  "Spectrogram noise std as a fraction of the feature std",
                  minimum=0.0, maximum=2.0),
        ParamSpec("aug_time_mask", "Time mask", "int", 4,
                  "Spectrogram: mask up to this many consecutive frames", minimum=0,
                  maximum=10000),
        ParamSpec("aug_freq_mask", "Frequency mask", "int", 2,
                  "Spectrogram: mask up to this many consecutive bins", minimum=0, maximum=10000),
        ParamSpec("aug_flip", "Horizontal flip", "boolean", True, "Images: random left-right flip"),
        ParamSpec("aug_crop", "Random crop", "float", 0.1,
                  "Images: zoom in by up to this fraction", minimum=0.0, maximum=0.5),
        ParamSpec("aug_brightness", "Brightness", "float", 0.2,
                  "Images: shift brightness by up to this fraction of the value range",
                  minimum=0.0, maximum=1.0),
    )  # fmt: skip

    def _check_params(self, ctx: TrainContext) -> None:
        architecture.resolve(ctx.params, ctx.feature_kind)

    def _train(self, ctx, x_train, y_train, x_val, y_val) -> TrainedModel:
        from tinyforge.learn import keras_models as km

        assert y_train is not None
        p = ctx.params
        arch = architecture.resolve(p, ctx.feature_kind)
        n_classes = len(ctx.labels)
        km.seed_everything(ctx.options.seed)
        net = km.build_network(
            arch.arch, ctx.feature_shape, n_classes, "softmax",
            dense_layers=arch.dense_layers, conv_filters=arch.conv_filters,
            kernel_size=arch.kernel_size, dropout=arch.dropout, name="classifier",
        )  # fmt: skip
        fold = arch.arch == "dense" and p["normalize"]
        xtr, xva = x_train, x_val
        if fold:
            mean, std = standardization(x_train)
            xtr = (x_train - mean) / std
            xva = None if x_val is None else (x_val - mean) / std
        train_model = net
        aug = _augmenter(ctx, p, x_train)
        if aug is not None:
            import keras

            inp = keras.Input((x_train.shape[1],))
            train_model = keras.Model(inp, net(aug(inp)))
        history = km.fit(
            train_model, xtr, y_train, xva, y_val, ctx.options,
            loss="sparse_categorical_crossentropy", metrics=["accuracy"],
            class_weight=balanced_class_weights(y_train, n_classes) if p["class_weights"]
            else None,
            on_epoch=ctx.on_epoch,
        )  # fmt: skip
        if fold:
            km.fold_input_standardization(net, mean, std)
        return TrainedModel(
            block=self.name, task=self.task, labels=[], feature_shape=ctx.feature_shape,
            feature_kind=ctx.feature_kind, params=p, options=ctx.options, history=history,
            model=net, extra={"architecture": arch.to_json(), "parameters": net.count_params()},
        )  # fmt: skip


def _augmenter(ctx: TrainContext, p: dict[str, Any], x_train: np.ndarray) -> Any:
    if not p["augmentation"] or ctx.feature_kind == "flat":
        return None
    from tinyforge.learn.augment import build_augmenter

    return build_augmenter(ctx.feature_shape, ctx.feature_kind, p, x_train, ctx.options.seed)


BLOCK = ClassifierBlock()
