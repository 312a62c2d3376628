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

from optimlab.errors import OptimlabError

ORDERS = ("random", "cyclic", "full")

# Mixed into the seed so loader streams never coincide with the split stream.
LOADER_STREAM = 0x10AD


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The example order of ``epoch``: a permutation of range(n) fixed by (seed, epoch)."""
    return np.random.default_rng([LOADER_STREAM, seed, epoch]).permutation(n)


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
            number), "cyclic" (the stored order every epoch) or "full" (one batch of
            everything: plain gradient descent).
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
        order: str = "random",
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if x.shape[0] != y.shape[0]:
            raise OptimlabError(f"x has {x.shape[0]} examples but y has {y.shape[0]}")
        if order not in ORDERS:
            raise OptimlabError(f"unknown order {order!r}; valid orders: {', '.join(ORDERS)}")
        self.x, self.y = x, y
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.order = order
        self.seed = _check_int("seed", seed, 0)
        self.drop_last = bool(drop_last)
        self._next_epoch = 0

    @property
    def num_examples(self) -> int:
        return int(self.x.shape[0])

    def num_batches(self, batch_size: int | None = None) -> int:
        """Batches per epoch at ``batch_size`` (default: the loader's)."""
        if self.order == "full":
            return 1 if self.num_examples else 0
        size = self.batch_size if batch_size is None else _check_int("batch_size", batch_size, 1)
        if self.drop_last:
            return self.num_examples // size
        return math.ceil(self.num_examples / size)

    def __len__(self) -> int:
        return self.num_batches()

    def indices(self, epoch: int) -> Tensor | None:
        """The example order of ``epoch`` on the data's device; None means stored order."""
        _check_int("epoch", epoch, 0)
        if self.order != "random":
            return None
        perm = epoch_permutation(self.num_examples, self.seed, epoch)
        return torch.from_numpy(perm).to(self.x.device)

    def epoch(
        self, epoch: int, batch_size: int | None = None, *, skip: int = 0
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """The batches of ``epoch``, optionally at another ``batch_size`` (batch-size
        schedules) and starting after the first ``skip`` batches (exact resume).

        Arguments are checked here, before the first batch is asked for.
        """
        _check_int("epoch", epoch, 0)
        n_batches = self.num_batches(batch_size)
        skip = _check_int("skip", skip, 0)
        if skip > n_batches:
            raise OptimlabError(f"invalid skip: {skip}; the epoch has {n_batches} batches")
        size = self.batch_size if batch_size is None else batch_size
        if self.order != "full" and self.drop_last and n_batches == 0:
            raise OptimlabError(
                f"batch_size {size} exceeds the {self.num_examples} examples with drop_last=True"
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
        for b in range(skip, n_batches):
            start, stop = b * size, min((b + 1) * size, self.num_examples)
            if order is None:  # slices are views: no copy for the stored order
                yield self.x[start:stop], self.y[start:stop]
            else:
                idx = order[start:stop]
                yield self.x[idx], self.y[idx]

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        epoch, self._next_epoch = self._next_epoch, self._next_epoch + 1
        return self.epoch(epoch)
