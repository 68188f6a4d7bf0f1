"""AutotuneBlock: pick spectral / MFE / MFCC / spectrogram parameters from the data.

A small grid of candidate parameter sets (the block's current params with the tuned keys
overridden; candidates the window cannot support are skipped) is scored on a seeded, label-
stratified subsample of the project's labelled windows (at most ``max_windows``):

    score = mean accuracy of a ridge classifier (standardised features) over 3-fold
            stratified cross-validation

i.e. how linearly separable the classes are in that feature space — a cheap proxy for what a
small neural network will make of it. Ties go to the candidate with fewer features. The
block's current params are scored too, so the caller sees the gain.

Grids:
- ``spectral_analysis``: ``fft_length`` in 16..256 x filter (none, low-pass at fs/4,
  high-pass at 0.5 Hz, when below Nyquist), FFT variant.
- ``mfe`` / ``mfcc``: frame (length, stride) in (20, 10), (32, 16), (50, 25) ms x
  ``num_filters`` in 32, 40 (MFCC keeps ``num_cepstral`` <= filters); ``fft_length`` the
  smallest power of two >= the frame (at least 256).
- ``spectrogram``: frame (length, stride) as above x ``fft_length`` in 128, 256, 512.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyforge.dsp.base import ProcessingBlock
from tinyforge.errors import FailedPrecondition, InvalidArgument, TinyForgeError
from tinyforge.features.generate import check_dataset, dataset_samples, load_windows
from tinyforge.impulse import TimeSeriesInput
from tinyforge.impulse_store import get_impulse
from tinyforge.store.db import Database
from tinyforge.store.objects import ObjectStore

TUNABLE = ("spectral_analysis", "mfe", "mfcc", "spectrogram")
FRAMES = ((0.02, 0.01), (0.032, 0.016), (0.05, 0.025))


@dataclass
class Candidate:
    params: dict[str, Any]
    score: float
    features: int


@dataclass
class AutotuneResult:
    block: str
    block_type: str
    best: Candidate
    current: Candidate | None
    candidates: list[Candidate]
    windows: int
    classes: list[str]
    metric: str = "ridge classifier accuracy, 3-fold stratified cross-validation"


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


def candidate_overrides(block_type: str, fs: float) -> list[dict[str, Any]]:
    """The grid of parameter overrides tried for a block type at sampling rate ``fs``."""
    if block_type == "spectral_analysis":
        filters: list[dict[str, Any]] = [{"filter_type": "none"}]
        if fs / 4 < fs / 2:
            filters.append({"filter_type": "low", "filter_cutoff": round(fs / 4, 3),
                            "filter_order": 6})
        if fs / 2 * 0.9 > 0.5:
            filters.append({"filter_type": "high", "filter_cutoff": 0.5, "filter_order": 6})
        return [{"analysis_type": "FFT", "fft_length": n, **f}
                for n, f in itertools.product((16, 32, 64, 128, 256), filters)]
    if block_type in ("mfe", "mfcc"):
        out = []
        for (fl, st), nf in itertools.product(FRAMES, (32, 40)):
            o: dict[str, Any] = {"frame_length": fl, "frame_stride": st, "num_filters": nf,
                                 "fft_length": max(256, _next_pow2(int(np.ceil(fl * fs))))}
            out.append(o)
        return out
    if block_type == "spectrogram":
        return [{"frame_length": fl, "frame_stride": st, "fft_length": n}
                for (fl, st), n in itertools.product(FRAMES, (128, 256, 512))]
    raise InvalidArgument(f"autotune supports blocks of type {', '.join(TUNABLE)}; "
                          f"{block_type!r} has nothing to tune", field="block")


def _score(X: np.ndarray, y: np.ndarray, seed: int) -> float:
    from sklearn.linear_model import RidgeClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = X.reshape(len(X), -1).astype(np.float64)
    folds = int(min(3, np.bincount(y).min()))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    model = make_pipeline(StandardScaler(), RidgeClassifier(alpha=1.0))
    return float(np.mean(cross_val_score(model, X, y, cv=cv)))


def autotune_block(db: Database, objects: ObjectStore, project_id: int, impulse_id: int,
                   version: int, block_name: str, *, max_windows: int = 300,
                   seed: int = 0) -> AutotuneResult:
    """Search parameters of processing block ``block_name`` of an impulse version on the
    project's data (see module doc). Returns the best candidate and every score."""
    if not 20 <= max_windows <= 5000:
        raise InvalidArgument(f"max_windows must be in 20..5000, got {max_windows}",
                              field="max_windows")
    with db.session() as s:
        stored = get_impulse(s, project_id, impulse_id, version)
    from tinyforge.blocks.custom_dsp import project_resolver

    resolver = project_resolver(db, objects, project_id)
    impulse = stored.impulse.validate(resolver)
    bdef = impulse.processing_block(block_name)
    block: ProcessingBlock = resolver(bdef.block)
    if not isinstance(impulse.input, TimeSeriesInput):
        raise InvalidArgument("autotune works on time-series impulses", field="block")
    fs = float(impulse.input.frequency_hz)
    overrides = candidate_overrides(block.name, fs)  # refuses untunable blocks first
    samples = [r for r in dataset_samples(db, objects, project_id)
               if r.label is not None and r.category != "anomaly"]
    check_dataset(impulse, samples)
    rng = np.random.default_rng(seed)
    by_label: dict[str, list] = {}
    for r in samples:
        by_label.setdefault(r.label or "", []).append(r)
    if len(by_label) < 2:
        raise FailedPrecondition("autotune needs labelled samples of at least 2 classes",
                                 field="project_id")
    # stratified subsample of samples, then of their windows
    per_class = max(2, max_windows // len(by_label))
    idx = [impulse.input.axes.index(a) for a in impulse.block_axes(bdef)]
    xs, ys = [], []
    classes = sorted(by_label)
    for ci, label in enumerate(classes):
        refs = by_label[label]
        order = rng.permutation(len(refs))
        got = 0
        for k in order:
            data, _ = load_windows(objects, refs[int(k)], impulse)
            if not len(data):
                continue
            take = rng.permutation(len(data))[: max(1, per_class // 4)]
            for t in take[: per_class - got]:
                xs.append(data[int(t)][:, idx])
                ys.append(ci)
                got += 1
            if got >= per_class:
                break
    y = np.array(ys)
    counts = np.bincount(y, minlength=len(classes))
    if len(xs) < 6 or (counts >= 2).sum() < 2:
        raise FailedPrecondition("autotune needs at least 2 windows in each of 2 classes",
                                 field="project_id")
    keep = np.isin(y, np.nonzero(counts >= 2)[0])
    W = np.stack(xs)[keep]
    y = np.unique(y[keep], return_inverse=True)[1]
    shape = W.shape[1:]

    def evaluate(params: dict[str, Any]) -> Candidate | None:
        try:
            p, spec = block.check(params, fs, shape)
            feats = block.features_batch(W, fs, p)
        except TinyForgeError:
            return None  # this window cannot support the candidate
        return Candidate(p, _score(feats, y, seed), spec.size)

    current = evaluate(dict(bdef.params))
    tried: list[Candidate] = []
    seen: set[str] = set()
    for o in overrides:
        params = {**bdef.params, **o}
        if block.name == "mfcc":
            nc = int(params.get("num_cepstral", 13))
            params["num_cepstral"] = min(nc, int(o["num_filters"]))
        key = json.dumps(params, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        c = evaluate(params)
        if c is not None:
            tried.append(c)
    pool = tried + ([current] if current is not None else [])
    if not pool:
        raise FailedPrecondition(f"no candidate parameter set fits the {shape[0]}-sample "
                                 "window; lengthen the window", field="input.window_size_ms")
    best = max(pool, key=lambda c: (round(c.score, 6), -c.features))
    return AutotuneResult(block_name, block.name, best, current, tried, int(len(y)), classes)
