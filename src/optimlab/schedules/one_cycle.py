"""The one-cycle policy and its cyclical momentum (Smith & Topin 2017, "Super-convergence")."""

from __future__ import annotations

import math
from typing import Any

from optimlab.errors import OptimlabError
from optimlab.schedules import _checks
from optimlab.schedules.base import Schedule
from optimlab.schedules.cyclic import momentum_bounds

STRATEGIES = ("cos", "linear")


def _anneal(strategy: str, start: float, end: float, pct: float) -> float:
    """From ``start`` (pct = 0) to ``end`` (pct = 1), by half a cosine or a straight line."""
    if strategy == "cos":
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
    return (end - start) * pct + start


class _OneCycleShape(Schedule):
    """The phase geometry shared by the LR and the momentum (torch's ``OneCycleLR``).

    Two phases (fastai's default): rise over the first ``pct_start * total_steps`` steps,
    then anneal to the end. ``three_phase`` (the paper's form): rise, fall back
    symmetrically, then a short final anneal. Phase ``k`` ends at step ``e_k``: ``p T - 1``,
    then (three phases) ``2 p T - 2``, and always ``T - 1``; within a phase ``pct`` runs
    from 0 to 1. Past ``T - 1`` the value holds at its final value.
    """

    def _init_shape(
        self, total_steps: Any, pct_start: Any, anneal_strategy: Any, three_phase: Any
    ) -> None:
        self.total_steps = _checks.integer("total_steps", total_steps, 2)
        self.pct_start = _checks.real("pct_start", pct_start, 0, 1, low_open=True, high_open=True)
        self.anneal_strategy = _checks.choice("anneal_strategy", anneal_strategy, STRATEGIES)
        self.three_phase = bool(three_phase)
        ends = self._phase_ends()
        starts = [0.0, *ends[:-1]]
        if any(e <= s for s, e in zip(starts, ends, strict=True)):
            raise OptimlabError(
                f"invalid pct_start: {pct_start!r}; with total_steps={self.total_steps} "
                "a phase would be empty (need pct_start * total_steps > 1"
                + (" and pct_start < (total_steps + 1) / (2 total_steps))" if three_phase else ")")
            )

    def _phase_ends(self) -> list[float]:
        T, p = self.total_steps, self.pct_start
        if self.three_phase:
            return [float(p * T) - 1, float(2 * p * T) - 2, T - 1]
        return [float(p * T) - 1, T - 1]

    def _phase(self, t: float) -> tuple[int, float]:
        """``(phase index, pct within the phase)`` at step ``t``."""
        t = min(t, self.total_steps - 1)
        ends = self._phase_ends()
        start = 0.0
        for k, end in enumerate(ends):
            if t <= end or k == len(ends) - 1:
                return k, (t - start) / (end - start)
            start = end
        raise AssertionError("unreachable")

    def _interpolate(self, t: float, points: list[float]) -> float:
        """Anneal between ``points[k]`` and ``points[k + 1]`` in phase ``k``."""
        k, pct = self._phase(t)
        return _anneal(self.anneal_strategy, points[k], points[k + 1], pct)


class OneCycle(_OneCycleShape):
    """One-cycle LR: from ``max_lr / div_factor`` up to ``max_lr``, then far below the start.

    The start is ``initial_lr = max_lr / div_factor``, the end ``initial_lr /
    final_div_factor``. Same values as torch's ``OneCycleLR`` for ``t < total_steps``;
    ``momentum()`` gives the matching cyclical momentum.
    """

    def __init__(
        self,
        *,
        max_lr: float = 0.1,
        total_steps: int,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
    ) -> None:
        self.max_lr = _checks.real("max_lr", max_lr, 0, low_open=True)
        self.div_factor = _checks.real("div_factor", div_factor, 1)
        self.final_div_factor = _checks.real("final_div_factor", final_div_factor, 1)
        self._init_shape(total_steps, pct_start, anneal_strategy, three_phase)

    @property
    def initial_lr(self) -> float:
        return self.max_lr / self.div_factor

    @property
    def min_lr(self) -> float:
        return self.initial_lr / self.final_div_factor

    def momentum(self, base_momentum: float = 0.85, max_momentum: float = 0.95) -> OneCycleMomentum:
        """The momentum schedule that moves inversely to this LR (torch's ``cycle_momentum``)."""
        return OneCycleMomentum(
            base_momentum=base_momentum,
            max_momentum=max_momentum,
            total_steps=self.total_steps,
            pct_start=self.pct_start,
            anneal_strategy=self.anneal_strategy,
            three_phase=self.three_phase,
        )

    def _value(self, t: Any, ops: type) -> Any:
        lo, hi, end = self.initial_lr, self.max_lr, self.min_lr
        return self._interpolate(t, [lo, hi, lo, end] if self.three_phase else [lo, hi, end])


class OneCycleMomentum(_OneCycleShape):
    """One-cycle momentum: ``max_momentum`` down to ``base_momentum`` at the LR peak, then back."""

    def __init__(
        self,
        *,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
        total_steps: int,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        three_phase: bool = False,
    ) -> None:
        self.base_momentum, self.max_momentum = momentum_bounds(base_momentum, max_momentum)
        self._init_shape(total_steps, pct_start, anneal_strategy, three_phase)

    def _value(self, t: Any, ops: type) -> Any:
        lo, hi = self.base_momentum, self.max_momentum
        return self._interpolate(t, [hi, lo, hi, hi] if self.three_phase else [hi, lo, hi])
