"""k-fold splits: partition, determinism, stratification, sizes against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.model_selection import KFold, StratifiedKFold

from optimlab.data import Split, Splits
from optimlab.data.folds import kfold_indices, kfold_splits
from optimlab.errors import OptimlabError


def _labels(n: int = 103, seed: int = 0) -> np.ndarray:
    # Unbalanced classes: shares 0.5, 0.3, 0.15, 0.05.
    return np.random.default_rng(seed).choice(4, size=n, p=[0.5, 0.3, 0.15, 0.05])


@pytest.mark.parametrize("stratified", [True, False])
@pytest.mark.parametrize("k", [2, 5, 7])
def test_validation_folds_partition_the_data(k, stratified):
    y = _labels()
    folds = kfold_indices(y, k, seed=3, stratified=stratified)
    assert len(folds) == k
    vals = np.concatenate([va for _, va in folds])
    assert np.array_equal(np.sort(vals), np.arange(len(y)))  # each example in one fold
    for tr, va in folds:
        assert np.array_equal(np.union1d(tr, va), np.arange(len(y)))
        assert np.intersect1d(tr, va).size == 0


def test_same_seed_same_folds():
    y = _labels()
    a, b = kfold_indices(y, 5, seed=1), kfold_indices(y, 5, seed=1)
    assert all(np.array_equal(x[1], z[1]) for x, z in zip(a, b, strict=True))
    c = kfold_indices(y, 5, seed=2)
    assert any(not np.array_equal(x[1], z[1]) for x, z in zip(a, c, strict=True))


@pytest.mark.parametrize("k", [3, 5, 10])
def test_stratified_folds_keep_class_shares_and_sklearn_sizes(k):
    y = _labels(n=251, seed=4)
    folds = kfold_indices(y, k, seed=0)
    ref = list(StratifiedKFold(n_splits=k, shuffle=True, random_state=0).split(np.zeros(251), y))
    sizes = sorted(len(va) for _, va in folds)
    assert sizes == sorted(len(va) for _, va in ref)
    for c in range(4):
        n_c = int((y == c).sum())
        counts = [int((y[va] == c).sum()) for _, va in folds]
        # Within one example of the class's share n_c / k in every fold.
        assert all(abs(count - n_c / k) < 1 for count in counts), (c, counts)
        assert sum(counts) == n_c
        ref_counts = sorted(int((y[va] == c).sum()) for _, va in ref)
        assert sorted(counts) == ref_counts


def test_plain_folds_have_kfold_sizes():
    for n, k in ((10, 3), (50, 7), (9, 9)):
        folds = kfold_indices(n, k, seed=5)
        ref = list(KFold(n_splits=k, shuffle=True, random_state=0).split(np.zeros(n)))
        assert [len(va) for _, va in folds] == [len(va) for _, va in ref]


def test_kfold_splits_repartition_train_and_val_and_keep_test():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=gen)
    y = torch.from_numpy(_labels(40, seed=6))
    test = Split(torch.randn(7, 3, generator=gen), torch.zeros(7, dtype=torch.int64))
    splits = Splits("toy", Split(x[:30], y[:30]), Split(x[30:], y[30:]), test, "classification",
                    (3,), num_classes=4)  # fmt: skip
    folds = kfold_splits(splits, 4, seed=1)
    seen = torch.cat([f.val.x for f in folds])
    # The validation parts together are exactly the pooled examples, once each.
    assert torch.equal(seen[seen[:, 0].argsort()], x[x[:, 0].argsort()])
    for f in folds:
        assert len(f.train) + len(f.val) == 40 and f.test is test
        pairs = {tuple(r.tolist()): int(c) for r, c in zip(x, y, strict=True)}
        assert all(
            pairs[tuple(r.tolist())] == int(c) for r, c in zip(f.val.x, f.val.y, strict=True)
        )


def test_bad_arguments_are_named():
    with pytest.raises(OptimlabError, match=r"invalid k: 1; valid range is \[2, 10\]"):
        kfold_indices(10, 1)
    with pytest.raises(OptimlabError, match="invalid k: 11"):
        kfold_indices(np.zeros(10), 11)
    with pytest.raises(OptimlabError, match="invalid seed"):
        kfold_indices(10, 2, seed=-1)
    with pytest.raises(OptimlabError, match="1-D"):
        kfold_indices(np.zeros((10, 2)), 2)
