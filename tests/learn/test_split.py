"""Validation split: stratified, repeatable per seed, stable per sample key."""

from __future__ import annotations

import numpy as np

from tinyforge.learn.split import stratified_split


def test_stratified_and_disjoint():
    y = np.array([0] * 50 + [1] * 30 + [2] * 20)
    tr, va = stratified_split(y, 0.2, seed=3)
    assert len(np.intersect1d(tr, va)) == 0
    assert len(tr) + len(va) == 100
    assert np.bincount(y[va]).tolist() == [10, 6, 4]


def test_same_seed_same_split_other_seed_other_split():
    y = np.repeat(np.arange(4), 25)
    a = stratified_split(y, 0.25, seed=1)[1]
    b = stratified_split(y, 0.25, seed=1)[1]
    c = stratified_split(y, 0.25, seed=2)[1]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_keyed_split_depends_on_keys_not_on_order():
    keys = [f"sample-{i}" for i in range(200)]
    y = np.array([i % 2 for i in range(200)])
    _, va = stratified_split(y, 0.2, seed=0, keys=keys)
    perm = np.random.default_rng(5).permutation(200)
    _, va_p = stratified_split(y[perm], 0.2, seed=0, keys=[keys[i] for i in perm])
    assert {keys[i] for i in va} == {keys[perm[i]] for i in va_p}


def test_keyed_split_mostly_keeps_assignments_when_samples_are_added():
    keys = [f"sample-{i}" for i in range(200)]
    _, va = stratified_split(np.zeros(200), 0.2, seed=0, keys=keys)
    more = keys + [f"new-{i}" for i in range(20)]
    _, va2 = stratified_split(np.zeros(220), 0.2, seed=0, keys=more)
    old = {keys[i] for i in va}
    new = {more[i] for i in va2 if more[i].startswith("sample-")}
    # ranks are per key: only samples at the quota boundary may move
    # (each new sample displaces at most one old one; the quota grows by 4)
    assert len(old & new) >= len(old) - 20
    assert len(new - old) <= 4


def test_tiny_classes_keep_a_training_sample():
    y = np.array([0, 1, 1, 2, 2, 2])
    tr, va = stratified_split(y, 0.5, seed=0)
    assert set(y[tr]) == {0, 1, 2}
    assert 0 not in y[va]
