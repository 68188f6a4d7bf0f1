"""Regression block: a neural network predicting one or more continuous values.

Targets ``[N]`` or ``[N, outputs]``. The network trains on standardized targets (and, for the
dense architecture, standardized features); both scalings are folded into the weights
afterwards, so the model maps raw features to raw target units. Loss: mean squared error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyforge.learn import architecture
from tinyforge.learn.base import LearnBlock, TrainContext, TrainedModel
from tinyforge.learn.checks import check_targets
from tinyforge.learn.classifier import standardization


class RegressionBlock(LearnBlock):
    name = "regression"
    title = "Regression (neural network)"
    description = "Predicts continuous values (one or several outputs) from features."
    task = "regression"
    params = architecture.ARCH_PARAMS

    def _check_params(self, ctx: TrainContext) -> None:
        architecture.resolve(ctx.params, ctx.feature_kind)

    def _targets(
        self, xtr: np.ndarray, y_train: Any, xva: np.ndarray | None, y_val: Any
    ) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
        ytr = check_targets(y_train, len(xtr), "y_train")
        yva = None
        if xva is not None:
            from tinyforge.errors import InvalidArgument

            if y_val is None:
                raise InvalidArgument("y_val is required with X_val", field="y_val")
            yva = check_targets(y_val, len(xva), "y_val")
            if yva.shape[1] != ytr.shape[1]:
                raise InvalidArgument(
                    f"y_val has {yva.shape[1]} outputs, y_train has {ytr.shape[1]}",
                    field="y_val",
                )
        names = ["value"] if ytr.shape[1] == 1 else [f"value{i}" for i in range(ytr.shape[1])]
        return ytr, yva, names

    def _train(self, ctx, x_train, y_train, x_val, y_val) -> TrainedModel:
        from tinyforge.learn import keras_models as km

        assert y_train is not None
        p = ctx.params
        arch = architecture.resolve(p, ctx.feature_kind)
        km.seed_everything(ctx.options.seed)
        net = km.build_network(
            arch.arch, ctx.feature_shape, y_train.shape[1], None,
            dense_layers=arch.dense_layers, conv_filters=arch.conv_filters,
            kernel_size=arch.kernel_size, dropout=arch.dropout, name="regression",
        )  # fmt: skip
        fold_in = arch.arch == "dense" and p["normalize"]
        xtr, xva = x_train, x_val
        if fold_in:
            xmean, xstd = standardization(x_train)
            xtr = (x_train - xmean) / xstd
            xva = None if x_val is None else (x_val - xmean) / xstd
        ymean, ystd = standardization(y_train)
        ytr = (y_train - ymean) / ystd
        yva = None if y_val is None else (y_val - ymean) / ystd
        history = km.fit(net, xtr, ytr, xva, yva, ctx.options, loss="mse", metrics=["mae"],
                         on_epoch=ctx.on_epoch)
        if fold_in:
            km.fold_input_standardization(net, xmean, xstd)
        km.fold_output_scale(net, ymean, ystd)
        return TrainedModel(
            block=self.name, task=self.task, labels=[], feature_shape=ctx.feature_shape,
            feature_kind=ctx.feature_kind, params=p, options=ctx.options, history=history,
            model=net,
            extra={"architecture": arch.to_json(), "parameters": net.count_params(),
                   "outputs": int(y_train.shape[1]),
                   "history_units": "loss/mae in standardized target units"},
        )  # fmt: skip


BLOCK = RegressionBlock()
