"""AdaMax (Kingma & Ba 2015, section 7.1), Adam with the infinity norm:
``ScaleByAdamax`` and ``Adamax``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from optimlab.errors import OptimlabError, check_range
from optimlab.optim.adaptive import check_betas, debiased
from optimlab.optim.base import ChainOptimizer
from optimlab.optim.decay import AddWeightDecay
from optimlab.optim.scale import ScaleByLearningRate
from optimlab.optim.transform import Hyper, Transform, buffer, step_of

EPS_MODES = ("max", "denominator")


class ScaleByAdamax(Transform):
    """AdaMax's direction: the bias-corrected mean of the updates over an
    exponentially weighted maximum of their magnitudes.

    .. code-block:: text

        m <- b1 * m + (1 - b1) * u
        n <- max(b2 * n, |u| + eps);   u <- m / (1 - b1^t) / n            (eps_mode="max")
        n <- max(b2 * n, |u|);         u <- m / (1 - b1^t) / (n + eps)    ("denominator")

    Hyperparameters:
        betas: ``(b1, b2)``, each in [0, 1) (default (0.9, 0.999)).
        eps: ``eps`` >= 0 (default 1e-8).
        eps_mode: where ``eps`` goes: ``"max"`` (torch's, the default) or
            ``"denominator"`` (the lectures' table).

    State:
        exp_avg: ``m``.
        exp_inf: ``n``.

    The paper has no epsilon.

    References:
        Kingma & Ba 2015, section 7.1; torch.optim.Adamax.
    """

    defaults = {"betas": (0.9, 0.999), "eps": 1e-8, "eps_mode": "max"}
    state_keys = ("exp_avg", "exp_inf")

    def validate(self, hp: Hyper) -> None:
        check_betas(hp)
        check_range("eps", float(hp["eps"]), 0.0)
        if hp["eps_mode"] not in EPS_MODES:
            raise OptimlabError(f"invalid eps_mode: {hp['eps_mode']!r}; valid: {EPS_MODES}")

    def update_one(self, g: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        b1, b2 = hp["betas"]
        eps, in_max = hp["eps"], hp["eps_mode"] == "max"
        m = buffer(state, "exp_avg", p)
        u = buffer(state, "exp_inf", p)
        m.lerp_(g, 1 - b1)
        torch.maximum(u.mul_(b2), g.abs() + eps if in_max else g.abs(), out=u)
        return debiased(m, b1, step_of(state)) / (u if in_max else u + eps)


class Adamax(ChainOptimizer):
    """AdaMax: Adam's second moment replaced by an exponentially weighted max of ``|g|``.

    .. code-block:: text

        input: lr, betas = (b1, b2), eps, eps_mode ("max" | "denominator"), weight_decay
        for t = 1, 2, ...:
            g <- grad + weight_decay * w
            m <- b1 m + (1 - b1) g
            u <- max(b2 u, |g| + eps)                    (eps_mode="max")
            w <- w - lr / (1 - b1^t) * m / u
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        eps_mode: str = "max",
        **options: Any,
    ) -> None:
        hp = dict(lr=lr, betas=betas, eps=eps, eps_mode=eps_mode, weight_decay=weight_decay)
        chain = [AddWeightDecay(), ScaleByAdamax(), ScaleByLearningRate()]
        super().__init__(params, chain, hp, **options)
