"""AdaGrad (Duchi, Hazan & Singer 2011, "Adaptive Subgradient Methods for Online
Learning and Stochastic Optimization"): ``ScaleByAdagrad`` and ``Adagrad``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import Tensor

from optimlab.errors import check_range
from optimlab.optim.adaptive import denominator
from optimlab.optim.base import ChainOptimizer
from optimlab.optim.decay import AddWeightDecay
from optimlab.optim.scale import ScaleByLearningRate
from optimlab.optim.transform import Hyper, Transform, buffer, per_step, step_of


class ScaleByAdagrad(Transform):
    """AdaGrad's direction: each coordinate divided by the root of its sum of squares.

    .. code-block:: text

        G <- G + u^2                                    (G starts at G_0)
        u <- u / (sqrt(G + eps_root) + eps) / (1 + (t - 1) * lr_decay)

    Hyperparameters:
        lr_decay: ``lr_decay`` >= 0 (default 0), torch's decay of the step size.
        initial_accumulator_value: ``G_0`` >= 0 (default 0).
        eps: ``eps`` >= 0, outside the root (default 1e-10, torch's).
        eps_root: ``eps_root`` >= 0, inside the root (default 0).

    State:
        sum: ``G``.

    torch.optim.Adagrad's convention is the default; the lectures' form
    ``lr * g / sqrt(G + eps)`` is ``eps=0, eps_root=eps``.

    References:
        Duchi, Hazan & Singer 2011; torch.optim.Adagrad.
    """

    defaults = {"lr_decay": 0.0, "initial_accumulator_value": 0.0, "eps": 1e-10, "eps_root": 0.0}
    state_keys = ("sum",)

    def validate(self, hp: Hyper) -> None:
        for key in ("lr_decay", "initial_accumulator_value", "eps", "eps_root"):
            check_range(key, float(hp[key]), 0.0)

    def update_one(self, g: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        G = buffer(state, "sum", p, hp["initial_accumulator_value"])
        G.addcmul_(g, g)
        u = g / denominator(G, hp["eps"], hp["eps_root"])
        lr_decay = hp["lr_decay"]
        if lr_decay == 0:  # left out when off, as in ``denominator``
            return u
        # the learning-rate decay as a per-step multiplier (one division per element)
        return u * per_step(1 / (1 + (step_of(state) - 1) * lr_decay), u)


class Adagrad(ChainOptimizer):
    """AdaGrad: per-coordinate steps shrinking with the sum of squared gradients.

    .. code-block:: text

        input: lr, lr_decay, weight_decay (coupled L2), G_0 = initial_accumulator_value,
               eps (outside the root), eps_root (inside)
        for t = 1, 2, ...:
            g <- grad + weight_decay * w
            G <- G + g^2
            w <- w - lr / (1 + (t-1) lr_decay) * g / (sqrt(G + eps_root) + eps)

    Also accepts the options every optimlab optimizer has (see ``ChainOptimizer``).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        eps_root: float = 0.0,
        **options: Any,
    ) -> None:
        hp = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            eps_root=eps_root,
        )
        chain = [AddWeightDecay(), ScaleByAdagrad(), ScaleByLearningRate()]
        super().__init__(params, chain, hp, **options)
