"""Which examples each process trains on.

Both loaders wrap the run's :class:`optimlab.data.BatchLoader`, whose epoch order is a
pure function of ``(seed, epoch)``: every process computes the same order without
talking to the others, and a resumed process finds its place from the epoch and the
batch reached.

- :class:`ShardedLoader` (synchronous data parallel, local SGD): rank ``r`` of ``N``
  takes the ``r``-th contiguous share of every global batch; the shares of one batch
  are disjoint and cover it, so the global batch size means what it means in one
  process. Only the shares are gathered (``index_select``), never the whole batch.
- :class:`InterleavedLoader` (Hogwild!): rank ``r`` takes whole batches ``r, r + N,
  r + 2N, ...`` of every epoch, so that the processes together visit each example once
  per epoch without waiting for each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch import Tensor

from optimlab.errors import OptimlabError
from optimlab.train.distributed import share_bounds


def _check_skip(skip: int, n_batches: int) -> None:
    if isinstance(skip, bool) or not isinstance(skip, int) or not 0 <= skip <= n_batches:
        raise OptimlabError(f"invalid skip: {skip!r}; the epoch has {n_batches} batches")


class ShardedLoader:
    """Rank ``rank``'s share of every batch of ``base`` (a BatchLoader), for a world of
    ``size`` processes. Batch counts are those of the global batches."""

    def __init__(self, base: Any, rank: int, size: int) -> None:
        self.base = base
        self.rank, self.size = int(rank), int(size)
        self.x, self.y = base.x, base.y

    def num_batches(self, batch_size: int | None = None, *, epoch: int | None = None) -> int:
        return self.base.num_batches(batch_size, epoch=epoch)

    def global_size(self, epoch: int, index: int, batch_size: int | None = None) -> int:
        """Examples in global batch ``index`` of ``epoch`` (over all processes)."""
        pool = self.base.pool_size(epoch)
        if self.base.order == "full":
            return pool
        size = self.base.batch_size if batch_size is None else batch_size
        return max(0, min(size, pool - index * size))

    def epoch(
        self, epoch: int, batch_size: int | None = None, *, skip: int = 0
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """This process's share of each batch of ``epoch`` after the first ``skip``."""
        n_batches = self.base.num_batches(batch_size, epoch=epoch)
        _check_skip(skip, n_batches)
        size = self.base.batch_size if batch_size is None else batch_size
        if self.base.drop_last and n_batches == 0 and self.base.order != "full":
            raise OptimlabError(
                f"batch_size {size} exceeds the {self.base.pool_size(epoch)} examples of "
                f"epoch {epoch} with drop_last=True"
            )
        return self._shares(epoch, size, skip, n_batches)

    def _shares(
        self, epoch: int, size: int, skip: int, n_batches: int
    ) -> Iterator[tuple[Tensor, Tensor]]:
        order = self.base.indices(epoch)
        x, y = self.x, self.y
        for b in range(skip, n_batches):
            n = self.global_size(epoch, b, size)
            start = 0 if self.base.order == "full" else b * size
            lo, hi = share_bounds(n, self.rank, self.size)
            if order is None:  # the stored order: slices are views, no copy
                yield x[start + lo : start + hi], y[start + lo : start + hi]
            else:
                idx = order[start + lo : start + hi]
                yield x.index_select(0, idx), y.index_select(0, idx)


class InterleavedLoader:
    """Whole batches ``rank, rank + size, ...`` of every epoch of ``base``; batch
    counts and ``skip`` are this process's own."""

    def __init__(self, base: Any, rank: int, size: int) -> None:
        self.base = base
        self.rank, self.size = int(rank), int(size)

    def num_batches(self, batch_size: int | None = None, *, epoch: int | None = None) -> int:
        return len(range(self.rank, self.base.num_batches(batch_size, epoch=epoch), self.size))

    def epoch(
        self, epoch: int, batch_size: int | None = None, *, skip: int = 0
    ) -> Iterator[tuple[Tensor, Tensor]]:
        mine = self.num_batches(batch_size, epoch=epoch)
        _check_skip(skip, mine)
        size = self.base.batch_size if batch_size is None else batch_size
        return self._own(epoch, size, skip, mine)

    def _own(self, epoch: int, size: int, skip: int, mine: int) -> Iterator[tuple[Tensor, Tensor]]:
        base = self.base
        if base.order == "full":  # one batch per epoch: rank 0's
            if skip < mine:
                yield base.x, base.y
            return
        order = base.indices(epoch)
        count = base.num_examples if order is None else int(order.shape[0])
        for k in range(skip, mine):
            b = self.rank + k * self.size
            start, stop = b * size, min((b + 1) * size, count)
            if order is None:
                yield base.x[start:stop], base.y[start:stop]
            else:
                idx = order[start:stop]
                yield base.x.index_select(0, idx), base.y.index_select(0, idx)
