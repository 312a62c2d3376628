"""Lookahead (Zhang, Lucas, Hinton & Ba 2019, "Lookahead Optimizer: k steps forward, 1
step back"), in the pytorch-optimizer package's form: ``Lookahead``.

Any optimizer takes ``k`` fast steps; then the slow weights move a fraction ``alpha`` of
the way to the fast ones, and the fast weights restart from there. The slow weights are
the wrapper's own state (``wrapper_state``), saved with the base's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from numbers import Integral
from typing import Any

import torch

from optimlab.errors import OptimlabError, check_range
from optimlab.optim.wrapper import Base, WrapperOptimizer

PULLBACK = ("none", "reset", "pullback")


class Lookahead(WrapperOptimizer):
    """Lookahead: every ``k`` steps of the base optimizer, interpolate towards slow weights.

    .. code-block:: text

        input: a base optimizer, k, alpha, pullback_momentum
        phi <- w                                  (slow weights, at a parameter's first step)
        for t = 1, 2, ...:
            w <- base step of w
            if t is a multiple of k:               (counted per param group)
                w <- phi + alpha (w - phi);  phi <- w
                momentum buffer b (pullback_momentum):
                    "none":     kept
                    "reset":    b <- 0
                    "pullback": b <- b_slow + alpha (b - b_slow);  b_slow <- b

    Args:
        params: the optimizer to wrap, or parameters / param groups for ``base``.
        base: the base optimizer's registry name or class (default "adam").
        k: fast steps per slow step, >= 1 (default 5, the paper's and the reference's).
        alpha: the slow step's fraction in [0, 1] (default 0.5).
        pullback_momentum: what happens to a ``momentum_buffer`` (SGD's) at a slow step
            (default "none").
        **base_hyperparameters: the base's (``lr``, ``betas``, ...), when it is built here.

    The slow weights start at the parameters' values at the first step (the reference
    copies them at construction; the two agree unless the weights change in between,
    as when a checkpoint is loaded into the model after the optimizer was built), and
    only parameters with a gradient take part in a slow step, as in the reference.
    ``state_dict`` holds the base's state, the slow weights and the step counters.

    References:
        Zhang, Lucas, Hinton & Ba 2019, Algorithm 1; pytorch-optimizer 4.1.0, ``Lookahead``.
    """

    def __init__(
        self,
        params: Iterable[Any] | torch.optim.Optimizer,
        base: Base = "adam",
        k: int = 5,
        alpha: float = 0.5,
        pullback_momentum: str = "none",
        **base_hyperparameters: Any,
    ) -> None:
        if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
            raise OptimlabError(f"invalid k: {k!r}; valid: an integer >= 1")
        check_range("alpha", float(alpha), 0.0, 1.0)
        if pullback_momentum not in PULLBACK:
            raise OptimlabError(
                f"invalid pullback_momentum: {pullback_momentum!r}; valid: {', '.join(PULLBACK)}"
            )
        self.k, self.alpha, self.pullback_momentum = int(k), float(alpha), pullback_momentum
        own = {"k": self.k, "alpha": self.alpha, "pullback_momentum": pullback_momentum}
        super().__init__(params, base, base_hyperparameters, own)
        self.counters: list[int] = [0] * len(self.param_groups)
        self._started = False  # whether every parameter has its slow weights

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        self._started = False

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One base step, and a slow step for each group whose count reaches ``k``."""
        if not self._started:
            # every parameter, with a gradient or not: a closure may bring the gradients
            for group in self.param_groups:
                for p in group["params"]:
                    if "slow_params" not in self.wrapper_state[p]:
                        self._start(p)
            self._started = True
        loss = self.base.step(closure) if closure is not None else self.base.step()
        self.counters += [0] * (len(self.param_groups) - len(self.counters))
        for index, group in enumerate(self.param_groups):
            self.counters[index] += 1
            if self.counters[index] >= self.k:
                self.counters[index] = 0
                self._slow_step(group)
        return loss

    def _start(self, p: torch.Tensor) -> None:
        state = self.wrapper_state[p]
        state["slow_params"] = p.detach().clone(memory_format=torch.preserve_format)
        if self.pullback_momentum == "pullback":
            state["slow_momentum"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _slow_step(self, group: dict[str, Any]) -> None:
        for p in group["params"]:
            if p.grad is None:
                continue
            own, base = self.wrapper_state[p], self.state[p]
            slow = own["slow_params"]
            p.lerp_(slow, 1 - self.alpha)
            slow.copy_(p)
            if self.pullback_momentum == "pullback":
                buf = base.setdefault("momentum_buffer", torch.zeros_like(p))
                buf.lerp_(own["slow_momentum"], 1 - self.alpha)
                own["slow_momentum"].copy_(buf)
            elif self.pullback_momentum == "reset":
                # in place: the base may hold the buffer as a view (its fast path)
                base.setdefault("momentum_buffer", torch.zeros_like(p)).zero_()

    def extra_state(self) -> dict[str, Any]:
        return {"counters": list(self.counters)}

    def load_extra_state(self, extra: dict[str, Any]) -> None:
        self.counters = list(extra.get("counters", [0] * len(self.param_groups)))
        self._started = False
