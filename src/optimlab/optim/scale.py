"""Scaling by the learning rate: the step that turns a direction into a move."""

from __future__ import annotations

from torch import Tensor

from optimlab.errors import check_range
from optimlab.optim.transform import Hyper, Transform, learning_rate, per_step


def check_lr(hp: Hyper) -> None:
    """Refuse a negative learning rate; a schedule (a callable) is not called here."""
    lr = hp["lr"]
    if not callable(lr) or isinstance(lr, Tensor):
        check_range("lr", float(lr), 0.0)


class ScaleByLearningRate(Transform):
    """Scale by the learning rate, and turn the direction into a move.

    .. code-block:: text

        u <- -lr_t * u

    Hyperparameters:
        lr: ``lr_t``: a number >= 0 or a 0-d tensor (what torch's LR schedulers
            write), or a schedule ``schedule(step) -> lr`` read at ``step = t - 1``
            (``lr_at``).

    The minus sign lives here, so every transform before it works with the
    gradient's direction and every transform after it with the parameter move.

    References:
        torch.optim.SGD's ``lr``.
    """

    defaults = {"lr": 1e-3}

    def validate(self, hp: Hyper) -> None:
        check_lr(hp)

    def update_one(self, u: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        # -lr_t changes at most once per step (a schedule, or the fast path's lr tensor)
        return u * per_step(-learning_rate(hp, state), u)
