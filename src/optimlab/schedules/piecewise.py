"""Piecewise-constant schedules: step decay, milestones and the lectures' harmonic rule."""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from optimlab.schedules import _checks
from optimlab.schedules.base import Schedule


class StepDecay(Schedule):
    """``lr * gamma ** floor(t / step_size)``: multiply by ``gamma`` every ``step_size`` steps.

    The closed form of torch's ``StepLR``. With ``step_size`` counted in epochs, wrap it in
    ``PerEpoch`` ("divide by 10 every N epochs", lecture 001).
    """

    tensor_ok = True

    def __init__(self, *, lr: float = 0.1, step_size: int, gamma: float = 0.1) -> None:
        self.lr = _checks.real("lr", lr, 0)
        self.step_size = _checks.integer("step_size", step_size, 1)
        self.gamma = _checks.real("gamma", gamma, 0, low_open=True)

    def _value(self, t: Any, ops: type) -> Any:
        return self.lr * self.gamma ** (t // self.step_size)


class MultiStepDecay(Schedule):
    """``lr * gamma ** k(t)``, ``k(t)`` the number of milestones ``<= t`` (torch's MultiStepLR)."""

    def __init__(self, *, lr: float = 0.1, milestones: tuple[int, ...], gamma: float = 0.1) -> None:
        self.lr = _checks.real("lr", lr, 0)
        self.milestones = _checks.increasing_ints("milestones", milestones, 1)
        self.gamma = _checks.real("gamma", gamma, 0, low_open=True)

    def _value(self, t: Any, ops: type) -> Any:
        return self.lr * self.gamma ** bisect_right(self.milestones, t)


class Harmonic(Schedule):
    """``a / (floor(t / step_size) + c)``: the harmonic schedule of lecture 001.

    E.g. ``a = 0.001, c = 10`` gives 1e-4 for the first ``step_size`` steps, then
    0.001/11, 0.001/12, ... Decays like 1/t, the Robbins-Monro condition
    (sum lr = inf, sum lr^2 < inf) under which SGD converges on convex problems.
    """

    tensor_ok = True

    def __init__(self, *, a: float = 0.001, step_size: int = 1, c: float = 10.0) -> None:
        self.a = _checks.real("a", a, 0, low_open=True)
        self.step_size = _checks.integer("step_size", step_size, 1)
        self.c = _checks.real("c", c, 0, low_open=True)

    def _value(self, t: Any, ops: type) -> Any:
        return self.a / (t // self.step_size + self.c)
