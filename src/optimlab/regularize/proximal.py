"""Proximal L1: soft-thresholding after each optimizer step (proximal gradient, ISTA).

For an objective ``f(w) + lam * ||w||_1`` the proximal gradient step (Combettes & Wajs
2005; ISTA, Daubechies, Defrise & De Mol 2004; Beck & Teboulle 2009 section 2) takes
the optimizer's step on ``f`` alone and then applies the proximal operator of
``lr * lam * ||.||_1``, which acts coordinate by coordinate::

    prox(v)_i = argmin_w  (w - v_i)^2 / 2 + lr * lam * |w|
              = sign(v_i) * max(|v_i| - lr * lam, 0)          (soft-thresholding)

Every coordinate with ``|v_i| <= lr * lam`` becomes exactly 0, which the penalty form
(``l1``: the subgradient ``lam * sign(w)`` added to the gradient) never achieves: its
iterates keep jumping across zero by about ``lr * lam``. With plain SGD this is exactly
proximal gradient descent and converges to the lasso solution; after other optimizers
(momentum, Adam) it is the decoupled analogue, as AdamW is for L2 (``lr`` is each param
group's own, read when the step is taken). ``lam`` follows ``optimlab.regularize``'s
convention: the objective is ``loss + lam * sum(|w|)``, the same as ``l1(model, lam)``.

The threshold is applied by an optimizer step post-hook, so it uses the learning rate of
the step just taken (a scheduler moves ``lr`` only afterwards), and it can follow a
:class:`~optimlab.regularize.penalty_schedule.Clock` (switched on late).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from optimlab.errors import OptimlabError, check_range
from optimlab.regularize.penalties import penalized_parameters
from optimlab.regularize.penalty_schedule import Clock
from optimlab.train.callback import Callback


@torch.no_grad()
def soft_threshold_(w: Tensor, threshold: float | Tensor) -> Tensor:
    """``w <- sign(w) * max(|w| - threshold, 0)`` in place; returns ``w``."""
    shrunk = (w.abs() - threshold).clamp_min_(0)
    return w.copy_(shrunk.mul_(w.sign()))


class ProximalL1(Callback):
    """After every optimizer step, soft-threshold ``params`` at ``lr * lam`` (see above).

    ``params`` defaults to the penalized parameters of the trainer's model (weights, not
    biases or normalization layers, as for ``l1``). ``start_step``, ``start_epoch`` and
    ``schedule`` scale ``lam`` as in :mod:`optimlab.regularize.penalty_schedule`.
    """

    def __init__(
        self,
        lam: float,
        params: Iterable[Tensor] | None = None,
        *,
        start_step: int | None = None,
        start_epoch: int | None = None,
        schedule: Callable[[int], float] | None = None,
    ) -> None:
        super().__init__()
        check_range("l1", lam, 0.0)
        self.lam = float(lam)
        self.params = list(params) if params is not None else None
        self.clock = Clock(start_step=start_step, start_epoch=start_epoch, schedule=schedule)
        self._handle: Any = None

    def set_trainer(self, trainer: Any) -> None:
        super().set_trainer(trainer)
        self.clock.trainer = trainer

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.params is None:
            self.params = penalized_parameters(self.trainer.model)
        self.attach(self.trainer.optimizer)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.detach()

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        """Threshold after each ``optimizer.step()`` (done by ``on_train_begin`` in a run)."""
        self.detach()
        self._handle = optimizer.register_step_post_hook(self._after_step)

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _after_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.apply(optimizer)

    def apply(self, optimizer: torch.optim.Optimizer) -> None:
        """One proximal step: soft-threshold each watched parameter at its group's ``lr * lam``."""
        if self.params is None:
            raise OptimlabError(
                "ProximalL1 without params takes the weights of the trainer's model; pass "
                "params= or put it in the trainer's callbacks"
            )
        c = self.clock.factor()
        if c == 0.0 or self.lam == 0.0:
            return
        watched = {id(p) for p in self.params}
        for group in optimizer.param_groups:
            threshold = group["lr"] * (self.lam * c)
            for p in group["params"]:
                if id(p) in watched:
                    soft_threshold_(p, threshold)

    def __repr__(self) -> str:
        return f"ProximalL1(lam={self.lam:g}, {self.clock!r})"
