"""Mini-batches over in-memory tensors, by index, in an order fixed by (seed, epoch).

The trainer prefers ``optimlab.data.BatchLoader``; :class:`TensorBatcher` is the
stand-in with the same interface, used when that module is not installed. Either way
an epoch's order is a pure function of (seed, epoch), which is what lets a checkpoint
hold just the epoch and the number of batches already consumed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from optimlab.errors import OptimlabError

ORDERS = ("random", "cyclic", "full")


class Loader(Protocol):
    """What the trainer needs from a loader."""

    def epoch(
        self, e: int, batch_size: int | None = None, skip: int = 0
    ) -> Iterator[tuple[Tensor, Tensor]]: ...


def epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed 63-bit seed for one epoch of one run."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(2, np.uint64)[0] >> 1)


class TensorBatcher:
    """Batches of ``(x[idx], y[idx])``; ``order`` is random (reshuffled each epoch),
    cyclic (the stored order every epoch) or full (one batch of everything)."""

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        batch_size: int,
        *,
        order: str = "random",
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if order not in ORDERS:
            raise OptimlabError(f"invalid order {order!r}; valid orders: {', '.join(ORDERS)}")
        if len(x) != len(y):
            raise OptimlabError(f"x and y differ in length: {len(x)} != {len(y)}")
        if int(batch_size) < 1:
            raise OptimlabError(f"invalid batch_size: {batch_size!r}; valid range is [1, inf]")
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.order, self.seed, self.drop_last = order, int(seed), drop_last

    def __len__(self) -> int:
        return self.num_batches()

    def num_batches(self, batch_size: int | None = None) -> int:
        n, bs = len(self.x), self._size(batch_size)
        return n // bs if self.drop_last else -(-n // bs)

    def _size(self, batch_size: int | None) -> int:
        if self.order == "full":
            return max(len(self.x), 1)
        return int(batch_size or self.batch_size)

    def epoch(
        self, e: int, batch_size: int | None = None, skip: int = 0
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield the batches of epoch ``e``, leaving out the first ``skip``."""
        n, bs = len(self.x), self._size(batch_size)
        stop = (n // bs) * bs if self.drop_last else n
        if self.order == "random":
            gen = torch.Generator().manual_seed(epoch_seed(self.seed, e))
            perm = torch.randperm(n, generator=gen).to(self.x.device)
            for i in range(skip * bs, stop, bs):
                idx = perm[i : i + bs]
                yield self.x.index_select(0, idx), self.y.index_select(0, idx)
        else:
            for i in range(skip * bs, stop, bs):
                yield self.x[i : i + bs], self.y[i : i + bs]


def make_loader(
    x: Tensor,
    y: Tensor,
    batch_size: int,
    *,
    order: str = "random",
    seed: int = 0,
    drop_last: bool = False,
) -> Any:
    """``optimlab.data.BatchLoader`` when available, else :class:`TensorBatcher`."""
    try:
        from optimlab.data import BatchLoader  # type: ignore[attr-defined]
    except ImportError:
        BatchLoader = TensorBatcher  # noqa: N806 - same interface, chosen at run time
    return BatchLoader(x, y, batch_size, order=order, seed=seed, drop_last=drop_last)
