"""Weight decay, in its two conventions.

* Coupled L2 (``AddWeightDecay``): ``g <- g + wd * w`` before the rule, as in
  torch's SGD/Adam ``weight_decay``. It is the gradient of ``wd/2 * ||w||^2``, so a
  Keras ``L2(l)`` penalty (``l * ||w||^2``, no 1/2) equals ``wd = 2*l``. Adaptive
  rules rescale it along with the gradient.
* Decoupled (``DecoupledWeightDecay``, Loshchilov & Hutter 2019, "Decoupled
  Weight Decay Regularization"): ``u <- u - lr_t * wd * w`` after the learning-rate
  scaling, untouched by the adaptive rule (torch's AdamW).
"""

from __future__ import annotations

from torch import Tensor

from optimlab.errors import check_range
from optimlab.optim.scale import ScaleByLearningRate, check_lr
from optimlab.optim.transform import Hyper, Transform, learning_rate, per_step


class AddWeightDecay(Transform):
    """Coupled L2 weight decay: the gradient of ``wd/2 * ||w||^2``, added to the update.

    .. code-block:: text

        u <- u + wd * w

    Hyperparameters:
        weight_decay: ``wd`` >= 0 (0, the default, turns it off).

    Placed before the rule, as torch's ``weight_decay`` of SGD, Adam and the others:
    an adaptive rule rescales it with the gradient. A Keras ``L2(l)`` penalty
    (``l * ||w||^2``) is ``wd = 2 * l``.

    References:
        Krogh & Hertz 1992, "A Simple Weight Decay Can Improve Generalization";
        torch.optim.SGD.
    """

    defaults = {"weight_decay": 0.0}

    def validate(self, hp: Hyper) -> None:
        check_range("weight_decay", float(hp["weight_decay"]), 0.0)

    def update_one(self, u: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        wd = hp["weight_decay"]
        return u if wd == 0 else u.add(p, alpha=wd)


class DecoupledWeightDecay(Transform):
    """Decoupled weight decay: the parameters shrink by ``lr_t * wd`` of themselves,
    untouched by the adaptive rule.

    .. code-block:: text

        u <- u - lr_t * wd * w

    Hyperparameters:
        weight_decay: ``wd`` >= 0 (1e-2, torch's AdamW default).
        lr: ``lr_t``, the group's learning rate or schedule, the same one
            ``ScaleByLearningRate`` reads.

    Placed after ``ScaleByLearningRate`` (``u`` is then already a move), this is
    torch's AdamW: ``w <- w - lr * adam_direction - lr * wd * w``.

    References:
        Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization";
        torch.optim.AdamW.
    """

    defaults = {"weight_decay": 1e-2, "lr": ScaleByLearningRate.defaults["lr"]}

    def validate(self, hp: Hyper) -> None:
        check_range("weight_decay", float(hp["weight_decay"]), 0.0)
        check_lr(hp)

    def update_one(self, u: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        wd = hp["weight_decay"]
        return u if wd == 0 else u - per_step(learning_rate(hp, state) * wd, p) * p
