"""Gradient clipping (Pascanu, Mikolov & Bengio 2013, "On the difficulty of
training recurrent neural networks"). Each is off while its threshold is None.

* by value: each entry clamped to ``[-c, c]`` (Keras ``clipvalue``);
* by norm: ``g <- g * c / max(c, ||g||)`` for each tensor (Keras ``clipnorm``);
* by global norm: the same with the norm taken over every tensor of the param
  group together (Keras ``global_clipnorm``, torch's ``clip_grad_norm_``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from optimlab.errors import check_range
from optimlab.optim.transform import Hyper, Transform


def _check_threshold(hp: Hyper, key: str) -> None:
    if hp.get(key) is not None:
        check_range(key, float(hp[key]), 0.0, low_open=True)


class ClipByValue(Transform):
    """Clamp each entry of the update (Keras ``clipvalue``).

    .. code-block:: text

        u <- clamp(u, -c, c)

    Hyperparameters:
        clip_value: ``c`` > 0; None (the default) turns it off.

    References:
        ``torch.nn.utils.clip_grad_value_``, which does the same to ``p.grad``.
    """

    defaults = {"clip_value": None}

    def validate(self, hp: Hyper) -> None:
        _check_threshold(hp, "clip_value")

    def update_one(self, u: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        c = hp["clip_value"]
        return u if c is None else u.clamp(-c, c)


class ClipByNorm(Transform):
    """Rescale each tensor's update to a Euclidean norm of at most ``c`` (Keras
    ``clipnorm``).

    .. code-block:: text

        u <- u * c / max(c, ||u||)          ||u||: the norm of this tensor alone

    Hyperparameters:
        clip_norm: ``c`` > 0; None (the default) turns it off.

    Per tensor, so the update's direction within the group changes when one tensor
    is clipped and another is not; ``ClipByGlobalNorm`` keeps it.

    References:
        Pascanu, Mikolov & Bengio 2013, "On the difficulty of training recurrent
        neural networks".
    """

    defaults = {"clip_norm": None}

    def validate(self, hp: Hyper) -> None:
        _check_threshold(hp, "clip_norm")

    def update_one(self, u: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        c = hp["clip_norm"]
        if c is None:
            return u
        return u * (c / torch.linalg.vector_norm(u).clamp(min=c))


class ClipByGlobalNorm(Transform):
    """Rescale a param group's updates to a joint Euclidean norm of at most ``c``
    (Keras ``global_clipnorm``).

    .. code-block:: text

        u_i <- u_i * c / max(c, ||(u_1, ..., u_n)||)    the norm over the group's tensors

    Hyperparameters:
        clip_global_norm: ``c`` > 0; None (the default) turns it off.

    The direction of the group's update is kept. ``torch.nn.utils.clip_grad_norm_``
    over the group's parameters divides by ``||g|| + 1e-6`` instead, which differs
    by about ``1e-6 / ||g||`` relative.

    References:
        Pascanu, Mikolov & Bengio 2013, "On the difficulty of training recurrent
        neural networks".
    """

    defaults = {"clip_global_norm": None}

    def validate(self, hp: Hyper) -> None:
        _check_threshold(hp, "clip_global_norm")

    def update(
        self, updates: list[Tensor], params: list[Tensor], states: list[dict], hp: Hyper
    ) -> list[Tensor]:
        c = hp["clip_global_norm"]
        if c is None or not updates:
            return updates
        norms = torch.stack([torch.linalg.vector_norm(u) for u in updates])
        scale = c / torch.linalg.vector_norm(norms).clamp(min=c)
        return [u * scale for u in updates]
