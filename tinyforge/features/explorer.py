"""Feature explorer: a 2-D projection of a block's feature matrix, for plotting by class.

Features ``[N, *shape]`` are flattened to ``[N, F]``, constant columns dropped and each column
standardised (zero mean, unit variance), then projected:

- ``pca``: the first two principal components (sklearn PCA; the explained-variance ratio of
  each is returned). Always available.
- ``tsne``: t-SNE (sklearn, perplexity ``min(30, (n - 1) / 3)``, PCA initialisation) after a
  PCA to at most 50 dimensions. O(n^2)-ish, so it runs on at most :data:`TSNE_MAX_POINTS`.

More than ``max_points`` windows (default 2000; 1000 for t-SNE) are subsampled (seeded, so
the same request gives the same points). :func:`scatter_png` draws the points coloured by
label with matplotlib's Agg backend (no display needed, no pyplot global state).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from tinyforge.errors import InvalidArgument
from tinyforge.features.store import FeatureMatrix

METHODS = ("pca", "tsne")
METHOD_NAMES = {"pca": "PCA", "tsne": "t-SNE"}
TSNE_MAX_POINTS = 3000
MAX_POINTS = 20000


@dataclass
class Projection:
    """2-D points (float32 ``[n, 2]``) with the label, sample id and window of each."""

    method: str
    points: np.ndarray
    labels: list[str | None]
    sample_ids: np.ndarray
    window_index: np.ndarray
    explained_variance: list[float]
    total_windows: int


def _standardise(X: np.ndarray) -> np.ndarray:
    X = X.reshape(len(X), -1).astype(np.float64)
    sd = X.std(axis=0)
    keep = sd > 1e-12
    if not keep.any():
        return np.zeros((len(X), 1))
    X = X[:, keep]
    return (X - X.mean(axis=0)) / sd[keep]


def project(fm: FeatureMatrix, method: str = "pca", *, max_points: int = 0,
            seed: int = 0) -> Projection:
    """Project the windows of ``fm`` to 2-D with ``method`` (``pca`` | ``tsne``).

    ``max_points`` 0 = 2000 for PCA, 1000 for t-SNE (t-SNE takes ~10 s per 1000 points on
    one core)."""
    method = (method or "pca").lower()
    if method not in METHODS:
        raise InvalidArgument(f"method must be one of {', '.join(METHODS)}, got {method!r}",
                              field="method")
    limit = max_points or (1000 if method == "tsne" else 2000)
    if not 2 <= limit <= MAX_POINTS:
        raise InvalidArgument(f"max_points must be in 2..{MAX_POINTS}, got {max_points}",
                              field="max_points")
    if method == "tsne":
        limit = min(limit, TSNE_MAX_POINTS)
    n = len(fm.X)
    if n < 2:
        raise InvalidArgument(f"the feature set has {n} window(s); a projection needs at "
                              "least 2", field="block")
    idx = np.arange(n)
    if n > limit:
        idx = np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))
    Z = _standardise(fm.X[idx])
    explained: list[float] = []
    from sklearn.decomposition import PCA

    if method == "pca":
        k = min(2, Z.shape[1], len(Z))
        pca = PCA(n_components=k, random_state=seed)
        pts = pca.fit_transform(Z)
        explained = [float(v) for v in pca.explained_variance_ratio_]
    else:
        from sklearn.manifold import TSNE

        if Z.shape[1] > 50:
            Z = PCA(n_components=min(50, len(Z)), random_state=seed).fit_transform(Z)
        perplexity = float(max(1.0, min(30.0, (len(Z) - 1) / 3)))
        pts = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                   learning_rate="auto").fit_transform(Z)
    if pts.shape[1] < 2:
        pts = np.concatenate([pts, np.zeros((len(pts), 2 - pts.shape[1]))], axis=1)
    labels = fm.labels
    return Projection(method=method, points=pts.astype(np.float32),
                      labels=[labels[i] for i in idx.tolist()], sample_ids=fm.sample_ids[idx],
                      window_index=fm.window_index[idx], explained_variance=explained,
                      total_windows=n)


def scatter_png(proj: Projection, title: str = "", *, width_px: int = 900,
                height_px: int = 700) -> bytes:
    """A PNG scatter plot of ``proj``, one colour per label, with a legend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    dpi = 100
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    names = sorted({lab for lab in proj.labels if lab is not None})
    if any(lab is None for lab in proj.labels):
        names.append(None)  # type: ignore[arg-type]
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    labels = np.array(["\0" if lab is None else lab for lab in proj.labels], dtype=object)
    for i, name in enumerate(names):
        mask = labels == ("\0" if name is None else name)
        ax.scatter(proj.points[mask, 0], proj.points[mask, 1], s=12, alpha=0.75,
                   color=cmap(i % cmap.N), label=name if name is not None else "(unlabeled)")
    if proj.method == "pca":
        ev = proj.explained_variance + [0.0, 0.0]
        ax.set_xlabel(f"PC 1 ({ev[0]:.0%} of variance)")
        ax.set_ylabel(f"PC 2 ({ev[1]:.0%} of variance)")
    else:
        ax.set_xlabel("t-SNE 1")
        ax.set_ylabel("t-SNE 2")
    ax.set_title(title or f"{METHOD_NAMES[proj.method]} of {len(proj.points)} windows")
    ax.legend(loc="best", fontsize=8, markerscale=1.5, title="label")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
