"""LAMB (You et al. 2020, "Large Batch Optimization for Deep Learning: Training BERT in
76 minutes"), in the pytorch-optimizer package's form: ``ScaleByLamb`` and ``Lamb``.

Adam's ratio ``m / (sqrt(v) + eps)``, rescaled per tensor so that its norm matches the
norm of the weights (the *trust ratio*): every layer moves by about ``lr`` times its own
size, whatever the scale of its gradients, which is what lets very large batches (and
their large learning rates) train stably.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from optimlab.errors import OptimlabError, check_range
from optimlab.optim.adaptive import check_betas
from optimlab.optim.base import ChainOptimizer
from optimlab.optim.scale import ScaleByLearningRate, check_lr
from optimlab.optim.transform import Hyper, Transform, buffer, learning_rate, per_step, step_of


def check_flag(hp: Hyper, key: str) -> None:
    """Refuse a flag that is not True or False, naming it."""
    if not isinstance(hp[key], bool):
        raise OptimlabError(f"invalid {key}: {hp[key]!r}; expected True or False")


def trust_ratio(weight_norm: Tensor, update_norm: Tensor, eps: float) -> Tensor:
    """``||w|| / (||r|| + eps)``, and 1 where either norm is 0 (pytorch-optimizer's rule)."""
    ratio = weight_norm / (update_norm + eps)
    return torch.where((weight_norm != 0) & (update_norm != 0), ratio, torch.ones_like(ratio))


class ScaleByLamb(Transform):
    """LAMB's direction: Adam's ratio times the layer's trust ratio.

    .. code-block:: text

        m <- b1 * m + (1 - b1) * u            (m <- b1 * m + u without grad_averaging)
        v <- b2 * v + (1 - b2) * u^2
        r <- m / (sqrt(v) + eps)
        r <- r + wd * w                        (weight_decouple=False: in the ratio)
        phi = min(||w'||, trust_clip)          w' = (1 - lr_t wd) w if weight_decouple
        u <- phi / (||r|| + eps) * r / (1 - b1^t)   (1 if phi or ||r|| is 0)
        u <- u + wd * w                        (weight_decouple=True: outside the ratio)

    The last line, scaled by ``-lr_t`` with the rest, is the decoupled decay
    ``w <- w - lr_t * wd * w``; ``w'``, the weights after it, is what the reference
    takes the norm of.

    Hyperparameters:
        betas: ``(b1, b2)``, each in [0, 1) (default (0.9, 0.999)).
        eps: ``eps`` >= 0, in the ratio's denominator and the trust ratio's (default
            1e-6, pytorch-optimizer's).
        weight_decay: ``wd`` >= 0 (default 0).
        weight_decouple: decay outside the trust ratio (default True, pytorch-optimizer's);
            False puts ``wd * w`` in the ratio, as the paper's Algorithm 2 does.
        grad_averaging: weight the gradient by ``1 - b1`` in ``m`` (default True).
        bias_correction: divide the step by ``1 - b1^t`` (default True, pytorch-optimizer's;
            ``v`` is never corrected, so the step is larger early on). The paper corrects
            ``m`` and ``v`` before the ratio, which the trust ratio then cancels but for eps.
        trust_clip: the bound on the weight norm, phi's upper clip (default 10,
            pytorch-optimizer's); None for no bound.
        lr: ``lr_t``, read for the decoupled decay's weight norm.

    State:
        exp_avg: ``m``.
        exp_avg_sq: ``v``.

    The trust ratio is per tensor, so the rule is not elementwise (``fast=True`` compiles
    it per tensor).

    References:
        You et al. 2020, Algorithm 2; pytorch-optimizer 4.1.0, ``Lamb``.
    """

    elementwise = False
    defaults = {
        "betas": (0.9, 0.999),
        "eps": 1e-6,
        "weight_decay": 0.0,
        "weight_decouple": True,
        "grad_averaging": True,
        "bias_correction": True,
        "trust_clip": 10.0,
        "lr": ScaleByLearningRate.defaults["lr"],
    }
    state_keys = ("exp_avg", "exp_avg_sq")

    def validate(self, hp: Hyper) -> None:
        check_betas(hp)
        check_range("eps", float(hp["eps"]), 0.0)
        check_range("weight_decay", float(hp["weight_decay"]), 0.0)
        for key in ("weight_decouple", "grad_averaging", "bias_correction"):
            check_flag(hp, key)
        if hp["trust_clip"] is not None:
            check_range("trust_clip", float(hp["trust_clip"]), 0.0, low_open=True)
        check_lr(hp)

    def update_one(self, g: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        b1, b2 = hp["betas"]
        eps, wd = hp["eps"], hp["weight_decay"]
        m = buffer(state, "exp_avg", p)
        v = buffer(state, "exp_avg_sq", p)
        m.mul_(b1).add_(g, alpha=1 - b1 if hp["grad_averaging"] else 1.0)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        r = m / (v.sqrt() + eps)
        decouple = hp["weight_decouple"]
        if wd != 0 and not decouple:
            r = r.add(p, alpha=wd)
        weight_norm = torch.linalg.vector_norm(p)
        if wd != 0 and decouple:
            weight_norm = weight_norm * abs(1 - learning_rate(hp, state) * wd)
        if hp["trust_clip"] is not None:
            weight_norm = weight_norm.clamp(max=hp["trust_clip"])
        scale = trust_ratio(weight_norm, torch.linalg.vector_norm(r), eps)
        if hp["bias_correction"]:
            scale = scale * per_step(1 / (1 - b1 ** step_of(state)), r)
        u = r * scale
        return u.add(p, alpha=wd) if wd != 0 and decouple else u


class Lamb(ChainOptimizer):
    """LAMB: Adam's ratio with a per-layer trust ratio, for large-batch training.

    .. code-block:: text

        input: lr, betas = (b1, b2), eps, weight_decay, weight_decouple,
               grad_averaging, bias_correction, trust_clip
        for t = 1, 2, ...:
            w <- (1 - lr wd) w                    (weight_decouple, the default)
            m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
            r <- m / (sqrt(v) + eps)  (+ wd w without weight_decouple)
            w <- w - lr / (1 - b1^t) * min(||w||, trust_clip) / (||r|| + eps) * r

    Defaults are pytorch-optimizer's ``Lamb`` (lr 1e-3, betas (0.9, 0.999), eps 1e-6, no
    weight decay, decoupled when set, the step divided by ``1 - b1^t``, the weight norm
    clipped at 10, every tensor trust-ratioed, 1-D ones included). Not offered: its
    ``rectify``, ``pre_norm``, ``fixed_decay`` and ``adam`` variants (the common option
    ``clip_global_norm`` clips per param group, ``pre_norm`` over all groups). The
    reference keeps the count ``t`` per param group; here each parameter counts its own updates,
    which is the same while every parameter gets a gradient at every step.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
        weight_decouple: bool = True,
        *,
        eps: float = 1e-6,
        grad_averaging: bool = True,
        bias_correction: bool = True,
        trust_clip: float | None = 10.0,
        **options: Any,
    ) -> None:
        hp = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            weight_decouple=weight_decouple,
            grad_averaging=grad_averaging,
            bias_correction=bias_correction,
            trust_clip=trust_clip,
        )
        super().__init__(params, [ScaleByLamb(), ScaleByLearningRate()], hp, **options)
