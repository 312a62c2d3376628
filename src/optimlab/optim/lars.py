"""LARS (You, Gitman & Ginsburg 2017, "Large Batch Training of Convolutional Networks"),
in the pytorch-optimizer package's form: ``ScaleByLars``, ``ZeroStartTrace`` and ``Lars``.

SGD with momentum whose step for each weight tensor is scaled by a layer-wise *local
learning rate* ``eta * ||w|| / (||g|| + wd ||w||)``, so that every layer moves by about
the same fraction of its size. Biases and normalization gains (tensors of at most one
dimension) are left to plain SGD with momentum, as the reference does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from optimlab.errors import check_range
from optimlab.optim.base import ChainOptimizer
from optimlab.optim.lamb import check_flag
from optimlab.optim.momentum import Trace
from optimlab.optim.scale import ScaleByLearningRate
from optimlab.optim.transform import Hyper, Transform, buffer


class ScaleByLars(Transform):
    """LARS's layer-wise scaling, with weight decay inside it.

    .. code-block:: text

        for a tensor of 2 or more dimensions (or any, without exclude_1d):
            lambda = eta * ||w|| / (||u|| + wd * ||w||)     (1 if ||w|| or the
                                                             denominator is 0)
            u <- lambda * (u + wd * w)
        otherwise: u unchanged (no decay, no scaling)

    Hyperparameters:
        trust_coefficient: ``eta`` >= 0 (default 1e-3, the paper's and pytorch-optimizer's).
        weight_decay: ``wd`` >= 0 (default 0).
        exclude_1d: leave tensors of at most one dimension (biases, gains, scalars)
            unscaled and undecayed (default True, pytorch-optimizer's); False scales every
            tensor, as the paper's Algorithm 1 writes it.

    The local learning rate is per tensor, so the rule is not elementwise (``fast=True``
    compiles it per tensor).

    References:
        You, Gitman & Ginsburg 2017, Algorithm 1; pytorch-optimizer 4.1.0, ``LARS``.
    """

    elementwise = False
    defaults = {"trust_coefficient": 1e-3, "weight_decay": 0.0, "exclude_1d": True}

    def validate(self, hp: Hyper) -> None:
        check_range("trust_coefficient", float(hp["trust_coefficient"]), 0.0)
        check_range("weight_decay", float(hp["weight_decay"]), 0.0)
        check_flag(hp, "exclude_1d")

    def update_one(self, g: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        if hp["exclude_1d"] and p.dim() <= 1:
            return g
        wd = hp["weight_decay"]
        weight_norm = torch.linalg.vector_norm(p)
        denominator = torch.linalg.vector_norm(g) + wd * weight_norm
        ratio = hp["trust_coefficient"] * weight_norm / denominator
        one = torch.ones_like(ratio)
        local = torch.where(weight_norm > 0, torch.where(denominator > 0, ratio, one), one)
        return g.add(p, alpha=wd) * local


class ZeroStartTrace(Trace):
    """Momentum whose buffer starts at zero, so the first step is dampened too.

    .. code-block:: text

        b <- mu * b + (1 - dampening) * u        (b = 0 before the first update)
        u <- b                                   (u <- u + mu * b with nesterov)

    Hyperparameters:
        momentum: ``mu`` in [0, 1) (default 0.9, pytorch-optimizer's LARS); 0 keeps no
            buffer.
        dampening: in [0, 1] (default 0).
        nesterov: use the look-ahead form; needs ``mu`` > 0 and no dampening.

    State:
        momentum_buffer: ``b``.

    ``Trace`` (torch.optim.SGD's convention) sets ``b = u`` at the first update instead;
    the two agree unless ``dampening`` > 0.

    References:
        pytorch-optimizer 4.1.0, ``LARS``; torch.optim.SGD.
    """

    defaults = {"momentum": 0.9, "dampening": 0.0, "nesterov": False}

    def update_one(self, u: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        mu = hp["momentum"]
        if mu == 0:
            return u
        buf = buffer(state, "momentum_buffer", p)
        buf.mul_(mu).add_(u, alpha=1 - hp["dampening"])
        return u.add(buf, alpha=mu) if hp["nesterov"] else buf


class Lars(ChainOptimizer):
    """LARS: momentum SGD with a layer-wise learning rate from the weight and gradient
    norms.

    .. code-block:: text

        input: lr, momentum (mu), dampening, nesterov, weight_decay (wd),
               trust_coefficient (eta), exclude_1d
        for t = 1, 2, ...:
            if w has 2+ dimensions:
                g <- eta ||w|| / (||g|| + wd ||w||) * (g + wd w)
            b <- mu b + (1 - dampening) g        (b starts at 0)
            w <- w - lr * (g + mu b if nesterov else b)

    Defaults are pytorch-optimizer's ``LARS`` (lr 1e-3, momentum 0.9, no dampening, no
    weight decay, eta 1e-3, 1-D tensors excluded). The paper's global learning rate is
    large (its ``lr * eta`` is the step per unit of relative size); tune ``lr`` with that
    in mind.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        dampening: float = 0.0,
        trust_coefficient: float = 1e-3,
        nesterov: bool = False,
        *,
        exclude_1d: bool = True,
        **options: Any,
    ) -> None:
        hp = dict(
            lr=lr,
            weight_decay=weight_decay,
            momentum=momentum,
            dampening=dampening,
            trust_coefficient=trust_coefficient,
            nesterov=nesterov,
            exclude_1d=exclude_1d,
        )
        chain = [ScaleByLars(), ZeroStartTrace(), ScaleByLearningRate()]
        super().__init__(params, chain, hp, **options)
