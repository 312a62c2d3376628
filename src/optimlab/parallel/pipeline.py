"""Pipeline model parallelism: the model split into stages, one process each, GPipe's
micro-batches flowing through them.

Lecture 003 describes model parallelism as the computation graph split into a subgraph
for every device, the subgraphs communicating through send/receive pairs. Paper: Huang
et al. 2019, *GPipe: Efficient Training of Giant Neural Networks using Pipeline
Parallelism* (NeurIPS; arXiv:1811.06965). The engine: ``torch.distributed.pipelining``
(``PipelineStage``, ``ScheduleGPipe``), which runs on gloo and the CPU as well as on NCCL.

Split. The model must be an ``nn.Sequential``; its children are cut into ``S``
contiguous stages, ``S`` the number of processes, rank ``s`` holding stage ``s``. The
cut points minimise the largest stage's parameter count (every stage takes one child or
more; a layer without parameters stays with the layer before it), which balances the
stages' memory and roughly their work. Chosen over torch's tracing front end
(``pipeline`` with ``SplitPoint``): cutting the Sequential's own children needs no
tracing (torch.export), so every model of the registry built as a Sequential splits,
and a stage is the very module of the unsplit model.

Schedule (GPipe). A batch of ``b`` examples is cut into ``M`` equal micro-batches
(``micro_batches``; ``M`` divides ``b``). Stage ``s`` runs the forward pass of every
micro-batch, sending each activation to stage ``s + 1`` as soon as it is ready, then
the backward passes in reverse, sending the input gradients to stage ``s - 1``; each
stage's parameter gradients accumulate over the micro-batches, then every stage steps
its own parameters with the run's optimizer. The last stage's loss is::

    L = (1 / M) sum_j l_j,     l_j = mean loss of micro-batch j (b / M examples)

which is the batch's mean loss, so gradients and the step are those of the unsplit
model on the whole batch (to rounding; the tests check 1e-10 in float64). An epoch's
last, smaller batch uses the largest ``M' <= M`` that divides it.

Communication per step: per micro-batch, one activation tensor forward and one gradient
tensor backward between neighbouring stages (point-to-point). The last stage then
broadcasts the batch's loss and outputs, so that every process records the same epoch
totals. At each epoch's end every stage broadcasts its parameters and buffers, so each
process holds the whole current model to evaluate (each a share of the split, summed)
and to checkpoint; each process's optimizer state (of its own stage only) goes into the
checkpoint per rank, and a resumed run takes every stage from its owner.

Limits: every process loads the data (stage 0 reads the inputs, the last stage the
targets); dropout masks come from each stage's own generator, so they differ from an
unsplit run's; penalties and weight averaging, which read every stage's parameters,
are refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from optimlab.errors import OptimlabError
from optimlab.parallel.world import Place, ProcessGroupWorld

DEFAULT_MICRO_BATCHES = 4
"""GPipe's ``M`` when ``micro_batches`` is not given (capped by the batch's divisors)."""


def split_points(sizes: Sequence[int], stages: int) -> list[int]:
    """Start indices of ``stages`` contiguous, non-empty groups of items of ``sizes``
    that minimise the largest group's total; among equal ones the latest cuts, so that
    a layer without parameters (an activation) stays with the layer before it."""
    n = len(sizes)
    if stages < 1 or stages > n:
        raise ValueError(f"cannot cut {n} items into {stages} non-empty groups")
    prefix = [0]
    for size in sizes:
        prefix.append(prefix[-1] + size)
    # best[k][i]: the smallest largest total of the first i items in k groups
    best = [[math.inf] * (n + 1) for _ in range(stages + 1)]
    cut = [[0] * (n + 1) for _ in range(stages + 1)]
    best[0][0] = 0
    for k in range(1, stages + 1):
        for i in range(k, n + 1):
            for j in range(k - 1, i):
                cost = max(best[k - 1][j], prefix[i] - prefix[j])
                if cost <= best[k][i]:
                    best[k][i], cut[k][i] = cost, j
    starts, i = [], n
    for k in range(stages, 0, -1):
        i = cut[k][i]
        starts.append(i)
    return starts[::-1]


def split_model(model: nn.Module, stages: int) -> list[nn.Sequential]:
    """``model``'s children cut into ``stages`` contiguous Sequentials (the same module
    objects, so a stage's parameters are the model's); refused with a one-line error
    when the model is not a Sequential or has fewer children than stages."""
    if not isinstance(model, nn.Sequential):
        raise OptimlabError(
            f"parallel pipeline cannot split a {type(model).__name__}: it cuts an "
            "nn.Sequential between its children; valid: a problem whose model is a "
            "Sequential (an MLP, fmnist_2c2d, cifar10_3c3d, ...)"
        )
    children = list(model.children())
    if len(children) < stages:
        raise OptimlabError(
            f"invalid nproc: the model has {len(children)} layers in sequence and cannot "
            f"be split into {stages} stages; valid: nproc x nnodes <= {len(children)}"
        )
    sizes = [sum(p.numel() for p in child.parameters()) for child in children]
    starts = [*split_points(sizes, stages), len(children)]
    return [nn.Sequential(*children[a:b]) for a, b in zip(starts, starts[1:], strict=False)]


def micro_batches_for(batch: int, wanted: int) -> int:
    """The micro-batches of a batch of ``batch`` examples: the largest divisor of
    ``batch`` not above ``wanted``."""
    return max(m for m in range(1, min(batch, wanted) + 1) if batch % m == 0)


class PipelineWorld(ProcessGroupWorld):
    """One stage of a pipeline: every process sees every batch; the trainer calls
    :meth:`forward_backward` instead of its own forward and backward passes."""

    pipelined = True
    rank_state = ("model", "optimizer")

    def __init__(self, place: Place, device: torch.device, micro_batches: int | None) -> None:
        super().__init__(place, device)
        self.micro_batches = micro_batches or DEFAULT_MICRO_BATCHES
        self.stages: list[nn.Sequential] = []
        self._schedules: dict[int, Any] = {}
        self._outputs: dict[int, tuple[tuple[int, ...], torch.dtype]] = {}
        self._loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None

    @property
    def first(self) -> bool:
        return self.rank == 0

    @property
    def last(self) -> bool:
        return self.rank == self.size - 1

    def shard(self, loader: Any) -> Any:
        return loader  # every stage steps through every batch

    def wrap_model(self, model: nn.Module) -> nn.Module:
        self.stages = split_model(model, self.size)
        return model

    def start(self, trainer: Any) -> None:
        self._loss_fn = trainer.loss_fn
        self.sync_stages()  # a resumed process holds only its own stage's latest values

    def epoch_end(self, model: nn.Module) -> None:
        self.sync_stages()

    def sync_stages(self) -> None:
        """Every stage's parameters and buffers broadcast from the process that trains it."""
        with torch.no_grad():
            for owner, stage in enumerate(self.stages):
                for tensor in (*stage.parameters(), *stage.buffers()):
                    dist.broadcast(tensor.data, src=owner)

    def close(self) -> None:
        """Drop the schedules (their stages keep gloo's buffers and pending work), then
        leave the group, which frees them while the interpreter is alive."""
        self._schedules.clear()
        super().close()

    def _schedule(self, batch: int) -> Any:
        """The GPipe schedule of batches of ``batch`` examples (built at first use: a
        stage learns its micro-batches' shapes on its first step)."""
        from torch.distributed.pipelining import PipelineStage, ScheduleGPipe

        if batch not in self._schedules:
            m = micro_batches_for(batch, self.micro_batches)
            loss_fn = self._loss_fn
            assert loss_fn is not None

            def micro_loss(out: Tensor, target: Tensor) -> Tensor:
                return loss_fn(out, target) / m  # equal micro-batches: the batch mean

            stage = PipelineStage(self.stages[self.rank], self.rank, self.size, self.device)
            self._schedules[batch] = ScheduleGPipe(stage, n_microbatches=m, loss_fn=micro_loss,
                                                   scale_grads=False)  # fmt: skip
        return self._schedules[batch]

    def forward_backward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """One pipelined forward and backward pass over the batch; returns the batch's
        mean loss and the model's outputs, the same on every process."""
        b = x.shape[0]
        schedule = self._schedule(b)
        losses: list[Tensor] = []
        if self.first and self.last:
            out = schedule.step(x, target=y, losses=losses)
        elif self.first:
            out = schedule.step(x)
        elif self.last:
            out = schedule.step(target=y, losses=losses)
        else:
            out = schedule.step()
        last = self.size - 1
        if b not in self._outputs:  # the others learn the outputs' shape once
            kind = [(tuple(out.shape), out.dtype) if self.last else None]
            dist.broadcast_object_list(kind, src=last)
            self._outputs[b] = kind[0]
        if self.last:
            out = out.detach()
            loss = torch.stack([v.detach() for v in losses]).sum()
        else:
            shape, dtype = self._outputs[b]
            out = torch.empty(shape, dtype=dtype, device=self.device)
            loss = torch.empty((), dtype=dtype, device=self.device)
        dist.broadcast(out, src=last)
        dist.broadcast(loss, src=last)
        return loss, out
