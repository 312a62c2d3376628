"""Linear warm-up, on its own or in front of another schedule (Goyal et al. 2017)."""

from __future__ import annotations

from optimlab.errors import OptimlabError
from optimlab.schedules import _checks
from optimlab.schedules.compose import Join, StepFn
from optimlab.schedules.decay import CosineDecay, Linear


class LinearWarmup(Linear):
    """``lr * (s + (1 - s) * min(t, warmup_steps) / warmup_steps)``, ``s = start_factor``.

    Rises linearly from ``start_factor * lr`` at step 0 to ``lr`` at ``warmup_steps``, then
    holds ("gradual warm-up", Goyal et al. 2017). ``start_factor = 0`` spends step 0 at lr 0.
    """

    def __init__(
        self, *, lr: float = 0.1, warmup_steps: int = 5, start_factor: float = 0.0
    ) -> None:
        self.warmup_steps = _checks.integer("warmup_steps", warmup_steps, 1)
        super().__init__(
            lr=lr, start_factor=start_factor, end_factor=1.0, total_iters=self.warmup_steps
        )


def with_warmup(schedule: StepFn, warmup_steps: int, start_factor: float = 0.0) -> Join:
    """A linear warm-up to ``schedule(0)`` over ``warmup_steps``, then ``schedule`` (own steps)."""
    warmup_steps = _checks.integer("warmup_steps", warmup_steps, 1)
    peak = schedule(0)
    ramp = LinearWarmup(lr=peak, warmup_steps=warmup_steps, start_factor=start_factor)
    return Join([ramp, schedule], [warmup_steps])


def warmup_cosine(
    *,
    lr: float = 0.1,
    total_steps: int,
    warmup_steps: int = 5,
    eta_min: float = 0.0,
    start_factor: float = 0.0,
) -> Join:
    """Linear warm-up over ``warmup_steps``, then cosine decay to ``eta_min`` at ``total_steps``."""
    total_steps = _checks.integer("total_steps", total_steps, 2)
    warmup_steps = _checks.integer("warmup_steps", warmup_steps, 1)
    if warmup_steps >= total_steps:
        raise OptimlabError(
            f"invalid warmup_steps: {warmup_steps}; valid range is [1, total_steps={total_steps})"
        )
    cosine = CosineDecay(lr=lr, T_max=total_steps - warmup_steps, eta_min=eta_min)
    return with_warmup(cosine, warmup_steps, start_factor)
