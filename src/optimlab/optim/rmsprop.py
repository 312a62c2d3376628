"""RMSprop (Hinton, Srivastava & Swersky 2012, Coursera lecture 6e):
``ScaleByRMS`` and ``RMSprop``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import Tensor

from optimlab.errors import check_range
from optimlab.optim.adaptive import denominator
from optimlab.optim.base import ChainOptimizer
from optimlab.optim.decay import AddWeightDecay
from optimlab.optim.momentum import Trace
from optimlab.optim.scale import ScaleByLearningRate
from optimlab.optim.transform import Hyper, Transform, buffer


class ScaleByRMS(Transform):
    """RMSprop's direction: the update over a running root mean square of updates.

    .. code-block:: text

        s <- alpha * s + (1 - alpha) * u^2
        a <- alpha * a + (1 - alpha) * u;   s~ = s - a^2        (centered)
                                            s~ = s              (otherwise)
        u <- u / (sqrt(s~ + eps_root) + eps)

    Hyperparameters:
        alpha: ``alpha`` in [0, 1] (default 0.99, torch's; the lectures call it rho).
        eps: ``eps`` >= 0, outside the root (default 1e-8, torch's).
        eps_root: ``eps_root`` >= 0, inside the root (default 0).
        centered: subtract the squared running mean ``a^2`` (default False).

    State:
        square_avg: ``s``.
        grad_avg: ``a`` (centered only).

    torch.optim.RMSprop's convention is the default; the lectures' form
    ``lr * g / sqrt(s + eps)`` is ``eps=0, eps_root=eps``. Momentum is a ``Trace``
    after it, as in torch.

    References:
        Hinton, Srivastava & Swersky 2012, lecture 6e; Graves 2013, "Generating
        Sequences With Recurrent Neural Networks" (centered); torch.optim.RMSprop.
    """

    defaults = {"alpha": 0.99, "eps": 1e-8, "eps_root": 0.0, "centered": False}
    state_keys = ("square_avg", "grad_avg")

    def validate(self, hp: Hyper) -> None:
        check_range("alpha", float(hp["alpha"]), 0.0, 1.0)
        check_range("eps", float(hp["eps"]), 0.0)
        check_range("eps_root", float(hp["eps_root"]), 0.0)

    def update_one(self, g: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        alpha = hp["alpha"]
        s = buffer(state, "square_avg", p)
        s.mul_(alpha).addcmul_(g, g, value=1 - alpha)
        if hp["centered"]:
            a = buffer(state, "grad_avg", p)
            a.lerp_(g, 1 - alpha)
            s = s - a * a
        return g / denominator(s, hp["eps"], hp["eps_root"])


class RMSprop(ChainOptimizer):
    """RMSprop: divide the gradient by a running root mean square of recent gradients.

    .. code-block:: text

        input: lr, alpha (decay), eps (outside the root), eps_root (inside),
               weight_decay (coupled L2), momentum, centered
        for t = 1, 2, ...:
            g <- grad + weight_decay * w
            s <- alpha s + (1 - alpha) g^2
            if centered: a <- alpha a + (1 - alpha) g;  s~ <- s - a^2   else s~ <- s
            u <- g / (sqrt(s~ + eps_root) + eps)
            if momentum > 0: b <- momentum b + u;  u <- b
            w <- w - lr u
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        eps_root: float = 0.0,
        **options: Any,
    ) -> None:
        hp = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            eps_root=eps_root,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
        )
        chain = [AddWeightDecay(), ScaleByRMS(), Trace(), ScaleByLearningRate()]
        super().__init__(params, chain, hp, **options)
