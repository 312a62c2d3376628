"""Pieces the adaptive rules share: the decay-rate pair, bias correction and the
denominator's epsilons.

Written once here so that Adam, AdaMax, NAdam, AdaGrad and RMSprop read their
equations the same way (and round the same way as torch.optim).
"""

from __future__ import annotations

from torch import Tensor

from optimlab.errors import OptimlabError, check_range
from optimlab.optim.transform import Hyper, per_step


def check_betas(hp: Hyper) -> None:
    """Refuse ``betas`` unless it is a pair of decay rates in ``[0, 1)``.

    Args:
        hp: the param group's hyperparameters.

    Raises:
        OptimlabError: naming ``betas`` (or the entry) and the valid range.
    """
    betas = hp["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise OptimlabError(f"invalid betas: {betas!r}; expected a pair (beta1, beta2)")
    check_range("betas[0]", float(betas[0]), 0.0, 1.0, high_open=True)
    check_range("betas[1]", float(betas[1]), 0.0, 1.0, high_open=True)


def debiased(x: Tensor, beta: float, t: float | Tensor) -> Tensor:
    """``x / (1 - beta^t)``: an exponential average started at 0, bias-corrected.

    Multiplied by the reciprocal, a per-step scalar, rather than divided: one
    division per step instead of one per element (``per_step``).

    Args:
        x: the average after ``t`` updates of decay rate ``beta``.
        beta: its decay rate.
        t: the update count, from 1 (``step_of(state)``).

    Returns:
        A new tensor.
    """
    return x * per_step(1 / (1 - beta**t), x)


def denominator(x: Tensor, eps: float, eps_root: float = 0.0) -> Tensor:
    """``sqrt(x + eps_root) + eps``: torch's epsilon outside the root, optax's inside.

    A term that is off (0, the default) is left out rather than added: compiled,
    each is one more instruction per vector in a memory-bound loop.

    Args:
        x: the second-moment estimate (or sum of squares).
        eps: added outside the root.
        eps_root: added inside the root.

    Returns:
        A new tensor.
    """
    return (x if eps_root == 0 else x + eps_root).sqrt() + eps
