"""Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization"), AMSGrad
(Reddi, Kale & Kumar 2018, "On the Convergence of Adam and Beyond") and AdamW
(Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization").

The rule is ``ScaleByAdam`` (its docstring has the equations); ``Adam`` chains it
after coupled L2 decay, ``AdamW`` before decoupled decay. TF/Keras' "epsilon hat"
form ``lr_t * m / (sqrt(v) + eps_hat)`` with ``lr_t = lr * sqrt(1 - b2^t)/(1 - b1^t)``
equals ``eps = eps_hat / sqrt(1 - b2^t)``.

``bias_correction=False`` gives the form lecture 002 writes, without the corrections:
``m <- b1 m + (1 - b1) g; s <- b2 s + (1 - b2) g^2; w <- w - lr m / (sqrt(s) + eps)``.
Started from zero, ``m`` and ``s`` are then too small early on, by ``1 - b1^t`` and
``1 - b2^t``: the first steps are ``(1 - b1)/sqrt(1 - b2)`` (about 3.2 with the default
betas) times ``lr * sign(g)`` rather than ``lr * sign(g)``. The default, with the
corrections, is the paper's and torch's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from optimlab.errors import OptimlabError, check_range
from optimlab.optim.adaptive import check_betas, debiased, denominator
from optimlab.optim.base import ChainOptimizer
from optimlab.optim.decay import AddWeightDecay, DecoupledWeightDecay
from optimlab.optim.scale import ScaleByLearningRate
from optimlab.optim.transform import Hyper, Transform, buffer, step_of


class ScaleByAdam(Transform):
    """Adam's direction: the bias-corrected mean of the updates over the root of
    their bias-corrected mean square.

    .. code-block:: text

        m <- b1 * m + (1 - b1) * u
        v <- b2 * v + (1 - b2) * u^2
        v <- v_max <- max(v_max, v)                         (amsgrad only)
        u <- (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t) + eps_root) + eps)
        u <- m / (sqrt(v + eps_root) + eps)                 (bias_correction off)

    Hyperparameters:
        betas: ``(b1, b2)``, each in [0, 1) (default (0.9, 0.999)).
        eps: ``eps`` >= 0, outside the root (default 1e-8), as in the paper and torch.
        eps_root: ``eps_root`` >= 0, inside the root (default 0), as in optax; useful
            when differentiating through the update.
        amsgrad: divide by the running maximum ``v_max`` of ``v`` (default False).
        bias_correction: divide ``m`` and ``v`` by ``1 - b^t`` (default True, the paper's
            and torch's); off, the uncorrected form of lecture 002.

    State:
        exp_avg: ``m``.
        exp_avg_sq: ``v``.
        max_exp_avg_sq: ``v_max`` (amsgrad only).

    References:
        Kingma & Ba 2015; Reddi, Kale & Kumar 2018; torch.optim.Adam.
    """

    defaults = {
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "eps_root": 0.0,
        "amsgrad": False,
        "bias_correction": True,
    }
    state_keys = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def validate(self, hp: Hyper) -> None:
        check_betas(hp)
        check_range("eps", float(hp["eps"]), 0.0)
        check_range("eps_root", float(hp["eps_root"]), 0.0)
        if not isinstance(hp["bias_correction"], bool):
            raise OptimlabError(
                f"invalid bias_correction: {hp['bias_correction']!r}; expected True or False"
            )

    def update_one(self, g: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        b1, b2 = hp["betas"]
        t = step_of(state)
        m = buffer(state, "exp_avg", p)
        v = buffer(state, "exp_avg_sq", p)
        m.lerp_(g, 1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        if hp["amsgrad"]:
            v = torch.maximum(buffer(state, "max_exp_avg_sq", p), v, out=state["max_exp_avg_sq"])
        if not hp["bias_correction"]:
            return m / denominator(v, hp["eps"], hp["eps_root"])
        return debiased(m, b1, t) / denominator(debiased(v, b2, t), hp["eps"], hp["eps_root"])


class Adam(ChainOptimizer):
    """Adam: momentum on the gradient, scaled by a running RMS, both bias-corrected.

    .. code-block:: text

        input: lr, betas = (b1, b2), eps (outside the root), eps_root (inside),
               weight_decay (coupled L2), amsgrad, bias_correction
        for t = 1, 2, ...:
            g <- grad + weight_decay * w
            m <- b1 m + (1 - b1) g
            v <- b2 v + (1 - b2) g^2
            if amsgrad: v_max <- max(v_max, v);  v <- v_max
            w <- w - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t) + eps_root) + eps)
            (bias_correction=False: w <- w - lr * m / (sqrt(v + eps_root) + eps))
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        eps_root: float = 0.0,
        bias_correction: bool = True,
        **options: Any,
    ) -> None:
        hp = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            eps_root=eps_root,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            bias_correction=bias_correction,
        )
        super().__init__(params, self.chain(), hp, **options)

    @staticmethod
    def chain() -> list[Transform]:
        return [AddWeightDecay(), ScaleByAdam(), ScaleByLearningRate()]


class AdamW(Adam):
    """AdamW: Adam with weight decay decoupled from the adaptive step.

    .. code-block:: text

        input: lr, betas, eps, eps_root, weight_decay (decoupled), amsgrad, bias_correction
        for t = 1, 2, ...:
            u <- Adam direction of grad (as in ``Adam``, without L2)
            w <- w - lr * u - lr * weight_decay * w
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        eps_root: float = 0.0,
        bias_correction: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            eps_root=eps_root,
            bias_correction=bias_correction,
            **options,
        )

    @staticmethod
    def chain() -> list[Transform]:
        return [ScaleByAdam(), ScaleByLearningRate(), DecoupledWeightDecay()]
