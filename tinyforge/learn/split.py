"""Stratified, stable validation split.

Each sample gets a pseudo-random rank from ``sha256(seed, key)``; within each class the
``fraction`` of samples with the lowest ranks go to validation. With sample ids as keys the
assignment of a sample never changes when other samples are added or removed, and the same
seed always gives the same split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from tinyforge.errors import InvalidArgument


def _rank(seed: int, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big")


def stratified_split(
    strata: np.ndarray,
    fraction: float,
    seed: int,
    keys: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, validation)`` of a per-class split of ``fraction`` into validation.

    ``strata``: ``[N]`` class of each sample (any hashable values; for regression pass zeros).
    ``keys``: stable id per sample (default: its index). Every class with at least two samples
    puts at least one into validation; a class with a single sample stays in training.
    Both index arrays are sorted ascending.
    """
    strata = np.asarray(strata)
    n = strata.shape[0]
    if not 0 <= fraction < 1:
        raise InvalidArgument(f"validation fraction must be in [0, 1), got {fraction}",
                              field="validation_fraction")
    if keys is not None and len(keys) != n:
        raise InvalidArgument(f"split keys: {len(keys)} keys for {n} samples", field="keys")
    if fraction == 0 or n == 0:
        return np.arange(n), np.arange(0)
    key_list = [str(k) for k in keys] if keys is not None else [str(i) for i in range(n)]
    ranks = np.array([_rank(seed, k) for k in key_list], dtype=np.uint64)
    val: list[np.ndarray] = []
    for cls in np.unique(strata):
        members = np.flatnonzero(strata == cls)
        if members.size < 2:
            continue
        take = min(max(1, int(round(fraction * members.size))), members.size - 1)
        order = members[np.argsort(ranks[members], kind="stable")]
        val.append(order[:take])
    val_idx = np.sort(np.concatenate(val)) if val else np.arange(0)
    mask = np.ones(n, dtype=bool)
    mask[val_idx] = False
    return np.flatnonzero(mask), val_idx
