"""NAdam (Dozat 2016, "Incorporating Nesterov Momentum into Adam"), in
torch.optim.NAdam's form: ``ScaleByNAdam`` and ``NAdam``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from optimlab.errors import check_range
from optimlab.optim.adaptive import check_betas, debiased, denominator
from optimlab.optim.base import ChainOptimizer
from optimlab.optim.decay import AddWeightDecay
from optimlab.optim.scale import ScaleByLearningRate
from optimlab.optim.transform import Hyper, Transform, buffer, per_step, scalar_dtype, step_of


class ScaleByNAdam(Transform):
    """NAdam's direction: Adam's, with a Nesterov look-ahead on the mean and a
    momentum coefficient that warms up.

    .. code-block:: text

        mu_t = b1 * (1 - 0.5 * 0.96^(t * psi));   P_t = mu_1 * ... * mu_t
        m <- b1 * m + (1 - b1) * u
        v <- b2 * v + (1 - b2) * u^2
        u <- [(1 - mu_t) / (1 - P_t) * u + mu_{t+1} / (1 - P_t * mu_{t+1}) * m]
             / (sqrt(v / (1 - b2^t)) + eps)

    Hyperparameters:
        betas: ``(b1, b2)``, each in [0, 1) (default (0.9, 0.999)).
        eps: ``eps`` >= 0, outside the root (default 1e-8).
        momentum_decay: ``psi`` >= 0 (default 4e-3, the paper's).

    State:
        exp_avg: ``m``.
        exp_avg_sq: ``v``.
        mu_product: ``P_t``, a 0-d tensor in torch's scalar dtype, so that both
            round alike.

    References:
        Dozat 2016; torch.optim.NAdam.
    """

    defaults = {"betas": (0.9, 0.999), "eps": 1e-8, "momentum_decay": 4e-3}
    state_keys = ("exp_avg", "exp_avg_sq", "mu_product")

    def validate(self, hp: Hyper) -> None:
        check_betas(hp)
        check_range("eps", float(hp["eps"]), 0.0)
        check_range("momentum_decay", float(hp["momentum_decay"]), 0.0)

    def update_one(self, g: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        b1, b2 = hp["betas"]
        t, psi = step_of(state), hp["momentum_decay"]
        mu = b1 * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
        if "mu_product" not in state:
            state["mu_product"] = torch.ones((), dtype=scalar_dtype(), device=p.device)
        state["mu_product"] *= mu
        P = state["mu_product"]
        P = P if torch.compiler.is_compiling() else P.item()
        m = buffer(state, "exp_avg", p)
        v = buffer(state, "exp_avg_sq", p)
        m.lerp_(g, 1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = denominator(debiased(v, b2, t), hp["eps"])
        c_g, c_m = per_step((1 - mu) / (1 - P), g), per_step(mu_next / (1 - P * mu_next), m)
        return (c_g * g + c_m * m) / denom


class NAdam(ChainOptimizer):
    """NAdam: Adam with Nesterov momentum and Dozat's momentum warm-up schedule.

    .. code-block:: text

        input: lr, betas = (b1, b2), eps, momentum_decay (psi), weight_decay (coupled L2)
        for t = 1, 2, ...:
            g <- grad + weight_decay * w
            mu_t <- b1 (1 - 0.5 * 0.96^(t psi));  P_t <- P_{t-1} mu_t
            m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
            w <- w - lr [(1-mu_t)/(1-P_t) g + mu_{t+1}/(1-P_t mu_{t+1}) m]
                        / (sqrt(v/(1-b2^t)) + eps)
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        **options: Any,
    ) -> None:
        hp = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay
        )
        chain = [AddWeightDecay(), ScaleByNAdam(), ScaleByLearningRate()]
        super().__init__(params, chain, hp, **options)
