"""How many optimizer steps each epoch takes, and ``batch_schedule = "increase"``.

**Steps per epoch.** Epoch ``e`` visits ``pool(e)`` examples (all ``n`` of them, or a
curriculum's pool) in batches of ``B(e)`` (the batch size, or the batch schedule's),
the last one partial; ``ceil(pool(e) / B(e))`` batches (this process's share of them in
a Hogwild! world), each fed ``batch_repeats`` times, make
``ceil(batches * batch_repeats / grad_accumulation)`` optimizer steps. A run's
length is the sum over its epochs (:func:`optimlab.run.total_steps`), which is the
trainer's own count.

**Increasing the batch instead of decaying the LR** (Smith, Kindermans, Ying & Le,
ICLR 2018). ``--schedule`` and its arguments describe the decaying-LR run at the run's
batch size ``B``, counted in that run's steps (milestones, step sizes, a horizon filled
from that run's length). Read as a function of the (fractional) epoch, that schedule
``lr(t)`` gives the batch of each epoch ``e``: ``B(e) = clip(round(B lr(0) / lr(e)),
B, max_batch)`` (:class:`optimlab.schedules.IncreaseBatch`); the learning rate at
fractional epoch ``t`` is ``lr(t) B(floor t) / B``, so ``lr / B``, the noise scale, is the
decaying run's at every point of training. The LR therefore stays at ``lr(0)`` while the
batch grows, and decays by the remaining factor once the batch is capped at
``max_batch`` (default ``n // 10``, the paper's hybrid). Each epoch at a larger batch
takes fewer steps, which is the point: the same epochs, fewer parameter updates.
Milestones at whole epochs of the decaying run (multiples of its steps per epoch) give
the plain picture; one inside an epoch lowers the LR for the rest of that epoch, as the
decaying run does, and the batch grows at the next epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from optimlab.run.config import RunConfig


def pass_steps(config: RunConfig, examples: int | None, batch_size: int, world: Any = None) -> int:
    """Optimizer steps of one pass over ``examples`` in batches of ``batch_size`` (None:
    one full-batch step), this process's share of them in a ``world``, each batch fed
    ``batch_repeats`` times."""
    n = 1 if examples is None else math.ceil(examples / batch_size)
    if world is not None:
        n = world.own_batches(n)
    return math.ceil(n * config.batch_repeats / config.grad_accumulation)


def epoch_lengths(
    config: RunConfig,
    problem: Any,
    batch_size: int,
    world: Any = None,
    batches: Callable[[int], int] | None = None,
) -> Callable[[int], int]:
    """``epoch -> optimizer steps`` of the run (``batches``: the batch size by epoch)."""
    from optimlab.run.curriculum import pool_sizes

    if problem.splits is None or config.order == "full":  # one full-batch step per epoch
        return lambda epoch: pass_steps(config, None, batch_size, world)
    pool = pool_sizes(config, len(problem.splits.train.x))

    def length(epoch: int) -> int:
        size = batch_size if batches is None else batches(epoch)
        return pass_steps(config, pool(epoch), size, world)

    return length


def increase_batch(
    config: RunConfig, problem: Any, batch_size: int, lr: float, world: Any = None
) -> tuple[Any, Any]:
    """``(lr_by_step, batch_by_epoch)`` of ``batch_schedule = "increase"`` (module doc):
    the run's LR schedule, starting from ``lr``, turned into growing batches."""
    from optimlab.run.build import make_schedule, total_steps
    from optimlab.schedules import EpochClock, OnEpochs, OnSteps, increase_batch_instead

    decaying = config.replace(batch_schedule=None, max_batch=None)
    schedule = make_schedule(config.schedule, config.schedule_args, lr=lr,
                             total=total_steps(decaying, problem, batch_size, world))  # fmt: skip
    by_epoch = OnEpochs(schedule, EpochClock(epoch_lengths(decaying, problem, batch_size, world)))
    n = len(problem.splits.train.x)
    lr_by_epoch, batches = increase_batch_instead(by_epoch, batch_size, config.max_batch,
                                                  dataset_size=max(n, batch_size))  # fmt: skip
    clock = EpochClock(epoch_lengths(config, problem, batch_size, world, batches))
    return OnSteps(lr_by_epoch, clock), batches
