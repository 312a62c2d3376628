"""Batch-size schedules: ``epoch -> batch size`` (Smith, Kindermans, Ying & Le, ICLR 2018).

"Don't decay the learning rate, increase the batch size": SGD's noise scale is about
``g = lr * N / (B * (1 - momentum))`` (N examples, batch B), so dividing ``lr`` by ``k``
and multiplying ``B`` by ``k`` shrink the noise alike, while the larger batch takes ``k``
times fewer steps per epoch. ``increase_batch_instead`` turns an LR schedule (in epochs)
into that pair; with a cap on the batch (about ``N / 10`` in the paper, "hybrid") the LR
decays again once the cap is reached.

Batch-size schedules are indexed by epoch (a fractional epoch is floored): the batch
size is fixed within an epoch, and the number of steps per epoch changes with it, so the
LR schedule of the pair is also a function of the (possibly fractional) epoch.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any

from optimlab.errors import OptimlabError
from optimlab.schedules import _checks
from optimlab.schedules.base import Parametrized, Schedule
from optimlab.schedules.compose import StepFn, _callables


class BatchSchedule(Parametrized):
    """Base class: ``schedule(epoch) -> int`` batch size, ``epoch`` from 0."""

    def _size(self, epoch: int) -> int:
        raise NotImplementedError

    def __call__(self, epoch: Any) -> int:
        e = _checks.step_value(epoch, "epoch")
        return int(self._size(math.floor(e)))


def _cap(name: str, max_batch: Any, batch_size: int) -> int | None:
    if max_batch is None:
        return None
    return _checks.integer(name, max_batch, batch_size)


class ConstantBatch(BatchSchedule):
    """The same batch size every epoch."""

    def __init__(self, batch_size: int = 128) -> None:
        self.batch_size = _checks.integer("batch_size", batch_size, 1)

    def _size(self, epoch: int) -> int:
        return self.batch_size


class MultiStepBatch(BatchSchedule):
    """``min(batch_size * factor ** k(e), max_batch)``, ``k(e)`` = milestones ``<= e``."""

    def __init__(
        self,
        batch_size: int = 128,
        milestones: tuple[int, ...] = (),
        factor: float = 5.0,
        max_batch: int | None = None,
    ) -> None:
        self.batch_size = _checks.integer("batch_size", batch_size, 1)
        self.milestones = _checks.increasing_ints("milestones", milestones, 1)
        self.factor = _checks.real("factor", factor, 1)
        self.max_batch = _cap("max_batch", max_batch, self.batch_size)

    def _size(self, epoch: int) -> int:
        k = sum(1 for m in self.milestones if m <= epoch)
        b = round(self.batch_size * self.factor**k)
        return b if self.max_batch is None else min(b, self.max_batch)


class IncreaseBatch(BatchSchedule):
    """``B(e) = clip(round(batch_size * lr(0) / lr(e)), batch_size, max_batch)``.

    Wherever ``lr_schedule`` has divided the LR by ``k``, the batch is ``k`` times larger
    (capped at ``max_batch``); where the LR is above its start (warm-up) the batch stays.
    """

    def __init__(
        self, lr_schedule: StepFn, batch_size: int = 128, max_batch: int | None = None
    ) -> None:
        self.lr_schedule = _callables("lr_schedule", lr_schedule)[0]
        self.batch_size = _checks.integer("batch_size", batch_size, 1)
        self.max_batch = _cap("max_batch", max_batch, self.batch_size)
        if not self.lr_schedule(0) > 0:
            raise OptimlabError(
                f"invalid lr_schedule: its value at epoch 0 is {self.lr_schedule(0)!r}; "
                "expected a positive learning rate"
            )

    def _size(self, epoch: int) -> int:
        lr0, lr = self.lr_schedule(0), self.lr_schedule(epoch)
        if lr <= 0:
            if self.max_batch is None:
                raise OptimlabError(
                    f"the LR schedule reaches {lr!r} at epoch {epoch}, which no batch size "
                    "can stand for; give max_batch"
                )
            return self.max_batch
        b = max(round(self.batch_size * lr0 / lr), self.batch_size)
        return b if self.max_batch is None else min(b, self.max_batch)


class BatchCompensatedLR(Schedule):
    """``lr_schedule(e) * batch_schedule(e) / batch_size``.

    Keeps ``lr / B`` (hence the noise scale) equal to the original schedule's
    ``lr_schedule(e) / batch_size`` at every (fractional) epoch ``e``.
    """

    def __init__(self, lr_schedule: StepFn, batch_schedule: BatchSchedule, batch_size: int) -> None:
        self.lr_schedule = _callables("lr_schedule", lr_schedule)[0]
        self.batch_schedule = _callables("batch_schedule", batch_schedule)[0]
        self.batch_size = _checks.integer("batch_size", batch_size, 1)

    def _value(self, t: Any, ops: type) -> Any:
        return self.lr_schedule(t) * self.batch_schedule(t) / self.batch_size


def increase_batch_instead(
    lr_schedule: StepFn,
    batch_size: int,
    max_batch: int | None = None,
    dataset_size: int | None = None,
) -> tuple[Schedule, BatchSchedule]:
    """``(lr_schedule', batch_schedule)``: grow the batch where ``lr_schedule`` decays.

    Both are functions of the epoch. Without a cap the new LR stays at ``lr_schedule(0)``
    (up to rounding the batch to an integer) while the batch grows by the factors the LR
    would have been divided by; with ``max_batch`` (default ``dataset_size // 10`` when
    ``dataset_size`` is given) the batch stops there and the LR decays by the remaining
    factor (Smith et al. 2018's hybrid).
    In both cases ``lr'(e) / B(e) = lr_schedule(e) / batch_size``.
    """
    batch_size = _checks.integer("batch_size", batch_size, 1)
    if max_batch is None and dataset_size is not None:
        n = _checks.integer("dataset_size", dataset_size, batch_size)
        max_batch = max(n // 10, batch_size)
    batches = IncreaseBatch(lr_schedule, batch_size, max_batch)
    return BatchCompensatedLR(lr_schedule, batches, batch_size), batches


class EpochClock:
    """Optimizer steps against (fractional) epochs when epochs differ in length.

    ``steps_in_epoch(e)`` is the number of optimizer steps of epoch ``e`` (from 0; at least
    1), e.g. fewer as a batch-size schedule grows the batch. Epoch ``e`` starts at step
    ``S(e) = steps_in_epoch(0) + ... + steps_in_epoch(e - 1)``, and step ``S(e) + k`` is at
    epoch ``e + k / steps_in_epoch(e)``. The epochs' starts are summed once, as far as
    asked for, so the clock stays a pure function of its argument.
    """

    def __init__(self, steps_in_epoch: StepFn) -> None:
        self.steps_in_epoch = _callables("steps_in_epoch", steps_in_epoch)[0]
        self._starts = [0]  # S(0), S(1), ... as far as computed

    def length(self, epoch: int) -> int:
        """The steps of ``epoch``."""
        n = self.steps_in_epoch(epoch)
        return _checks.integer(f"steps_in_epoch({epoch})", n, 1)

    def start(self, epoch: int) -> int:
        """``S(epoch)``: the steps taken before ``epoch``."""
        while len(self._starts) <= epoch:
            self._starts.append(self._starts[-1] + self.length(len(self._starts) - 1))
        return self._starts[epoch]

    def epoch(self, step: Any) -> float:
        """The fractional epoch at optimizer step ``step``."""
        t = _checks.step_value(step)
        while self._starts[-1] <= t:
            self.start(len(self._starts))
        e = bisect_right(self._starts, t) - 1
        return e + (t - self._starts[e]) / self.length(e)

    def step(self, epoch: Any) -> float:
        """The (fractional) optimizer step at fractional epoch ``epoch``: exact at whole
        epochs, and rounded to 9 decimals in between so that a step a schedule counts to
        is not missed by a rounding error."""
        t = _checks.step_value(epoch, "epoch")
        e = math.floor(t)
        return round(self.start(e) + (t - e) * self.length(e), 9)


class OnSteps(Schedule):
    """``schedule(clock.epoch(t))``: a schedule of the (fractional) epoch, read at
    optimizer step ``t`` (:class:`EpochClock`); updated every step."""

    def __init__(self, schedule: StepFn, clock: EpochClock) -> None:
        self.schedule = _callables("schedule", schedule)[0]
        self.clock = clock

    def _value(self, t: Any, ops: type) -> Any:
        return self.schedule(self.clock.epoch(t))


class OnEpochs(Schedule):
    """``schedule(clock.step(e))``: a schedule of the optimizer step, read at (fractional)
    epoch ``e`` of the run whose epochs ``clock`` counts."""

    def __init__(self, schedule: StepFn, clock: EpochClock) -> None:
        self.schedule = _callables("schedule", schedule)[0]
        self.clock = clock

    def _value(self, t: Any, ops: type) -> Any:
        return self.schedule(self.clock.step(t))
