"""RAdam (Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and Beyond"),
in torch.optim.RAdam's form: ``ScaleByRAdam`` and ``RAdam``.

Early on, the second moment is estimated from few gradients and its variance is large;
RAdam takes momentum-SGD steps (bias-corrected ``m``, no division) until the length of
the approximated simple moving average, ``rho_t``, exceeds a threshold, then Adam steps
scaled by the variance rectification ``r_t``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from optimlab.errors import check_range
from optimlab.optim.adaptive import check_betas, debiased
from optimlab.optim.decay import AddWeightDecay, DecoupledWeightDecay
from optimlab.optim.scale import ScaleByLearningRate
from optimlab.optim.transform import Hyper, Transform, buffer, per_step, step_of
from optimlab.optim.variant import ChainVariant


def rectification(rho_t: float | Tensor, rho_inf: float) -> float | Tensor:
    """RAdam's ``r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))``
    (defined for ``rho_t > 4``)."""
    ratio = (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
    if isinstance(ratio, Tensor):
        # compiled, both branches are computed: keep the unused one finite
        return ratio.clamp(min=0).sqrt()
    return ratio**0.5


class ScaleByRAdam(Transform):
    """RAdam's direction: bias-corrected momentum, divided by the root of the second
    moment and rectified once its variance is tractable.

    .. code-block:: text

        m <- b1 * m + (1 - b1) * u
        v <- b2 * v + (1 - b2) * u^2
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 t b2^t / (1 - b2^t)
        if rho_t > threshold:
            r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
            u <- m / (1 - b1^t) * r_t * sqrt(1 - b2^t) / (sqrt(v) + eps)
        else:
            u <- m / (1 - b1^t)

    Hyperparameters:
        betas: ``(b1, b2)``, each in [0, 1) (default (0.9, 0.999), the paper's and torch's).
        eps: ``eps`` >= 0, added to the root of the *uncorrected* ``v`` (default 1e-8),
            torch's placement; it equals ``eps / sqrt(1 - b2^t)`` outside the corrected root.
        rho_threshold: ``threshold`` (default 5, torch's and pytorch-optimizer's; the
            paper's Algorithm 2 uses 4). With the default betas, the first 5 steps
            are momentum-SGD steps.

    State:
        exp_avg: ``m``.
        exp_avg_sq: ``v``.

    References:
        Liu et al. 2020, Algorithm 2; torch.optim.RAdam.
    """

    defaults = {"betas": (0.9, 0.999), "eps": 1e-8, "rho_threshold": 5.0}
    state_keys = ("exp_avg", "exp_avg_sq")

    def validate(self, hp: Hyper) -> None:
        check_betas(hp)
        check_range("eps", float(hp["eps"]), 0.0)
        check_range("rho_threshold", float(hp["rho_threshold"]), 4.0)

    def update_one(self, g: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        b1, b2 = hp["betas"]
        t = step_of(state)
        m = buffer(state, "exp_avg", p)
        v = buffer(state, "exp_avg_sq", p)
        m.lerp_(g, 1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        bc2 = 1 - b2**t
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * t * b2**t / bc2
        m_hat = debiased(m, b1, t)
        threshold = hp["rho_threshold"]
        if not isinstance(rho_t, Tensor):
            if rho_t <= threshold:
                return m_hat
            return m_hat * (rectification(rho_t, rho_inf) * bc2**0.5) / (v.sqrt() + hp["eps"])
        # compiled: the step is a tensor, so is the branch
        scale = per_step(rectification(rho_t, rho_inf) * bc2**0.5, m)
        adaptive = m_hat * scale / (v.sqrt() + hp["eps"])
        return torch.where(rho_t > threshold, adaptive, m_hat)


class RAdam(ChainVariant):
    """RAdam: Adam with the variance of its adaptive learning rate rectified.

    .. code-block:: text

        input: lr, betas = (b1, b2), eps, weight_decay, decoupled_weight_decay,
               rho_threshold
        for t = 1, 2, ...:
            g <- grad + weight_decay * w          (coupled, the default)
            m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
            rho_t <- rho_inf - 2 t b2^t / (1 - b2^t),  rho_inf = 2 / (1 - b2) - 1
            d <- m/(1 - b1^t) * r_t sqrt(1 - b2^t)/(sqrt(v) + eps)   if rho_t > rho_threshold
            d <- m/(1 - b1^t)                                      otherwise
            w <- w - lr * d
            w <- w - lr * weight_decay * w        (decoupled_weight_decay=True instead)

    Defaults are torch.optim.RAdam's (lr 1e-3, betas (0.9, 0.999), eps 1e-8, no weight
    decay); ``decoupled_weight_decay`` is fixed per optimizer (it moves the decay in the
    chain, see ``optimlab.optim.variant``).
    """

    structural = ("decoupled_weight_decay",)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        *,
        rho_threshold: float = 5.0,
        **options: Any,
    ) -> None:
        hp = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            decoupled_weight_decay=bool(decoupled_weight_decay),
            rho_threshold=rho_threshold,
        )
        if decoupled_weight_decay:
            chain = [ScaleByRAdam(), ScaleByLearningRate(), DecoupledWeightDecay()]
        else:
            chain = [AddWeightDecay(), ScaleByRAdam(), ScaleByLearningRate()]
        super().__init__(params, chain, hp, **options)
