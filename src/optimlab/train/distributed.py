"""What the trainer needs to know about a run spread over several processes.

A :class:`World` is handed to :class:`optimlab.train.Trainer` (``world=``); the trainer
calls it at a few fixed points and otherwise runs its one loop. This base class is the
world of one process: every method leaves things as they are. The implementations live
in :mod:`optimlab.parallel` (a process group for synchronous data parallel and local
SGD; shared memory for Hogwild!), so the trainer imports nothing from there.

The points where the trainer asks the world:

- set-up: :meth:`World.shard` gives the loader of this process's share of the data,
  :meth:`World.wrap_model` the module to call in training (e.g. DistributedDataParallel),
  :meth:`World.wrap_optimizer` the optimizer to step (e.g. one that also averages models);
- a pipelined world (the model split into stages) runs each batch's forward and
  backward passes itself: :meth:`World.forward_backward`;
- every micro-batch of a step: :meth:`World.loss_weights`, the factors its mean loss is
  multiplied by before ``backward`` (so that averaged gradients are those of the global
  batch even when the shares differ in size);
- every reduction that decides something (the sampled step loss, the epoch's sums, the
  evaluation sums, whether the state is finite): :meth:`World.all_sum`, so that every
  process takes the same decision;
- checkpoints: :meth:`World.gather` collects each process's own state (random
  generators, epoch sums, and with ``World.rank_state`` the model and optimizer) into the
  one file the writer (rank 0) writes; every process reads it back on resume;
- epoch ends: :meth:`World.epoch_end` (local SGD averages the models there, so that
  one model is evaluated and checkpointed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn


class World:
    """One process: rank 0 of 1, writes the files, reduces nothing.

    Attributes:
        rank: this process's index, 0 to ``size - 1``.
        size: the number of processes.
        is_writer: whether this process writes files (checkpoints, metrics, summary).
        reduces: whether :meth:`all_sum` combines values over processes (False where
            the processes never wait for each other, as in Hogwild!).
        evaluates: whether this process evaluates the validation and test sets.
        rank_state: what of the model and optimizer differs between processes and so
            goes into the checkpoint once per process (``("model", "optimizer")`` for
            local SGD, nothing where the processes hold one model); ``"counters"``:
            the step and example counts and the scheduler, where each process steps at
            its own pace.
        pipelined: the processes hold stages of the model and run each batch through
            them together; the trainer calls :meth:`forward_backward` instead of its own
            forward and backward passes.
    """

    rank: int = 0
    size: int = 1
    is_writer: bool = True
    reduces: bool = False
    evaluates: bool = True
    rank_state: tuple[str, ...] = ()
    pipelined: bool = False

    def shard(self, loader: Any) -> Any:
        """The loader of this process's batches, built from the whole run's loader."""
        return loader

    def own_batches(self, n: int) -> int:
        """How many of an epoch's ``n`` (global) batches this process steps on: all of
        them where the processes share each batch."""
        return n

    def wrap_model(self, model: nn.Module) -> nn.Module:
        """The module the training step calls (the model itself by default)."""
        return model

    def wrap_optimizer(self, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
        """The optimizer the training step steps (the optimizer itself by default)."""
        return optimizer

    def loss_weights(
        self, step: int, local_sizes: Sequence[int], global_sizes: Sequence[int]
    ) -> list[float] | None:
        """Factors for the mean losses of one step's micro-batches (``local_sizes``
        examples here, ``global_sizes`` over all processes); None: the trainer's own
        weighting of one process."""
        return None

    def forward_backward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """A pipelined world's forward and backward passes over one batch: its mean
        loss and the model's outputs, the same on every process."""
        raise NotImplementedError(f"{type(self).__name__} does not run a pipeline")

    def all_sum(self, tensor: Tensor) -> Tensor:
        """``tensor`` summed over the processes, in place (and returned)."""
        return tensor

    def all_mean(self, tensor: Tensor) -> Tensor:
        """``tensor`` averaged over the processes, in place (and returned)."""
        if self.reduces and self.size > 1:
            self.all_sum(tensor).div_(self.size)
        return tensor

    def share(self, n: int) -> tuple[int, int]:
        """This process's contiguous share ``[lo, hi)`` of ``n`` items (sizes differ
        by at most one, the larger shares first)."""
        return share_bounds(n, self.rank, self.size)

    def gather(self, obj: Any) -> list[Any] | None:
        """Every process's ``obj``, in rank order, on the writer; None elsewhere."""
        return [obj]

    def barrier(self) -> None:
        """Wait until every process has arrived here."""

    def rank_seed(self, seed: int) -> int:
        """The seed of this process's random generators: ``seed`` itself on rank 0, so
        that a run of one process is the run without a world, and a seed derived from
        ``(seed, rank)`` elsewhere, so that dropout masks differ between processes."""
        if self.rank == 0:
            return seed
        return int(np.random.SeedSequence([seed, self.rank]).generate_state(1)[0])

    def start(self, trainer: Any) -> None:
        """Called once the run's state is fresh or loaded, before the first step."""

    def epoch_end(self, model: nn.Module) -> None:
        """Called after an epoch's last step, before it is evaluated."""


def share_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """Rank ``rank``'s share ``[lo, hi)`` of ``n`` items split over ``size`` ranks as
    evenly as possible; the first ``n % size`` ranks take one more."""
    base, extra = divmod(n, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def to_cpu(obj: Any) -> Any:
    """``obj`` with every tensor in it moved to the CPU (for gathering and saving)."""
    if isinstance(obj, Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_cpu(v) for v in obj)
    return obj
