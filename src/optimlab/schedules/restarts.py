"""Cycles with restarts: SGDR, exponential decay with restarts and snapshot ensembles."""

from __future__ import annotations

import math
from typing import Any

from optimlab.errors import OptimlabError
from optimlab.schedules import _checks
from optimlab.schedules.base import Schedule


class _RestartCycles(Schedule):
    """Cycles of ``T_0, T_0 * T_mult, T_0 * T_mult^2, ...`` steps, in closed form.

    Cycle ``i`` starts at ``S_i = T_0 * (T_mult**i - 1) / (T_mult - 1)`` (``i * T_0``
    when ``T_mult = 1``), so ``T_cur`` (the steps since the cycle's start) and ``T_i``
    follow from ``t`` alone. Subclasses call ``_init_cycles`` and read ``_position``.
    """

    def _init_cycles(self, T_0: Any, T_mult: Any) -> None:
        self.T_0 = _checks.integer("T_0", T_0, 1)
        self.T_mult = _checks.real("T_mult", T_mult, 1)
        if self.T_mult == int(self.T_mult):
            self.T_mult = int(self.T_mult)  # integer cycle starts are then exact

    def cycle_start(self, i: int) -> int | float:
        """The step at which cycle ``i`` (from 0) starts; cycle ``i > 0`` starts at a restart."""
        if self.T_mult == 1:
            return i * self.T_0
        if isinstance(self.T_mult, int):
            return self.T_0 * (self.T_mult**i - 1) // (self.T_mult - 1)
        return self.T_0 * (self.T_mult**i - 1) / (self.T_mult - 1)

    def cycle_of(self, t: float) -> int:
        """The index of the cycle that contains step ``t``."""
        if self.T_mult == 1:
            return int(t // self.T_0)
        # the logarithm gives the index up to rounding; the loops make it exact
        i = int(math.log(t * (self.T_mult - 1) / self.T_0 + 1, self.T_mult))
        while self.cycle_start(i + 1) <= t:
            i += 1
        while i > 0 and self.cycle_start(i) > t:
            i -= 1
        return i

    def restarts(self, until: int) -> list[int]:
        """The steps ``< until`` at which the value jumps back to ``lr``."""
        out, i = [], 1
        while (s := self.cycle_start(i)) < until:
            out.append(math.ceil(s))
            i += 1
        return out

    def _position(self, t: Any) -> tuple[Any, Any]:
        """``(T_cur, T_i)``: the steps since the current cycle's start, and its length."""
        i = self.cycle_of(t)
        return t - self.cycle_start(i), self.T_0 * self.T_mult**i


class WarmRestarts(_RestartCycles):
    """SGDR (Loshchilov & Hutter, ICLR 2017): cosine annealing restarted every cycle.

    ``eta_min + (lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2`` where cycle ``i`` lasts
    ``T_i = T_0 * T_mult**i`` steps and ``T_cur`` counts the steps since its start
    (``_RestartCycles``). The paper counts ``T_cur`` in fractional epochs updated every
    batch: use ``PerEpoch(..., fractional=True)``. Same values as torch's
    ``CosineAnnealingWarmRestarts``.
    """

    def __init__(
        self, *, lr: float = 0.1, T_0: int, T_mult: float = 1, eta_min: float = 0.0
    ) -> None:
        self.lr = _checks.real("lr", lr, 0)
        self._init_cycles(T_0, T_mult)
        self.eta_min = _checks.real("eta_min", eta_min, 0)
        if self.eta_min > self.lr:
            raise OptimlabError(f"invalid eta_min: {eta_min!r}; valid range is [0, lr={self.lr:g}]")

    def _value(self, t: Any, ops: type) -> Any:
        T_cur, T_i = self._position(t)
        return self.eta_min + (self.lr - self.eta_min) * (1 + math.cos(math.pi * T_cur / T_i)) / 2


class ExponentialRestarts(_RestartCycles):
    """Exponential decay with restarts: ``lr * gamma ** T_cur``, back to ``lr`` at each
    restart, on SGDR's cycles of ``T_0, T_0 * T_mult, ...`` steps.

    Lecture 000 draws this curve ("Exponential Decay with Restarts", the third of its
    cyclical schedules, after Smith's triangular ones; it cites Loshchilov & Hutter's
    restarts) without writing its formula. This is that curve in closed form: within a
    cycle the value decays as ``ExponentialDecay`` does (by ``gamma`` per step), and at
    each restart it jumps back to ``lr``.
    """

    def __init__(
        self, *, lr: float = 0.1, T_0: int, T_mult: float = 1, gamma: float = 0.99
    ) -> None:
        self.lr = _checks.real("lr", lr, 0)
        self._init_cycles(T_0, T_mult)
        self.gamma = _checks.real("gamma", gamma, 0, 1, low_open=True)

    def _value(self, t: Any, ops: type) -> Any:
        T_cur, _ = self._position(t)
        return self.lr * self.gamma**T_cur


class SnapshotCycles(Schedule):
    """Snapshot ensembles (Huang et al., ICLR 2017): ``cycles`` equal cosine cycles.

    With ``L = ceil(total_steps / cycles)``: ``lr/2 * (cos(pi * mod(t, L) / L) + 1)`` (the
    paper writes ``mod(t - 1, L)`` with ``t`` from 1). A model is saved at the end of each
    cycle, where the value is lowest (``cycle_ends``); the ensemble averages the softmax
    outputs of the last snapshots. When ``cycles`` does not divide ``total_steps`` the last
    cycle is cut short by the budget.
    """

    tensor_ok = True

    def __init__(self, *, lr: float = 0.1, total_steps: int, cycles: int = 5) -> None:
        self.lr = _checks.real("lr", lr, 0)
        self.total_steps = _checks.integer("total_steps", total_steps, 1)
        self.cycles = _checks.integer("cycles", cycles, 1, self.total_steps)

    @property
    def cycle_length(self) -> int:
        return -(-self.total_steps // self.cycles)

    def cycle_ends(self) -> list[int]:
        """The steps after whose update a snapshot is taken (each cycle's last step)."""
        L = self.cycle_length
        ends = [min(k * L, self.total_steps) - 1 for k in range(1, self.cycles + 1)]
        return sorted(set(ends))

    def is_cycle_end(self, step: int) -> bool:
        return step in self.cycle_ends()

    def _value(self, t: Any, ops: type) -> Any:
        L = self.cycle_length
        return self.lr / 2 * (ops.cos(math.pi * (t % L) / L) + 1)
