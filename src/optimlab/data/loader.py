"""Mini-batches of tensors that stay on their device, picked by index.

The order of epoch ``e`` is a pure function of ``(seed, e)``: resuming a run exactly
needs only the epoch and the batch reached (``skip``), never a saved RNG state.
Permutations are drawn on the CPU with numpy and moved to the data's device, so the
order does not depend on the device either.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from optimlab.data import ordering
from optimlab.data.ordering import LOADER_STREAM, Ordering, epoch_permutation
from optimlab.errors import OptimlabError

# Orders a name selects; "curriculum" needs scores, so it is given as an object
# (``ordering.Curriculum(scores, ...)``) instead.
ORDERS = ("random", "cyclic", "full", "shuffle_once")
# Every order a run can name: a run's builder makes the curriculum's scores itself.
ALL_ORDERS = (*ORDERS, "curriculum")

__all__ = ["ALL_ORDERS", "LOADER_STREAM", "ORDERS", "BatchLoader", "epoch_permutation"]


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise OptimlabError(f"invalid {name}: {value!r}; valid values are integers >= {low}")
    return int(value)


class BatchLoader:
    """Batches ``(x[idx], y[idx])`` of in-memory tensors.

    Args:
        x, y: tensors whose first dimension indexes examples (same length, any device).
        batch_size: examples per batch (ignored by ``order="full"``).
        order: "random" (a fresh permutation each epoch, from ``seed`` and the epoch
            number), "shuffle_once" (one permutation from ``seed``, every epoch),
            "cyclic" (the stored order every epoch), "full" (one batch of everything:
            plain gradient descent), or an :class:`optimlab.data.ordering.Ordering`
            object such as ``Curriculum(scores, start=0.2, epochs=10)``, whose epochs
            may visit only a pool of the examples.
        seed: seed of the random orders; the same seed gives the same batches.
        drop_last: drop a last batch smaller than ``batch_size``.

    ``loader.epoch(e)`` yields the batches of epoch ``e``; iterating the loader itself
    walks epochs 0, 1, 2, ... one per ``iter`` call.
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        batch_size: int,
        *,
        order: str | Ordering = "random",
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if x.shape[0] != y.shape[0]:
            raise OptimlabError(f"x has {x.shape[0]} examples but y has {y.shape[0]}")
        if isinstance(order, str):
            if order not in ORDERS:
                raise OptimlabError(f"unknown order {order!r}; valid orders: {', '.join(ORDERS)}")
            self.ordering: Ordering | None = None if order == "full" else ordering.create(order)
        elif callable(getattr(order, "indices", None)) and callable(
            getattr(order, "pool_size", None)
        ):
            self.ordering = order
            order.pool_size(int(x.shape[0]), 0)  # a size mismatch fails here, not mid-run
        else:
            raise OptimlabError(
                f"invalid order {order!r}; give a name ({', '.join(ORDERS)}) "
                "or an Ordering object (optimlab.data.ordering)"
            )
        self.x, self.y = x, y
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.order = order if isinstance(order, str) else order.name
        self.seed = _check_int("seed", seed, 0)
        self.drop_last = bool(drop_last)
        self._next_epoch = 0

    @property
    def num_examples(self) -> int:
        return int(self.x.shape[0])

    def pool_size(self, epoch: int | None = None) -> int:
        """Examples visited in ``epoch`` (all of them unless a curriculum holds some back;
        ``epoch=None`` means a full epoch)."""
        if self.ordering is None or epoch is None:
            return self.num_examples
        return self.ordering.pool_size(self.num_examples, _check_int("epoch", epoch, 0))

    def num_batches(self, batch_size: int | None = None, *, epoch: int | None = None) -> int:
        """Batches per epoch at ``batch_size`` (default: the loader's); with ``epoch``,
        of that epoch's pool."""
        if self.order == "full":
            return 1 if self.num_examples else 0
        size = self.batch_size if batch_size is None else _check_int("batch_size", batch_size, 1)
        pool = self.pool_size(epoch)
        if self.drop_last:
            return pool // size
        return math.ceil(pool / size)

    def __len__(self) -> int:
        return self.num_batches()

    def indices(self, epoch: int) -> Tensor | None:
        """The example order of ``epoch`` on the data's device; None means stored order."""
        _check_int("epoch", epoch, 0)
        if self.ordering is None:
            return None
        perm = self.ordering.indices(self.num_examples, self.seed, epoch)
        return None if perm is None else torch.from_numpy(perm).to(self.x.device)

    def epoch(
        self, epoch: int, batch_size: int | None = None, *, skip: int = 0
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """The batches of ``epoch``, optionally at another ``batch_size`` (batch-size
        schedules) and starting after the first ``skip`` batches (exact resume).

        Arguments are checked here, before the first batch is asked for.
        """
        _check_int("epoch", epoch, 0)
        n_batches = self.num_batches(batch_size, epoch=epoch)
        skip = _check_int("skip", skip, 0)
        if skip > n_batches:
            raise OptimlabError(f"invalid skip: {skip}; the epoch has {n_batches} batches")
        size = self.batch_size if batch_size is None else batch_size
        if self.order != "full" and self.drop_last and n_batches == 0:
            raise OptimlabError(
                f"batch_size {size} exceeds the {self.pool_size(epoch)} examples of epoch "
                f"{epoch} with drop_last=True"
            )
        return self._batches(epoch, size, skip, n_batches)

    def _batches(
        self, epoch: int, size: int, skip: int, n_batches: int
    ) -> Iterator[tuple[Tensor, Tensor]]:
        if self.order == "full":
            if skip < n_batches:
                yield self.x, self.y
            return
        order = self.indices(epoch)
        count = self.num_examples if order is None else int(order.shape[0])
        for b in range(skip, n_batches):
            start, stop = b * size, min((b + 1) * size, count)
            if order is None:  # slices are views: no copy for the stored order
                yield self.x[start:stop], self.y[start:stop]
            else:
                idx = order[start:stop]
                # index_select is several times faster than advanced indexing here
                # (a dedicated gather kernel), and gives the same tensors
                yield self.x.index_select(0, idx), self.y.index_select(0, idx)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        epoch, self._next_epoch = self._next_epoch, self._next_epoch + 1
        return self.epoch(epoch)
