"""Evaluation plots rendered with Matplotlib's Agg backend to PNG bytes.

No pyplot global state: each plot is its own ``Figure``, safe in threads and services.
Matplotlib is imported inside the functions (it costs a few hundred ms).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def confusion_matrix_png(
    confusion: np.ndarray, labels: Sequence[str], title: str = "Confusion matrix"
) -> bytes:
    """Confusion matrix ``[C, C]`` or ``[C, C + 1]`` (last column = uncertain) as a PNG.

    Cells are coloured by the row percentage and show count and percentage.
    """
    cm = np.asarray(confusion)
    c = len(labels)
    cols = list(labels) + (["uncertain"] if cm.shape[1] == c + 1 else [])
    rows = cm.sum(axis=1, keepdims=True)
    pct = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0) * 100
    size = max(4.0, 0.75 * len(cols) + 2.5)
    fig = _figure(size + 1.0, size)
    ax = fig.add_subplot()
    im = ax.imshow(pct, cmap="Blues", vmin=0, vmax=100)
    fig.colorbar(im, ax=ax, label="% of true class", shrink=0.8)
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(c), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    small = len(cols) > 12
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j] == 0 and small:
                continue
            text = f"{cm[i, j]}" if small else f"{cm[i, j]}\n{pct[i, j]:.0f}%"
            ax.text(j, i, text, ha="center", va="center", fontsize=7 if small else 8,
                    color="white" if pct[i, j] > 55 else "black")
    return _png(fig)


def training_curves_png(history: Sequence[dict[str, float]], title: str = "Training") -> bytes:
    """Loss (left) and accuracy or MAE (right) per epoch, training solid, validation dashed."""
    fig = _figure(9, 3.6)
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    second = "accuracy" if any("accuracy" in h for h in history) else "mae"
    for ax, key in ((ax_loss, "loss"), (ax_acc, second)):
        for prefix, style, name in (("", "-", "training"), ("val_", "--", "validation")):
            vals = [h.get(prefix + key) for h in history]
            if any(v is not None for v in vals):
                ax.plot(epochs, [np.nan if v is None else v for v in vals], style, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.suptitle(title)
    return _png(fig)


def anomaly_histogram_png(
    scores: np.ndarray,
    is_anomaly: np.ndarray,
    threshold: float | None = None,
    title: str = "Anomaly scores",
    bins: int = 40,
) -> bytes:
    """Overlaid score histograms of normal and anomalous samples, threshold as a line."""
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(is_anomaly, dtype=bool)
    edges = np.histogram_bin_edges(s, bins=bins)
    fig = _figure(7, 3.8)
    ax = fig.add_subplot()
    if (~pos).any():
        ax.hist(s[~pos], bins=edges, alpha=0.6, label=f"normal ({int((~pos).sum())})")
    if pos.any():
        ax.hist(s[pos], bins=edges, alpha=0.6, label=f"anomalous ({int(pos.sum())})")
    if threshold is not None:
        ax.axvline(threshold, color="red", linestyle="--", label=f"threshold {threshold:.3g}")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("windows")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)
