"""Annealed Gaussian gradient noise (Neelakantan et al. 2015): ``AddGradientNoise``."""

from __future__ import annotations

import torch
from torch import Tensor

from optimlab.errors import check_range
from optimlab.optim.transform import Hyper, Transform, per_step, step_of


class AddGradientNoise(Transform):
    """Annealed Gaussian noise added to the update.

    .. code-block:: text

        u <- u + sigma_t * z,   z ~ N(0, I),   sigma_t^2 = eta / t^gamma

    Hyperparameters:
        grad_noise: ``eta`` >= 0 (0, the default, turns it off; the paper uses
            0.01, 0.3 and 1).
        grad_noise_decay: ``gamma`` >= 0 (0.55, the paper's).

    The paper writes ``eta / (1 + t)^gamma`` with its ``t`` counted from 0: the
    first update's noise has variance ``eta``. Draws from torch's global generator,
    so ``torch.manual_seed`` makes it reproducible.

    References:
        Neelakantan et al. 2015, "Adding Gradient Noise Improves Learning for Very
        Deep Networks".
    """

    defaults = {"grad_noise": 0.0, "grad_noise_decay": 0.55}

    def validate(self, hp: Hyper) -> None:
        check_range("grad_noise", float(hp["grad_noise"]), 0.0)
        check_range("grad_noise_decay", float(hp["grad_noise_decay"]), 0.0)

    def update_one(self, u: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        eta = hp["grad_noise"]
        if eta == 0:
            return u
        t = step_of(state) - 1
        sigma = per_step((eta / (1.0 + t) ** hp["grad_noise_decay"]) ** 0.5, u)
        return u + sigma * torch.randn_like(u)
