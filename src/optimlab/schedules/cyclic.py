"""Cyclical learning rates and cyclical momentum (Smith, WACV 2017)."""

from __future__ import annotations

from typing import Any

from optimlab.errors import OptimlabError
from optimlab.schedules import _checks
from optimlab.schedules.base import Schedule

MODES = ("triangular", "triangular2", "exp_range")


class _Cycle(Schedule):
    """The shared cycle geometry: a rise of ``step_size_up`` steps, a fall of ``step_size_down``.

    With ``s = step_size_up = step_size_down`` Smith's formulas read
    ``cycle = floor(1 + t / (2s))``, ``x = |t/s - 2 cycle + 1|`` and the position in the
    cycle is ``max(0, 1 - x)``; the asymmetric form below reduces to it (torch's ``CyclicLR``
    arithmetic). The amplitude is scaled by 1 (``triangular``), ``1 / 2**(cycle - 1)``
    (``triangular2``: halved every cycle) or ``gamma**t`` (``exp_range``).
    """

    tensor_ok = True

    def _init_cycle(self, step_size_up: Any, step_size_down: Any, mode: Any, gamma: Any) -> None:
        self.step_size_up = _checks.integer("step_size_up", step_size_up, 1)
        self.step_size_down = (
            None if step_size_down is None else _checks.integer("step_size_down", step_size_down, 1)
        )
        self.mode = _checks.choice("mode", mode, MODES)
        self.gamma = _checks.real("gamma", gamma, 0, 1, low_open=True)

    def _position(self, t: Any, ops: type) -> tuple[Any, Any]:
        """``(cycle, height)``: the cycle number from 1 and the height in [0, 1] within it."""
        up = float(self.step_size_up)
        down = up if self.step_size_down is None else float(self.step_size_down)
        total = up + down
        ratio = up / total
        cycle = ops.floor(1 + t / total)
        x = 1.0 + t / total - cycle
        height = ops.where(x <= ratio, x / ratio, (x - 1) / (ratio - 1))
        return cycle, height

    def _amplitude(self, t: Any, cycle: Any) -> Any:
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (cycle - 1))
        return self.gamma**t


class Cyclic(_Cycle):
    """Cyclical LR between ``base_lr`` and ``max_lr`` (Smith 2017; torch's ``CyclicLR``).

    ``lr = base_lr + (max_lr - base_lr) * height * amplitude``: see ``_Cycle``. Smith
    recommends a step size of 2-10 epochs' worth of iterations and bounds from an LR range
    test.
    """

    def __init__(
        self,
        *,
        base_lr: float = 0.001,
        max_lr: float = 0.006,
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
    ) -> None:
        self.base_lr = _checks.real("base_lr", base_lr, 0)
        self.max_lr = _checks.real("max_lr", max_lr, 0)
        if self.max_lr < self.base_lr:
            raise OptimlabError(f"invalid max_lr: {max_lr!r}; must be >= base_lr={self.base_lr:g}")
        self._init_cycle(step_size_up, step_size_down, mode, gamma)

    def momentum(self, base_momentum: float = 0.8, max_momentum: float = 0.9) -> CyclicMomentum:
        """The momentum schedule that cycles inversely to this one (torch's ``cycle_momentum``)."""
        return CyclicMomentum(
            base_momentum=base_momentum,
            max_momentum=max_momentum,
            step_size_up=self.step_size_up,
            step_size_down=self.step_size_down,
            mode=self.mode,
            gamma=self.gamma,
        )

    def _value(self, t: Any, ops: type) -> Any:
        cycle, height = self._position(t, ops)
        return self.base_lr + (self.max_lr - self.base_lr) * height * self._amplitude(t, cycle)


class CyclicMomentum(_Cycle):
    """Momentum cycled inversely to a cyclical LR: ``max_momentum - (max - base) * height * amp``.

    At the start of a cycle (LR lowest) momentum is ``max_momentum``; at the LR peak it is
    ``base_momentum`` (Smith 2018, "A disciplined approach..."; torch's ``cycle_momentum``).
    """

    def __init__(
        self,
        *,
        base_momentum: float = 0.8,
        max_momentum: float = 0.9,
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
    ) -> None:
        self.base_momentum, self.max_momentum = momentum_bounds(base_momentum, max_momentum)
        self._init_cycle(step_size_up, step_size_down, mode, gamma)

    def _value(self, t: Any, ops: type) -> Any:
        cycle, height = self._position(t, ops)
        span = self.max_momentum - self.base_momentum
        return self.max_momentum - span * height * self._amplitude(t, cycle)


def momentum_bounds(base_momentum: Any, max_momentum: Any) -> tuple[float, float]:
    """Check ``0 <= base_momentum <= max_momentum < 1``."""
    base = _checks.real("base_momentum", base_momentum, 0, 1, high_open=True)
    top = _checks.real("max_momentum", max_momentum, 0, 1, high_open=True)
    if top < base:
        raise OptimlabError(
            f"invalid max_momentum: {max_momentum!r}; must be >= base_momentum={base:g}"
        )
    return base, top
