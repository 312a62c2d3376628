"""Stochastic gradient descent, with momentum and Nesterov momentum.

Gradient descent, SGD and mini-batch SGD share one update ``w <- w - lr * g``;
they differ only in how many examples the gradient is computed on, which is the
data loader's business, not the optimizer's.

Two conventions for momentum (see ``optimlab.optim.momentum``):

* ``convention="torch"`` (default, torch.optim.SGD):
  ``b <- mu*b + (1 - dampening)*g;  w <- w - lr*b`` (Nesterov: ``w <- w - lr*(g + mu*b)``)
* ``convention="lecture"``, the velocity form of the lectures (Qian 1999):
  ``v <- mu*v - lr*g;  w <- w + v`` (Nesterov: ``w <- w + mu*v - lr*g``)

Both give the same trajectory while ``lr`` is constant.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from optimlab.errors import OptimlabError
from optimlab.optim.base import ChainOptimizer
from optimlab.optim.decay import AddWeightDecay
from optimlab.optim.momentum import Trace
from optimlab.optim.scale import ScaleByLearningRate

CONVENTIONS = ("torch", "lecture")


class SGD(ChainOptimizer):
    """SGD with optional (Nesterov) momentum, dampening and coupled weight decay.

    .. code-block:: text

        input: lr, momentum (mu), dampening, nesterov, weight_decay (coupled L2)
        for t = 1, 2, ...:
            g <- grad + weight_decay * w
            torch form:   b <- mu b + (1 - dampening) g   (b <- g at t = 1)
                          w <- w - lr * (g + mu b if nesterov else b)
            lecture form: v <- mu v - lr (1 - dampening) g   (v <- -lr g at t = 1)
                          w <- w + (mu v - lr g if nesterov else v)
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        convention: str = "torch",
        **options: Any,
    ) -> None:
        if convention not in CONVENTIONS:
            raise OptimlabError(f"invalid convention: {convention!r}; valid: {CONVENTIONS}")
        self.convention = convention
        hp = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )
        if convention == "torch":
            chain = [AddWeightDecay(), Trace(), ScaleByLearningRate()]
        else:
            chain = [AddWeightDecay(), ScaleByLearningRate(), Trace()]
        super().__init__(params, chain, hp, **options)
