"""The trainer's view of the batch loader.

Batches come from ``optimlab.data.BatchLoader``, whose epoch order is a pure function of
(seed, epoch). That is what lets a checkpoint hold just the epoch and the number of
batches consumed. The trainer needs only ``epoch(e, batch_size=None, skip=0)`` and
``num_batches(batch_size)`` from a loader (the :class:`Loader` protocol).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from torch import Tensor

from optimlab.data.loader import ORDERS, BatchLoader

__all__ = ["ORDERS", "Loader", "NoData", "make_loader"]


class Loader(Protocol):
    """What the trainer needs from a loader."""

    def epoch(
        self, epoch: int, batch_size: int | None = None, *, skip: int = 0
    ) -> Iterator[tuple[Tensor, Tensor]]: ...

    def num_batches(self, batch_size: int | None = None, *, epoch: int | None = None) -> int: ...


class NoData:
    """The loader of a problem without data: one batch ``(None, None)`` per epoch."""

    def epoch(
        self, epoch: int, batch_size: int | None = None, *, skip: int = 0
    ) -> Iterator[tuple[None, None]]:
        if skip == 0:
            yield None, None

    def num_batches(self, batch_size: int | None = None, *, epoch: int | None = None) -> int:
        return 1


def make_loader(
    x: Tensor,
    y: Tensor,
    batch_size: int,
    *,
    order: str | Any = "random",
    seed: int = 0,
    drop_last: bool = False,
) -> Loader:
    """The default loader: an index-based :class:`optimlab.data.BatchLoader`."""
    return BatchLoader(x, y, batch_size, order=order, seed=seed, drop_last=drop_last)
