"""Smooth decays: inverse time, exponential, polynomial, linear and cosine."""

from __future__ import annotations

import math
from typing import Any

from optimlab.errors import OptimlabError
from optimlab.schedules import _checks
from optimlab.schedules.base import Schedule


class InverseTimeDecay(Schedule):
    """``lr / (1 + decay_rate * t / decay_steps)`` (Keras ``InverseTimeDecay``).

    With ``decay_steps = 1`` this is the legacy Keras ``SGD(decay=...)`` of the lectures,
    ``lr / (1 + decay * iterations)``. ``staircase`` floors ``t / decay_steps``.
    """

    tensor_ok = True

    def __init__(
        self,
        *,
        lr: float = 0.1,
        decay_rate: float = 1e-3,
        decay_steps: float = 1.0,
        staircase: bool = False,
    ) -> None:
        self.lr = _checks.real("lr", lr, 0)
        self.decay_rate = _checks.real("decay_rate", decay_rate, 0)
        self.decay_steps = _checks.real("decay_steps", decay_steps, 0, low_open=True)
        self.staircase = bool(staircase)

    def _value(self, t: Any, ops: type) -> Any:
        p = t // self.decay_steps if self.staircase else t / self.decay_steps
        return self.lr / (1 + self.decay_rate * p)


class ExponentialDecay(Schedule):
    """``lr * gamma ** (t / decay_steps)``; ``decay_steps = 1`` is torch's ``ExponentialLR``.

    ``gamma > 1`` grows exponentially (the ramp of an LR range test). ``staircase`` floors
    the exponent (Keras ``ExponentialDecay(staircase=True)``).
    """

    tensor_ok = True

    def __init__(
        self,
        *,
        lr: float = 0.1,
        gamma: float = 0.99,
        decay_steps: float = 1.0,
        staircase: bool = False,
    ) -> None:
        self.lr = _checks.real("lr", lr, 0)
        self.gamma = _checks.real("gamma", gamma, 0, low_open=True)
        self.decay_steps = _checks.real("decay_steps", decay_steps, 0, low_open=True)
        self.staircase = bool(staircase)

    def _value(self, t: Any, ops: type) -> Any:
        p = t // self.decay_steps if self.staircase else t / self.decay_steps
        return self.lr * self.gamma**p


class PolynomialDecay(Schedule):
    """``lr * (1 - min(t, total_iters) / total_iters) ** power`` (torch's ``PolynomialLR``).

    Reaches 0 at ``t = total_iters`` and stays there.
    """

    tensor_ok = True

    def __init__(self, *, lr: float = 0.1, total_iters: int = 5, power: float = 1.0) -> None:
        self.lr = _checks.real("lr", lr, 0)
        self.total_iters = _checks.integer("total_iters", total_iters, 1)
        self.power = _checks.real("power", power, 0)

    def _value(self, t: Any, ops: type) -> Any:
        return self.lr * (1.0 - ops.minimum(t, self.total_iters) / self.total_iters) ** self.power


class Linear(Schedule):
    """``lr * (start + (end - start) * min(t, total_iters) / total_iters)`` (torch's ``LinearLR``).

    The factor moves linearly from ``start_factor`` at ``t = 0`` to ``end_factor`` at
    ``t = total_iters`` and stays there; it can rise (warm-up) or fall.
    """

    tensor_ok = True

    def __init__(
        self,
        *,
        lr: float = 0.1,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
    ) -> None:
        self.lr = _checks.real("lr", lr, 0)
        self.start_factor = _checks.real("start_factor", start_factor, 0)
        self.end_factor = _checks.real("end_factor", end_factor, 0)
        self.total_iters = _checks.integer("total_iters", total_iters, 1)

    def _value(self, t: Any, ops: type) -> Any:
        s, e = self.start_factor, self.end_factor
        return self.lr * (s + (e - s) * ops.minimum(t, self.total_iters) / self.total_iters)


class CosineDecay(Schedule):
    """``eta_min + (lr - eta_min) * (1 + cos(pi * t / T_max)) / 2`` (Loshchilov & Hutter 2017).

    The closed form that torch's ``CosineAnnealingLR`` approximates recursively. After
    ``T_max`` the value holds at ``eta_min``; ``periodic=True`` lets the cosine continue
    (rising again), which is what torch's scheduler does past ``T_max``.
    """

    tensor_ok = True

    def __init__(
        self, *, lr: float = 0.1, T_max: int, eta_min: float = 0.0, periodic: bool = False
    ) -> None:
        self.lr = _checks.real("lr", lr, 0)
        self.T_max = _checks.integer("T_max", T_max, 1)
        self.eta_min = _checks.real("eta_min", eta_min, 0)
        if self.eta_min > self.lr:
            raise OptimlabError(f"invalid eta_min: {eta_min!r}; valid range is [0, lr={self.lr:g}]")
        self.periodic = bool(periodic)

    def _value(self, t: Any, ops: type) -> Any:
        if not self.periodic:
            t = ops.minimum(t, self.T_max)
        return self.eta_min + (self.lr - self.eta_min) * (1 + ops.cos(math.pi * t / self.T_max)) / 2
