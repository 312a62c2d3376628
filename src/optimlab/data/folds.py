"""k-fold cross-validation splits fixed by a seed, stratified for classification.

When data are scarce, a single validation split wastes examples and gives a noisy
estimate; k-fold cross-validation trains k times, each time holding out a different
1/k of the pool, and averages the k validation scores (the lectures' "data poverty:
cross-validation"). Folds here are a pure function of (labels or n, k, seed).

How a study protocol uses it (train on each fold, report the mean validation score)::

    from optimlab.data import load
    from optimlab.data.folds import kfold_splits
    from optimlab.data.preprocess import apply_to_splits

    raw = load("digits", normalize=False, seed=0)
    scores = []
    for fold in kfold_splits(raw, k=5, seed=0):
        fold, _ = apply_to_splits(fold, "standardize")  # fitted on this fold's train
        scores.append(train_and_validate(fold))          # the study's own routine
    cv_score = sum(scores) / len(scores)

or, with index arrays over any pooled data set::

    for train_idx, val_idx in kfold_indices(y, k=5, seed=0):
        ...  # x[train_idx], y[train_idx] for training; x[val_idx], y[val_idx] to score
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import Tensor

from optimlab.data.splits import Split, Splits
from optimlab.errors import OptimlabError

# Mixed into the seed so the fold stream never coincides with the split or loader ones.
FOLD_STREAM = 0xF01D


def kfold_indices(
    y_or_n: int | np.ndarray | Tensor, k: int, seed: int = 0, *, stratified: bool = True
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` pairs of sorted (train, val) index arrays whose val parts partition the data.

    Args:
        y_or_n: class labels (one per example) or the number of examples. A count, or
            ``stratified=False``, gives plain shuffled folds.
        k: the number of folds, in [2, n].
        seed: fixes the folds; the same arguments give the same folds.
        stratified: keep each class's share in every validation fold.

    Fold sizes are those of scikit-learn's ``KFold``/``StratifiedKFold``: the first
    ``n mod k`` folds hold ``floor(n/k) + 1`` examples, the rest ``floor(n/k)``.
    Stratified: the examples are shuffled, grouped by class, and dealt to the folds in
    turn (position i of the grouped order goes to fold ``i mod k``), so each fold holds
    ``floor(n_c/k)`` or ``ceil(n_c/k)`` examples of a class with ``n_c`` examples (a class
    smaller than k is missing from some folds).
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise OptimlabError(f"invalid seed: {seed!r}; valid seeds are integers >= 0")
    labels: np.ndarray | None
    if isinstance(y_or_n, int | np.integer) and not isinstance(y_or_n, bool):
        n, labels = int(y_or_n), None
    else:
        if isinstance(y_or_n, Tensor):
            y_or_n = y_or_n.detach().cpu().numpy()
        labels = np.asarray(y_or_n)
        if labels.ndim != 1:
            raise OptimlabError(
                f"invalid labels: need one label per example (1-D); got shape {labels.shape}"
            )
        n = labels.shape[0]
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 2 <= k <= n:
        raise OptimlabError(f"invalid k: {k!r}; valid range is [2, {n}] for {n} examples")
    perm = np.random.default_rng([FOLD_STREAM, int(seed)]).permutation(n)
    if stratified and labels is not None:
        grouped = perm[np.argsort(labels[perm], kind="stable")]  # random order within class
        fold_of = np.empty(n, dtype=np.int64)
        fold_of[grouped] = np.arange(n) % k
    else:
        fold_of = np.empty(n, dtype=np.int64)
        sizes = np.full(k, n // k)
        sizes[: n % k] += 1
        fold_of[perm] = np.repeat(np.arange(k), sizes)
    everything = np.arange(n)
    return [(everything[fold_of != f], everything[fold_of == f]) for f in range(k)]


def kfold_splits(splits: Splits, k: int, seed: int = 0, *, stratified: bool = True) -> list[Splits]:
    """``k`` copies of ``splits`` whose train and val are re-drawn from their union.

    The pool is ``splits.train`` followed by ``splits.val``; the test split stays as it
    is. Stratified by class for classification data (when ``stratified``). Preprocess
    each fold with its own training part (see the module example); statistics fitted on
    the whole pool would leak the fold's validation data.
    """
    x = torch.cat([splits.train.x, splits.val.x])
    y = torch.cat([splits.train.y, splits.val.y])
    classify = stratified and splits.task == "classification"
    target = y if classify else int(y.shape[0])
    folds = []
    for train_idx, val_idx in kfold_indices(target, k, seed, stratified=classify):
        tr = torch.from_numpy(train_idx).to(x.device)
        va = torch.from_numpy(val_idx).to(x.device)
        folds.append(
            dataclasses.replace(splits, train=Split(x[tr], y[tr]), val=Split(x[va], y[va]))
        )
    return folds
