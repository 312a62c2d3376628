"""Which examples each process trains on, and how its share of a step is weighed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optimlab.data.loader import BatchLoader
from optimlab.errors import OptimlabError
from optimlab.parallel.sharding import InterleavedLoader, ShardedLoader
from optimlab.parallel.sync import global_batch_weights
from optimlab.train.distributed import World, share_bounds


def _data(n=103):
    x = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    return x, x.squeeze(1).long()


@pytest.mark.parametrize("order", ["random", "cyclic", "shuffle_once", "full"])
@pytest.mark.parametrize("size", [1, 2, 3])
def test_shares_of_a_batch_are_disjoint_and_make_it_up(order, size):
    base = BatchLoader(*_data(), 10, order=order, seed=4)
    shards = [ShardedLoader(base, r, size) for r in range(size)]
    for epoch in (0, 1):
        whole = list(base.epoch(epoch))
        parts = [list(s.epoch(epoch)) for s in shards]
        assert all(len(p) == len(whole) == s.num_batches(epoch=epoch)
                   for p, s in zip(parts, shards))  # fmt: skip
        for b, (x, y) in enumerate(whole):
            assert torch.equal(torch.cat([p[b][0] for p in parts]), x)
            assert torch.equal(torch.cat([p[b][1] for p in parts]), y)
            assert shards[0].global_size(epoch, b) == len(x)
            sizes = [len(p[b][0]) for p in parts]
            assert max(sizes) - min(sizes) <= 1
        # resuming mid-epoch gives the same shares
        skip = min(3, len(whole))
        resumed = list(shards[-1].epoch(epoch, skip=skip))
        assert len(resumed) == len(whole) - skip
        assert all(torch.equal(a[0], b[0]) for a, b in zip(resumed, parts[-1][skip:]))


def test_an_empty_share_when_a_batch_is_smaller_than_the_world():
    base = BatchLoader(*_data(7), 4, order="cyclic")  # batches of 4 and 3
    last = [list(ShardedLoader(base, r, 4).epoch(0))[-1][0] for r in range(4)]
    assert [len(x) for x in last] == [1, 1, 1, 0]
    with pytest.raises(OptimlabError, match="invalid skip"):
        list(ShardedLoader(base, 0, 2).epoch(0, skip=3))


@pytest.mark.parametrize("size", [1, 2, 3])
def test_interleaved_processes_visit_every_batch_once(size):
    base = BatchLoader(*_data(), 10, order="random", seed=1)
    whole = list(base.epoch(2))
    own = [list(InterleavedLoader(base, r, size).epoch(2)) for r in range(size)]
    assert sum(len(o) for o in own) == len(whole)
    for b, (x, _) in enumerate(whole):
        assert torch.equal(own[b % size][b // size][0], x)
    # skip counts a process's own batches
    tail = list(InterleavedLoader(base, size - 1, size).epoch(2, skip=1))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(tail, own[-1][1:]))
    assert len(tail) == len(own[-1]) - 1


def test_weighted_shares_average_to_the_global_gradient():
    """Shares of 4 and 3 examples: each share's mean loss times N n_r / b, averaged over
    the N processes (what DDP does), is the mean over the 7; the plain average is not."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2).double()
    x, y = torch.randn(7, 3, dtype=torch.float64), torch.randint(0, 2, (7,))
    loss_fn = nn.CrossEntropyLoss()

    def grad(loss):
        model.zero_grad()
        loss.backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    reference = grad(loss_fn(model(x), y))
    bounds = [share_bounds(7, r, 2) for r in range(2)]
    assert bounds == [(0, 4), (4, 7)]
    weights = global_batch_weights(2, [4, 3], [7])
    weighed = sum(grad(loss_fn(model(x[lo:hi]), y[lo:hi]) * w)
                  for (lo, hi), w in zip(bounds, weights)) / 2  # fmt: skip
    plain = sum(grad(loss_fn(model(x[lo:hi]), y[lo:hi])) for lo, hi in bounds) / 2
    assert torch.allclose(weighed, reference, rtol=1e-13, atol=1e-15)
    assert not torch.allclose(plain, reference, rtol=1e-6)


def test_one_process_world_keeps_everything():
    world = World()
    assert world.rank_seed(7) == 7 and world.share(5) == (0, 5)
    assert world.loss_weights(0, [3], [3]) is None and world.gather("x") == ["x"]
    t = torch.ones(2)
    assert world.all_sum(t) is t and torch.equal(t, torch.ones(2))
    # other ranks draw other streams
    assert len({World.rank_seed(type("R", (World,), {"rank": r})(), 7) for r in range(4)}) == 4
