"""A penalty whose factor follows the training clock: switched on late, or scaled by a
schedule.

The factor at optimizer step ``t`` (0-based: the step being computed) of epoch ``e``
(0-based) is::

    c(t, e) = 0                          if t < start_step or e < start_epoch
    c(t, e) = schedule(t)                otherwise (1 when no schedule is given)

and the term added to the loss is ``c(t, e) * penalty()``. While ``c = 0`` the penalty
is not computed at all and a zero with no graph is returned, so the run is bit for bit
the unregularized one until the switch. "L1 switched on late" is
``ScheduledPenalty(l1(model, lam), start_epoch=E)``: the first ``E`` epochs fit the data
alone, then the penalty prunes. ``schedule`` may be any ``step -> value`` function of
:mod:`optimlab.schedules` (a warmup of the penalty, say).

The clock is the trainer's (``trainer.step``, ``trainer.epoch``), read when the penalty is
evaluated, so a resumed run switches at the same step; the object is therefore also a
trainer callback and must be among the run's callbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from optimlab.errors import OptimlabError
from optimlab.train.callback import Callback


def check_start(name: str, value: Any) -> int | None:
    """``value`` as a start step or epoch (an int >= 0) or None; a one-line error otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OptimlabError(f"invalid {name}: {value!r}; valid: an integer >= 0")
    return value


class Clock:
    """The factor ``c(t, e)`` above, read from a trainer once one is attached."""

    def __init__(
        self,
        *,
        start_step: int | None = None,
        start_epoch: int | None = None,
        schedule: Callable[[int], float] | None = None,
    ) -> None:
        self.start_step = check_start("start_step", start_step)
        self.start_epoch = check_start("start_epoch", start_epoch)
        self.schedule = schedule
        self.trainer: Any = None

    def factor(self) -> float:
        """``c(t, e)`` at the trainer's current step and epoch."""
        if self.trainer is None:
            if self.start_step is None and self.start_epoch is None and self.schedule is None:
                return 1.0
            raise OptimlabError(
                "a scheduled penalty reads the trainer's step; pass it in the trainer's callbacks"
            )
        step, epoch = int(self.trainer.step), int(self.trainer.epoch)
        if self.start_step is not None and step < self.start_step:
            return 0.0
        if self.start_epoch is not None and epoch < self.start_epoch:
            return 0.0
        return 1.0 if self.schedule is None else float(self.schedule(step))

    def __repr__(self) -> str:
        starts = (("start_step", self.start_step), ("start_epoch", self.start_epoch))
        parts = [f"{k}={v}" for k, v in starts if v is not None]
        if self.schedule is not None:
            parts.append(f"schedule={self.schedule!r}")
        return ", ".join(parts)


class ScheduledPenalty(Callback):
    """``c(t, e) * penalty()`` with the factor of the module docstring; a trainer callback."""

    def __init__(
        self,
        penalty: Callable[[], Tensor],
        *,
        start_step: int | None = None,
        start_epoch: int | None = None,
        schedule: Callable[[int], float] | None = None,
    ) -> None:
        super().__init__()
        self.penalty = penalty
        self.clock = Clock(start_step=start_step, start_epoch=start_epoch, schedule=schedule)

    def set_trainer(self, trainer: Any) -> None:
        super().set_trainer(trainer)
        self.clock.trainer = trainer

    def __call__(self) -> Tensor:
        c = self.clock.factor()
        if c == 0.0:
            return torch.zeros(())  # no graph: the gradient is the data's alone
        value = self.penalty()
        return value if c == 1.0 else c * value

    def __repr__(self) -> str:
        return f"ScheduledPenalty({self.penalty!r}, {self.clock!r})"
