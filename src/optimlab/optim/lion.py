"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"), in the
lion-pytorch package's form: ``ScaleByLion``, ``ScheduleRelativeWeightDecay`` and
``Lion``.

The update is the sign of an interpolation between the momentum and the gradient, so
every entry moves by exactly ``lr``; the momentum is updated *after* the sign is taken,
with its own, slower rate ``b2``. One parameter-sized buffer, against Adam's two.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import Tensor

from optimlab.errors import check_range
from optimlab.optim.adaptive import check_betas
from optimlab.optim.decay import DecoupledWeightDecay
from optimlab.optim.scale import ScaleByLearningRate, check_lr
from optimlab.optim.transform import (
    Hyper,
    Transform,
    buffer,
    learning_rate,
    lr_at,
    per_step,
)
from optimlab.optim.variant import ChainVariant


class ScaleByLion(Transform):
    """Lion's direction: the sign of the interpolated momentum, then the momentum update.

    .. code-block:: text

        c <- sign(b1 * m + (1 - b1) * u)       (sign(0) = 0)
        m <- b2 * m + (1 - b2) * u             (after c: the order of lion-pytorch)
        u <- c

    Hyperparameters:
        betas: ``(b1, b2)``, each in [0, 1) (default (0.9, 0.99), the paper's and
            lion-pytorch's).

    State:
        exp_avg: ``m``.

    ``c`` is computed as lion-pytorch computes it, ``m * b1 + u * (1 - b1)``, so that
    entries near zero get the same sign.

    References:
        Chen et al. 2023, Program 1; lion-pytorch 0.2.5.
    """

    defaults = {"betas": (0.9, 0.99)}
    state_keys = ("exp_avg",)

    def validate(self, hp: Hyper) -> None:
        check_betas(hp)

    def update_one(self, g: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        b1, b2 = hp["betas"]
        m = buffer(state, "exp_avg", p)
        c = (m * b1).add(g, alpha=1 - b1).sign()
        m.mul_(b2).add_(g, alpha=1 - b2)
        return c


class ScheduleRelativeWeightDecay(Transform):
    """Weight decay scaled by the learning rate *relative to its initial value*: the
    decay of Loshchilov & Hutter's AdamW paper, which multiplies it by the schedule's
    factor ``eta_t = lr_t / lr_0`` only.

    .. code-block:: text

        u <- u - (lr_t / lr_0) * wd * w

    Hyperparameters:
        weight_decay: ``wd`` >= 0, the fraction of ``w`` removed per step at the initial
            learning rate (default 0).
        init_lr: ``lr_0`` > 0, the initial learning rate (Lion sets it to the
            constructor's ``lr`` for every group, as lion-pytorch does).
        lr: ``lr_t``, the group's learning rate or schedule.

    References:
        Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization", Algorithm 2;
        lion-pytorch's ``decoupled_weight_decay``.
    """

    defaults = {"weight_decay": 0.0, "init_lr": 1e-3, "lr": ScaleByLearningRate.defaults["lr"]}

    def validate(self, hp: Hyper) -> None:
        check_range("weight_decay", float(hp["weight_decay"]), 0.0)
        check_range("init_lr", float(hp["init_lr"]), 0.0, low_open=True)
        check_lr(hp)

    def update_one(self, u: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        wd = hp["weight_decay"]
        if wd == 0:
            return u
        return u - per_step(learning_rate(hp, state) * (wd / hp["init_lr"]), p) * p


class Lion(ChainVariant):
    """Lion: signed momentum steps, evolved by program search.

    .. code-block:: text

        input: lr, betas = (b1, b2), weight_decay, decoupled_weight_decay
        for t = 1, 2, ...:
            w <- w - lr * weight_decay * w              (decoupled_weight_decay=False)
            w <- w - (lr / lr_0) * weight_decay * w     (decoupled_weight_decay=True)
            w <- w - lr * sign(b1 m + (1 - b1) g)
            m <- b2 m + (1 - b2) g

    Defaults are lion-pytorch's: lr 1e-4, betas (0.9, 0.99), no weight decay. The paper
    suggests an lr 3-10x smaller than AdamW's and a weight decay 3-10x larger, so that
    ``lr * weight_decay`` stays the same. Weight decay is decoupled in both settings;
    ``decoupled_weight_decay=True`` divides it by ``lr_0``, the constructor's ``lr`` (for
    every group, as lion-pytorch does), so that ``weight_decay`` is the fraction
    removed per step and a schedule scales it (``ScheduleRelativeWeightDecay``). The
    flag is one choice per optimizer.
    """

    structural = ("decoupled_weight_decay",)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        **options: Any,
    ) -> None:
        hp = dict(
            lr=lr,
            betas=betas,
            weight_decay=weight_decay,
            decoupled_weight_decay=bool(decoupled_weight_decay),
        )
        if decoupled_weight_decay:
            hp["init_lr"] = float(lr_at(lr, 1))
            chain = [ScaleByLion(), ScaleByLearningRate(), ScheduleRelativeWeightDecay()]
        else:
            chain = [ScaleByLion(), ScaleByLearningRate(), DecoupledWeightDecay()]
        super().__init__(params, chain, hp, **options)
