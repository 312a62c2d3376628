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
    defaults = {"clip_value": None}

    def validate(self, hp: Hyper) -> None:
        _check_threshold(hp, "clip_value")

    def update_one(self, u: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        c = hp["clip_value"]
        return u if c is None else u.clamp(-c, c)


class ClipByNorm(Transform):
    defaults = {"clip_norm": None}

    def validate(self, hp: Hyper) -> None:
        _check_threshold(hp, "clip_norm")

    def update_one(self, u: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        c = hp["clip_norm"]
        if c is None:
            return u
        return u * (c / torch.linalg.vector_norm(u).clamp(min=c))


class ClipByGlobalNorm(Transform):
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
