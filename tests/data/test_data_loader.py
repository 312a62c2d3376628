"""BatchLoader: orders, per-epoch batch sizes, resume by skipping, determinism."""

from __future__ import annotations

import math

import pytest
import torch

from optimlab.data import BatchLoader
from optimlab.errors import OptimlabError

N = 23


def _data(n: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    # x holds each example's index, so batches reveal the order; y = 10 x checks pairing.
    x = torch.arange(n).reshape(n, 1).float()
    return x, 10 * torch.arange(n)


def _order(loader: BatchLoader, epoch: int, **kwargs) -> list[int]:
    out = []
    for xb, yb in loader.epoch(epoch, **kwargs):
        assert torch.equal(yb, 10 * xb[:, 0].long())
        out += xb[:, 0].long().tolist()
    return out


def test_random_epochs_are_permutations():
    loader = BatchLoader(*_data(), 5, seed=7)
    orders = [_order(loader, e) for e in range(4)]
    for order in orders:
        assert sorted(order) == list(range(N))  # every index exactly once
    assert len({tuple(o) for o in orders}) == 4  # each epoch its own order
    assert orders[0] != list(range(N))


def test_same_seed_same_order_regardless_of_history():
    a = BatchLoader(*_data(), 5, seed=7)
    b = BatchLoader(*_data(), 5, seed=7)
    for e in range(3):
        _order(a, e)
    assert _order(a, 3) == _order(b, 3)  # epoch 3 read first on b
    assert _order(BatchLoader(*_data(), 5, seed=8), 3) != _order(b, 3)


def test_batch_sizes_and_lengths():
    loader = BatchLoader(*_data(), 5)
    sizes = [len(xb) for xb, _ in loader.epoch(0)]
    assert sizes == [5, 5, 5, 5, 3]
    assert len(loader) == loader.num_batches() == math.ceil(N / 5)
    dropping = BatchLoader(*_data(), 5, drop_last=True)
    assert [len(xb) for xb, _ in dropping.epoch(0)] == [5, 5, 5, 5]
    assert len(dropping) == N // 5


def test_cyclic_order_is_stored_order_every_epoch():
    loader = BatchLoader(*_data(), 4, order="cyclic", seed=3)
    assert _order(loader, 0) == _order(loader, 5) == list(range(N))


def test_full_batch_is_everything_once():
    x, y = _data()
    loader = BatchLoader(x, y, 4, order="full")
    batches = list(loader.epoch(2))
    assert len(batches) == 1 == len(loader)
    assert torch.equal(batches[0][0], x) and torch.equal(batches[0][1], y)


def test_per_epoch_batch_size_keeps_the_permutation():
    loader = BatchLoader(*_data(), 5, seed=1)
    sizes = [len(xb) for xb, _ in loader.epoch(2, batch_size=10)]
    assert sizes == [10, 10, 3]
    assert loader.num_batches(10) == 3
    assert _order(loader, 2, batch_size=10) == _order(loader, 2)


def test_skip_resumes_mid_epoch():
    loader = BatchLoader(*_data(), 4, seed=2)
    full = list(loader.epoch(1))
    resumed = list(loader.epoch(1, skip=3))
    assert len(resumed) == len(full) - 3
    for (xa, ya), (xb, yb) in zip(full[3:], resumed, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert list(loader.epoch(1, skip=len(full))) == []


def test_iterating_the_loader_walks_epochs():
    loader = BatchLoader(*_data(), 6, seed=4)
    first = [xb[:, 0].long().tolist() for xb, _ in loader]
    second = [xb[:, 0].long().tolist() for xb, _ in loader]
    assert sum(first, []) == _order(loader, 0) and sum(second, []) == _order(loader, 1)


def test_bad_arguments_are_named():
    x, y = _data()
    with pytest.raises(OptimlabError, match="invalid batch_size"):
        BatchLoader(x, y, 0)
    with pytest.raises(OptimlabError, match="unknown order 'shuffle'.*random, cyclic, full"):
        BatchLoader(x, y, 4, order="shuffle")
    with pytest.raises(OptimlabError, match="x has 23 examples but y has 22"):
        BatchLoader(x, y[:-1], 4)
    loader = BatchLoader(x, y, 4)
    with pytest.raises(OptimlabError, match="invalid skip: 7; the epoch has 6 batches"):
        loader.epoch(0, skip=7)
    with pytest.raises(OptimlabError, match="invalid epoch"):
        loader.epoch(-1)
    with pytest.raises(OptimlabError, match="batch_size 30 exceeds the 23 examples"):
        BatchLoader(x, y, 30, drop_last=True).epoch(0)
    with pytest.raises(OptimlabError, match="invalid seed"):
        BatchLoader(x, y, 4, seed=-1)
