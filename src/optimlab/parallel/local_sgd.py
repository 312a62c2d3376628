"""Local SGD and post-local SGD on torch's model averaging.

Papers: Stich 2019, *Local SGD Converges Fast and Communicates Little* (ICLR,
arXiv:1805.09767); Lin, Stich, Patel & Jaggi 2020, *Don't Use Large Mini-Batches, Use
Local SGD* (ICLR, arXiv:1808.07217), which adds the synchronous warm-up (post-local SGD).

Update. ``N`` processes start from the same weights. Step ``t`` (counted from 0) of
process ``r`` on its share of global batch ``t``, with period ``H`` and warm-up ``t0``::

    t <  t0:  as synchronous SGD (optimlab.parallel.sync): w <- U(w, mean_r h_r)
    t >= t0:  w_r <- U_r(w_r, g_r)                  (local step, local optimizer state)
              if (t - t0) mod H == 0:
                  w_r <- (1 / N) sum_s w_s          (model averaging, all processes)

and the models are also averaged at the end of every epoch (when they differ), so that
the model evaluated, checkpointed and returned is one model. The optimizer's state
(momentum, second moments) stays local; only weights are averaged. With ``H = 1`` and
plain or momentum SGD this is synchronous SGD again (averaging is linear), up to
rounding. ``t0 = 0`` is plain local SGD.

Torch's pieces: DistributedDataParallel with the ``post_localSGD_hook`` (global gradient
all-reduce until ``t0``, then none) and ``PostLocalSGDOptimizer`` with a
``PeriodicModelAverager(period=H, warmup_steps=t0)`` (the averaging after the step).

Communication: during the warm-up one gradient all-reduce per step; afterwards one
all-reduce of all weights every ``H`` steps (and at epoch ends) and nothing in between,
about ``H`` times less traffic than synchronous SGD. Checkpoints gather every process's
weights and optimizer state, so a resumed run continues each process exactly.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks.post_localSGD_hook import (
    PostLocalSGDState,
    post_localSGD_hook,
)
from torch.distributed.algorithms.model_averaging.averagers import PeriodicModelAverager
from torch.distributed.algorithms.model_averaging.utils import average_parameters
from torch.distributed.optim import PostLocalSGDOptimizer

from optimlab.parallel.methods import DEFAULT_LOCAL_SGD_PERIOD
from optimlab.parallel.sync import SyncWorld, global_batch_weights
from optimlab.parallel.world import Place


class LocalSGDWorld(SyncWorld):
    """Post-local SGD with period ``period`` (H) after ``warmup`` (t0) synchronous steps."""

    rank_state = ("model", "optimizer")

    def __init__(
        self, place: Place, device: torch.device, period: int | None = None,
        warmup: int | None = None,
    ) -> None:  # fmt: skip
        super().__init__(place, device)
        self.period = DEFAULT_LOCAL_SGD_PERIOD if period is None else int(period)
        self.warmup = 0 if warmup is None else int(warmup)
        self.hook_state: PostLocalSGDState | None = None
        self.averager: PeriodicModelAverager | None = None

    def wrap_model(self, model: nn.Module) -> nn.Module:
        ddp = super().wrap_model(model)
        # No gradient all-reduce after the warm-up: each process steps on its own
        # gradient (torch's default would still all-reduce within each machine).
        self.hook_state = PostLocalSGDState(
            process_group=None, subgroup=None, start_localSGD_iter=self.warmup,
            post_local_gradient_allreduce=False,
        )  # fmt: skip
        ddp.register_comm_hook(self.hook_state, post_localSGD_hook)
        return ddp

    def wrap_optimizer(self, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
        with warnings.catch_warnings():
            # torch advises DDP alone for period 1; here it is a legitimate setting (and
            # the check that local SGD reduces to synchronous SGD)
            warnings.filterwarnings("ignore", message="When period is 1")
            self.averager = PeriodicModelAverager(period=self.period, warmup_steps=self.warmup)
        return PostLocalSGDOptimizer(optimizer, self.averager)

    def loss_weights(
        self, step: int, local_sizes: Sequence[int], global_sizes: Sequence[int]
    ) -> list[float]:
        if step < self.warmup:  # gradients are averaged: weigh as synchronous SGD
            return global_batch_weights(self.size, local_sizes, global_sizes)
        return [1.0 for _ in local_sizes]  # each process's own mean gradient

    def start(self, trainer: Any) -> None:
        # The hook counts backward passes until the warm-up ends; a resumed run tells it
        # how many were taken (one per step: local SGD takes no gradient accumulation).
        assert self.hook_state is not None
        self.hook_state.iter = min(trainer.step, self.warmup)

    def epoch_end(self, model: nn.Module) -> None:
        assert self.averager is not None
        last = self.averager.step - 1  # the index of the step just taken
        if last < self.warmup or (last - self.warmup) % self.period == 0:
            return  # the models are equal: synchronous, or averaged after that step
        average_parameters(model.parameters(), dist.group.WORLD)
