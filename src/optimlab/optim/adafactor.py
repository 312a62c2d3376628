"""Adafactor (Shazeer & Stern 2018, "Adafactor: Adaptive Learning Rates with Sublinear
Memory Cost"), in torch.optim.Adafactor's form: ``ScaleByAdafactor`` and ``Adafactor``.

For a tensor of two or more dimensions the second moment is kept factored: one running
mean of ``g^2`` per row and one per column of its last two dimensions, whose outer
product, over their mean, estimates every entry (memory ``r + c`` instead of ``r c``).
The step is relative to the size of the weights, ``rho_t * RMS(w)``, with
``rho_t = min(lr, 1/sqrt(t))``, and updates whose RMS exceeds ``d`` are scaled down.
No first moment (torch's choice; the paper's ``beta1`` is optional and off in its
recommended setting).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from optimlab.errors import OptimlabError, check_range
from optimlab.optim.base import ChainOptimizer
from optimlab.optim.decay import DecoupledWeightDecay
from optimlab.optim.scale import ScaleByLearningRate, check_lr
from optimlab.optim.transform import Hyper, Transform, buffer, learning_rate, step_of


def _rms(x: Tensor) -> Tensor:
    return torch.linalg.vector_norm(x) / math.sqrt(x.numel())


class ScaleByAdafactor(Transform):
    """Adafactor's move: the update over the root of a factored second moment, clipped by
    its RMS and scaled by a step size relative to the weights.

    .. code-block:: text

        1 - b2_t = t^c
        2-D and more (the last two dimensions factored, the others batched):
            R <- (1 - (1 - b2_t)) R + (1 - b2_t) mean_cols(u^2)
            C <- (1 - (1 - b2_t)) C + (1 - b2_t) mean_rows(u^2)
            V = R C / max(mean(R), eps1)
        0-D and 1-D:
            V <- (1 - (1 - b2_t)) V + (1 - b2_t) u^2
        U = u / sqrt(max(V, eps1^2))
        u <- -max(eps2, RMS(w)) * min(lr_t, 1/sqrt(t)) * U / max(1, RMS(U) / d)

    This transform returns the parameter move (the sign and the step size are its own:
    no ``ScaleByLearningRate`` follows it); ``lr_t`` caps the relative step size.

    Hyperparameters:
        beta2_decay: ``c`` <= 0 (default -0.8, the paper's and torch's).
        eps: ``(eps1, eps2)`` (default (None, 1e-3)); ``eps1`` None is the machine epsilon
            of the parameter's dtype (torch's). torch's convention: ``eps1`` bounds ``V``
            from below after its square (so it acts on the root's scale) and bounds the
            row mean; the paper adds ``eps1 = 1e-30`` to ``u^2`` before averaging.
        d: ``d`` >= 1, the update clipping threshold (default 1).
        lr: ``lr_t``, the cap of the relative step size ``min(lr_t, 1/sqrt(t))``.

    State:
        row_var: ``R``, shaped as the parameter with its last dimension 1.
        col_var: ``C``, shaped as the parameter with its second-to-last dimension 1.
        variance: ``V``, for 0-D and 1-D parameters.

    The factored moment and the RMS clipping are per tensor, so the rule is not
    elementwise (``fast=True`` compiles it per tensor).

    References:
        Shazeer & Stern 2018, Algorithms 4 and 5; torch.optim.Adafactor.
    """

    elementwise = False
    defaults = {
        "beta2_decay": -0.8,
        "eps": (None, 1e-3),
        "d": 1.0,
        "lr": ScaleByLearningRate.defaults["lr"],
    }
    state_keys = ("row_var", "col_var", "variance")

    def validate(self, hp: Hyper) -> None:
        check_range("beta2_decay", float(hp["beta2_decay"]), None, 0.0)
        eps = hp["eps"]
        if not isinstance(eps, (tuple, list)) or len(eps) != 2:
            raise OptimlabError(f"invalid eps: {eps!r}; expected a pair (eps1 or None, eps2)")
        if eps[0] is not None:
            check_range("eps[0]", float(eps[0]), 0.0)
        check_range("eps[1]", float(eps[1]), 0.0)
        check_range("d", float(hp["d"]), 1.0)
        check_lr(hp)

    def update_one(self, g: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        t = step_of(state)
        one_minus_beta2 = t ** hp["beta2_decay"]
        eps1, eps2 = hp["eps"]
        if eps1 is None:
            eps1 = torch.finfo(p.dtype).eps
        if g.dim() > 1:
            rows = list(g.shape)
            rows[-1] = 1
            cols = list(g.shape)
            cols[-2] = 1
            if "row_var" not in state:
                state["row_var"] = g.new_zeros(rows)
                state["col_var"] = g.new_zeros(cols)
            row_var, col_var = state["row_var"], state["col_var"]
            # mean of squares along a dimension, without a squared copy of g
            row_var.lerp_(
                torch.linalg.vector_norm(g, dim=-1, keepdim=True).square_() / g.size(-1),
                one_minus_beta2,
            )
            col_var.lerp_(
                torch.linalg.vector_norm(g, dim=-2, keepdim=True).square_() / g.size(-2),
                one_minus_beta2,
            )
            var = row_var @ col_var
            var = var / row_var.mean(dim=-2, keepdim=True).clamp(min=eps1)
        else:
            var = buffer(state, "variance", p)
            var.lerp_(g * g, one_minus_beta2)
        update = var.clamp(min=eps1 * eps1).rsqrt() * g
        if isinstance(t, Tensor):
            rho = torch.clamp(t.rsqrt(), max=learning_rate(hp, state))
        else:
            rho = min(learning_rate(hp, state), 1 / t**0.5)
        alpha = _rms(p).clamp(min=eps2) * rho
        clip = (_rms(update) / hp["d"]).clamp(min=1.0)
        return update * (-alpha / clip)


class Adafactor(ChainOptimizer):
    """Adafactor: a factored second moment (memory ``r + c`` per matrix), relative step
    sizes and update clipping.

    .. code-block:: text

        input: lr (rho cap), beta2_decay (c), eps = (eps1, eps2), d, weight_decay
        for t = 1, 2, ...:
            V <- factored (2-D+) or full (0/1-D) running mean of g^2, rate t^c
            U <- g / sqrt(max(V, eps1^2))
            w <- w - lr * weight_decay * w                          (decoupled)
            w <- w - max(eps2, RMS(w)) min(lr, 1/sqrt(t)) U / max(1, RMS(U)/d)

    Defaults are torch.optim.Adafactor's (lr 1e-2, beta2_decay -0.8, eps (None, 1e-3),
    d 1, no weight decay); ``RMS(w)`` is taken before the decay, and the decay uses
    ``lr``, not the relative step size, as torch does.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        **options: Any,
    ) -> None:
        hp = dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay)
        chain = [ScaleByAdafactor(), DecoupledWeightDecay()]
        super().__init__(params, chain, hp, **options)
