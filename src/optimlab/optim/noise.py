"""Annealed Gaussian gradient noise (Neelakantan et al. 2015, "Adding Gradient
Noise Improves Learning for Very Deep Networks").

``g <- g + N(0, sigma_t^2)`` with ``sigma_t^2 = eta / (1 + t)^gamma``, ``t`` counted
from 0 at the first update. The paper uses ``eta`` in {0.01, 0.3, 1} and
``gamma = 0.55``. Off while ``grad_noise`` (eta) is 0. Draws from torch's global
generator, so ``torch.manual_seed`` makes it reproducible.
"""

from __future__ import annotations

import torch
from torch import Tensor

from optimlab.errors import check_range
from optimlab.optim.transform import Hyper, Transform, per_step, step_of


class AddGradientNoise(Transform):
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
