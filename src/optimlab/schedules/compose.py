"""Compositions: join schedules at boundaries, multiply them, count in epochs."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Any

from optimlab.errors import OptimlabError
from optimlab.schedules import _checks
from optimlab.schedules.base import Schedule

StepFn = Callable[[Any], Any]


def _callables(name: str, schedules: Any) -> tuple[StepFn, ...]:
    if callable(schedules):
        schedules = (schedules,)
    if isinstance(schedules, str) or not isinstance(schedules, Sequence) or not schedules:
        raise OptimlabError(f"invalid {name}: {schedules!r}; expected a non-empty schedule list")
    for s in schedules:
        if not callable(s):
            raise OptimlabError(f"invalid {name}: {s!r} is not a schedule (a callable of the step)")
    return tuple(schedules)


class Join(Schedule):
    """Schedule ``k`` runs from ``boundaries[k-1]`` (0 for the first) to ``boundaries[k]``.

    Each schedule sees its own local step: at global step ``t`` in segment ``k`` the value
    is ``schedules[k](t - boundaries[k-1])``, so a cosine that follows a warm-up starts at
    its own step 0 (optax's ``join_schedules`` convention; torch's ``SequentialLR`` too).
    """

    def __init__(self, schedules: Sequence[StepFn], boundaries: Sequence[int]) -> None:
        self.schedules = _callables("schedules", schedules)
        self.boundaries = _checks.increasing_ints("boundaries", boundaries, 1)
        if len(self.boundaries) != len(self.schedules) - 1:
            raise OptimlabError(
                f"invalid boundaries: {list(self.boundaries)}; {len(self.schedules)} schedules "
                f"need {len(self.schedules) - 1} boundaries"
            )

    def segment(self, t: float) -> int:
        """The index of the schedule in charge at step ``t``."""
        return bisect_right(self.boundaries, t)

    def _value(self, t: Any, ops: type) -> Any:
        k = self.segment(t)
        start = self.boundaries[k - 1] if k else 0
        return self.schedules[k](t - start)


class Product(Schedule):
    """``prod_k schedules[k](t)``: e.g. a decay envelope times a cyclical shape."""

    tensor_ok = True  # each factor handles a tensor step itself

    def __init__(self, schedules: Sequence[StepFn]) -> None:
        self.schedules = _callables("schedules", schedules)

    def _value(self, t: Any, ops: type) -> Any:
        out = self.schedules[0](t)
        for s in self.schedules[1:]:
            out = out * s(t)
        return out


class Scaled(Schedule):
    """``factor * schedule(t)``: e.g. one schedule shape for several param groups."""

    tensor_ok = True

    def __init__(self, schedule: StepFn, factor: float) -> None:
        self.schedule = _callables("schedule", schedule)[0]
        self.factor = _checks.real("factor", factor)

    def _value(self, t: Any, ops: type) -> Any:
        return self.factor * self.schedule(t)


class PerEpoch(Schedule):
    """A schedule whose unit is the epoch, evaluated at optimizer steps.

    ``schedule(t // steps_per_epoch)`` (changes once per epoch, like torch schedulers
    stepped per epoch), or with ``fractional=True`` ``schedule(t / steps_per_epoch)``
    (SGDR's fractional epoch, updated every batch).
    """

    tensor_ok = True

    def __init__(self, schedule: StepFn, steps_per_epoch: int, fractional: bool = False) -> None:
        self.schedule = _callables("schedule", schedule)[0]
        self.steps_per_epoch = _checks.integer("steps_per_epoch", steps_per_epoch, 1)
        self.fractional = bool(fractional)

    def _value(self, t: Any, ops: type) -> Any:
        n = self.steps_per_epoch
        return self.schedule(t / n if self.fractional else t // n)


def epochs_to_steps(epochs: float, steps_per_epoch: int) -> int:
    """The number of optimizer steps in ``epochs`` epochs (rounded up to whole steps)."""
    epochs = _checks.real("epochs", epochs, 0)
    steps_per_epoch = _checks.integer("steps_per_epoch", steps_per_epoch, 1)
    return math.ceil(round(epochs * steps_per_epoch, 9))


def steps_per_epoch(dataset_size: int, batch_size: int, drop_last: bool = False) -> int:
    """Optimizer steps in one pass over ``dataset_size`` examples in batches of ``batch_size``."""
    n = _checks.integer("dataset_size", dataset_size, 1)
    b = _checks.integer("batch_size", batch_size, 1)
    if drop_last:
        if b > n:
            raise OptimlabError(
                f"invalid batch_size: {b}; with drop_last it must be <= dataset_size={n}"
            )
        return n // b
    return -(-n // b)
