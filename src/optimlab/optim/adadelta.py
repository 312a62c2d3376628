"""Adadelta (Zeiler 2012, "ADADELTA: An Adaptive Learning Rate Method"):
``ScaleByAdadelta`` and ``Adadelta``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import Tensor

from optimlab.errors import check_range
from optimlab.optim.base import ChainOptimizer
from optimlab.optim.decay import AddWeightDecay
from optimlab.optim.scale import ScaleByLearningRate
from optimlab.optim.transform import Hyper, Transform, buffer


class ScaleByAdadelta(Transform):
    """Adadelta's direction: the update scaled by the ratio of two running RMS, of
    past moves and of updates, so that it has the units of the parameters.

    .. code-block:: text

        s  <- rho * s + (1 - rho) * u^2
        dx <- sqrt(d + eps) / sqrt(s + eps) * u
        d  <- rho * d + (1 - rho) * dx^2
        u  <- dx

    Hyperparameters:
        rho: ``rho`` in [0, 1] (default 0.9).
        eps: ``eps`` >= 0, inside both roots as in the paper and torch (default 1e-6).

    State:
        square_avg: ``s``.
        acc_delta: ``d``.

    The paper has no learning rate: ``lr = 1``, torch's default.

    References:
        Zeiler 2012; torch.optim.Adadelta.
    """

    defaults = {"rho": 0.9, "eps": 1e-6}
    state_keys = ("square_avg", "acc_delta")

    def validate(self, hp: Hyper) -> None:
        check_range("rho", float(hp["rho"]), 0.0, 1.0)
        check_range("eps", float(hp["eps"]), 0.0)

    def update_one(self, g: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        rho, eps = hp["rho"], hp["eps"]
        s = buffer(state, "square_avg", p)
        d = buffer(state, "acc_delta", p)
        s.mul_(rho).addcmul_(g, g, value=1 - rho)
        dx = (d + eps).sqrt() / (s + eps).sqrt() * g
        d.mul_(rho).addcmul_(dx, dx, value=1 - rho)
        return dx


class Adadelta(ChainOptimizer):
    """Adadelta: steps in the units of the parameters, from two running averages.

    .. code-block:: text

        input: lr (1.0 in the paper), rho, eps (inside both roots), weight_decay
        for t = 1, 2, ...:
            g  <- grad + weight_decay * w
            s  <- rho s + (1 - rho) g^2
            dx <- sqrt(d + eps) / sqrt(s + eps) * g
            d  <- rho d + (1 - rho) dx^2
            w  <- w - lr dx
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        **options: Any,
    ) -> None:
        hp = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)
        chain = [AddWeightDecay(), ScaleByAdadelta(), ScaleByLearningRate()]
        super().__init__(params, chain, hp, **options)
